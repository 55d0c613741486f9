"""One dask cluster for a whole workflow run: local, or batch jobs through dask-jobqueue.

``brewflow cluster slurm --jobs 10`` submits 10 Slurm jobs running dask workers, writes the
scheduler address to a file and serves until stopped (Ctrl-C / SIGTERM); Snakemake jobs then
compute on it with ``BREWFLOW_SCHEDULER=$(cat .brewflow/scheduler)`` (or config ``scheduler``).
``--dry-run`` prints the batch job script that would be submitted.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brewflow.files import atomic_write

__all__ = ["KINDS", "ClusterSpec", "make_cluster", "serve"]

log = logging.getLogger(__name__)

KINDS = ("local", "slurm", "htcondor")


@dataclass
class ClusterSpec:
    """What each batch job of workers asks for (dask-jobqueue's job parameters)."""

    kind: str
    jobs: int = 1
    cores: int = 1
    processes: int = 1
    memory: str = "2GB"
    walltime: str = "01:00:00"
    queue: str | None = None
    account: str | None = None
    disk: str = "1GB"
    host: str | None = None
    log_directory: str = "logs/dask"
    directives: list[str] = field(default_factory=list)
    skip_directives: list[str] = field(default_factory=list)

    def options(self) -> dict[str, Any]:
        """Keyword arguments of the dask-jobqueue cluster class."""
        common: dict[str, Any] = {
            "cores": self.cores,
            "processes": self.processes,
            "memory": self.memory,
            "job_directives_skip": self.skip_directives,
            "log_directory": self.log_directory,
            "scheduler_options": {"dashboard_address": ":0"}
            | ({"host": self.host} if self.host else {}),
        }
        if self.kind == "slurm":
            return common | {
                "queue": self.queue,
                "account": self.account,
                "walltime": self.walltime,
                "job_extra_directives": self.directives,
            }
        if self.kind == "htcondor":
            extra = dict(line.split("=", 1) for line in self.directives)
            if self.walltime:
                hours, minutes, seconds = (int(x) for x in self.walltime.split(":"))
                extra.setdefault("+MaxRuntime", str(hours * 3600 + minutes * 60 + seconds))
            return common | {"disk": self.disk, "job_extra_directives": extra}
        raise ValueError(f"no batch options for cluster kind {self.kind!r}")


def make_cluster(spec: ClusterSpec) -> Any:
    """A ``distributed.LocalCluster`` or a dask-jobqueue ``SLURMCluster``/``HTCondorCluster``
    (not yet scaled: call ``cluster.scale(jobs=...)``)."""
    if spec.kind == "local":
        from distributed import LocalCluster

        return LocalCluster(
            n_workers=spec.jobs * spec.processes,
            threads_per_worker=max(1, spec.cores // spec.processes),
            dashboard_address=":0",
            host=spec.host,
        )
    if spec.kind not in KINDS:
        raise ValueError(f"unknown cluster kind {spec.kind!r}; choose one of {', '.join(KINDS)}")
    try:
        import dask_jobqueue
    except ImportError as err:
        raise ImportError(
            "dask-jobqueue is not installed; pip install 'brewflow[cluster]'"
        ) from err
    cls = dask_jobqueue.SLURMCluster if spec.kind == "slurm" else dask_jobqueue.HTCondorCluster
    return cls(**spec.options())


def job_script(spec: ClusterSpec) -> str:
    """The batch job script (Slurm) or submit description (HTCondor) of one worker job."""
    cluster = make_cluster(spec)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def serve(spec: ClusterSpec, address_file: str | Path, stop: threading.Event | None = None) -> None:
    """Start the cluster, scale it to ``spec.jobs`` jobs, write its scheduler address to
    ``address_file`` and serve until SIGINT/SIGTERM (or ``stop`` is set); the address file is
    removed when the cluster stops, so no job connects to a scheduler that is gone."""
    from distributed import Client

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    path = Path(address_file)
    with make_cluster(spec) as cluster, Client(cluster) as client:
        if spec.kind != "local":
            cluster.scale(jobs=spec.jobs)
        atomic_write(path, cluster.scheduler_address + "\n")
        log.info(
            "dask %s cluster: scheduler %s (written to %s), dashboard %s, %d job(s) requested",
            spec.kind,
            cluster.scheduler_address,
            path,
            client.dashboard_link,
            spec.jobs,
        )
        log.info("use it: export BREWFLOW_SCHEDULER=$(cat %s); stop with Ctrl-C", path)
        seen = -1
        try:
            while not stop.wait(5.0):
                workers = len(client.scheduler_info()["workers"])
                if workers != seen:
                    log.info("%d worker(s) connected", workers)
                    seen = workers
        finally:
            path.unlink(missing_ok=True)
            log.info("stopping the %s cluster", spec.kind)
