"""Batch systems for real: the workflow through the Slurm profile and on a dask-jobqueue
SLURMCluster, on a single-node Slurm started by .ci/slurm.sh; bin-identical to a local run.
HTCondor (no Debian package here): the profile and the submit description it generates."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from brewflow.jobs import clusters
from tests.helpers import ROOT, assert_same_results, snakemake, tiny_workflow_config

SLURM = ROOT / ".ci" / "slurm.sh"
PROFILES = ROOT / "config" / "profiles"
# the single-node test cluster: no accounting database, so the plugin polls squeue
SLURM_ARGS = (
    "--profile", str(PROFILES / "slurm"),
    "--default-resources", "slurm_partition=debug", "runtime=10", "mem_mb=1000",
    "--slurm-status-command", "squeue", "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs",
)  # fmt: skip


@pytest.fixture(scope="module")
def slurm() -> str:
    """A running single-node Slurm (the partition name); stopped after the module. Skips
    where it cannot be started (not root, packages missing), except in CI."""
    reason = None
    if os.geteuid() != 0:
        reason = "starting Slurm daemons needs root"
    elif not shutil.which("slurmctld") or not shutil.which("munged"):
        reason = f"Slurm is not installed (as root: {SLURM} install)"
    if reason is None:
        started = subprocess.run([str(SLURM), "start"], capture_output=True, text=True, check=False)
        if started.returncode != 0:
            reason = f"{SLURM} start failed: {started.stderr[-2000:]}"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Slurm tests: {reason}")
        pytest.skip(reason)
    yield started.stdout.strip()
    subprocess.run([str(SLURM), "stop"], capture_output=True, check=False)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("local")
    (workdir / "config.yaml").write_text(
        yaml.safe_dump(tiny_workflow_config(Path("results/generated")))
    )
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir


def _copy_config(source: Path, workdir: Path) -> None:
    workdir.mkdir(exist_ok=True)
    shutil.copy(source / "config.yaml", workdir / "config.yaml")


@pytest.mark.slow
@pytest.mark.cluster
def test_workflow_through_the_slurm_profile_equals_the_local_run(slurm, local_run, tmp_path):
    _copy_config(local_run, tmp_path)
    run = snakemake(tmp_path, *SLURM_ARGS, cores=2)
    assert run.returncode == 0, run.stderr[-4000:]
    # every remote rule ran as a Slurm job (the plugin keeps each job's Slurm log)
    logs = tmp_path / ".snakemake" / "slurm_logs"
    rules = {p.name for p in logs.iterdir()}
    assert {"rule_generate", "rule_preprocess", "rule_plot", "rule_shapes"} <= rules
    analyze_jobs = list(logs.glob("rule_analyze_fused/*.log"))
    assert len(analyze_jobs) == 6  # 3 datasets x 2 chunk groups
    # issue 29: the jobs of a rule ready together went as one job array (<array>_<task>.log):
    # fewer sbatch calls than jobs, one for the 3 preprocess jobs
    assert len({p.stem.split("_")[0] for p in analyze_jobs}) < 6
    assert len({p.stem.split("_")[0] for p in logs.glob("rule_preprocess/*.log")}) == 1
    assert not (logs / "rule_merge").exists()  # light rules stay on the submitting host
    assert_same_results(local_run, tmp_path, ["data", "dy", "ttbar"])
    for table in ("zmumu.csv", "ttbar_emu.csv"):
        ours = (tmp_path / "results" / "cutflow" / table).read_bytes()
        assert ours == (local_run / "results" / "cutflow" / table).read_bytes()


def _wait_for(path: Path, process: subprocess.Popen, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file():
            return path.read_text().strip()
        if process.poll() is not None:
            raise AssertionError(f"brewflow cluster exited with {process.returncode}")
        time.sleep(0.5)
    raise AssertionError(f"no scheduler address in {path} after {seconds} s")


@pytest.mark.slow
@pytest.mark.cluster
def test_workflow_on_one_slurmcluster_equals_the_local_run(slurm, local_run, tmp_path):
    from distributed import Client

    _copy_config(local_run, tmp_path)
    address_file = tmp_path / "scheduler"
    server_log = (tmp_path / "cluster.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "brewflow.cli", "cluster", "slurm", "--jobs", "1",
         "--cores", "2", "--processes", "2", "--memory", "4GB", "--queue", slurm,
         "--host", "127.0.0.1", "--address-file", str(address_file)],
        cwd=tmp_path, stderr=server_log, stdout=server_log,
    )  # fmt: skip
    try:
        address = _wait_for(address_file, server, 60)
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
            jobs = set(client.run(lambda: os.environ.get("SLURM_JOB_ID")).values())
        assert len(jobs) == 1  # both workers live in one Slurm job
        assert None not in jobs
        run = snakemake(tmp_path, cores=2, env={"BREWFLOW_SCHEDULER": address})
        assert run.returncode == 0, run.stderr[-4000:]
        log = (tmp_path / "logs" / "analyze" / "dy" / "part0" / "all.log").read_text()
        assert f"dask scheduler {address}" in log
        assert "dy/all systematics: 2/2 chunks, 750/750 events (100%)" in log
    finally:
        server.terminate()
        server.wait(60)
        server_log.close()
    assert not address_file.exists()  # removed when the cluster stops
    assert_same_results(local_run, tmp_path, ["data", "dy", "ttbar"])


def test_slurm_job_script_asks_for_what_was_given():
    spec = clusters.ClusterSpec(
        "slurm", cores=4, processes=2, memory="8GB", walltime="02:00:00", queue="short",
        account="cms", directives=["--constraint=avx2"], skip_directives=["--mem"],
    )  # fmt: skip
    script = clusters.job_script(spec)
    for line in ("#SBATCH -p short", "#SBATCH -A cms", "#SBATCH --cpus-per-task=4",
                 "#SBATCH -t 02:00:00", "#SBATCH --constraint=avx2"):  # fmt: skip
        assert line in script
    assert "--mem" not in script.replace("--memory-limit", "")
    assert "--nworkers 2 --nthreads 2" in script or "--nthreads 2" in script


def test_htcondor_submit_description_asks_for_what_was_given():
    spec = clusters.ClusterSpec(
        "htcondor", cores=2, memory="4GB", walltime="01:30:00", disk="2GB",
        directives=["requirements=(OpSysAndVer == \"AlmaLinux9\")"],
    )  # fmt: skip
    script = clusters.job_script(spec)
    assert "MY.DaskWorkerCores = 2" in script
    assert "RequestCpus = MY.DaskWorkerCores" in script
    assert "MY.DaskWorkerMemory = 4000000000" in script
    assert "MY.DaskWorkerDisk = 2000000000" in script
    assert "+MaxRuntime = 5400" in script
    assert 'requirements = (OpSysAndVer == "AlmaLinux9")' in script
    assert "distributed.cli.dask_worker" in script


HTCONDOR_PLUGIN = "snakemake_executor_plugin_htcondor"


@pytest.mark.parametrize("profile", ["slurm", "htcondor", "cluster-generic"])
def test_profiles_load_their_executor_and_plan_the_workflow(profile, tmp_path):
    if profile == "htcondor" and importlib.util.find_spec(HTCONDOR_PLUGIN) is None:
        reason = 'the HTCondor executor plugin is not installed (pip install -e ".[htcondor]")'
        if os.environ.get("CI"):
            pytest.fail(f"CI must plan the HTCondor profile: {reason}")
        pytest.skip(reason)
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(tiny_workflow_config(Path("results/generated")))
    )
    dry = snakemake(tmp_path, "--profile", str(PROFILES / profile), "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "rule generate:" in dry.stdout + dry.stderr
    assert "runtime=30" in dry.stdout + dry.stderr  # the profile's default resources
