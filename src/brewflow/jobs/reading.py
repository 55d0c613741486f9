"""What a job reads of its files: the chunks of each file, checked before any read
(:func:`preflight`), and the chunks and files skipped under ``on_bad_file: skip``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from brewflow.config import dataset_replicas, on_bad_file
from brewflow.jobs import recordcache
from brewflow.locations import RemoteSettings, is_url
from brewflow.nanoevents import parquet
from brewflow.nanoevents.inputs import SKIP_HINT, InputError, open_replica
from brewflow.nanoevents.reader import ChunkReadError, FileChangedError
from brewflow.nanoevents.remote import Locations

__all__ = ["ReadPlan", "config_locations", "preflight"]

log = logging.getLogger(__name__)


def file_chunks(record: Mapping[str, Any], step: int) -> list[tuple[int, int]]:
    """A file's partitions: the cluster-aligned chunks preprocessing recorded, or even steps."""
    if record.get("chunk_size") == step and record.get("chunks") is not None:
        return [(a, b) for a, b in record["chunks"]]
    n = record["entries"]
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def covers(chunks: Sequence[tuple[int, int]], entries: int) -> bool:
    """Whether ``chunks`` are exactly ``[0, entries)`` cut in consecutive pieces."""
    edges = [0, *(b for _, b in chunks)]
    return [a for a, _ in chunks] == edges[:-1] and edges[-1] == entries


class ReadPlan:
    """What a job reads of its files: chunks, and chunks skipped (``on_bad_file: skip``) with
    the reason. Under ``fail``, :meth:`bad` re-raises instead."""

    def __init__(self, config: Mapping, dataset: str, files: Sequence[Mapping[str, Any]]):
        self.policy = on_bad_file(config, dataset)
        self.dataset = dataset
        self.is_data, self.step_size = config["datasets"][dataset]["is_data"], config["step_size"]
        self.steps = {f["path"]: file_chunks(f, config["step_size"]) for f in files}
        self.skipped: list[dict[str, Any]] = []
        self.remote = RemoteSettings.of(config)
        self.replicas = {f["path"]: list(f["replicas"]) for f in files if f.get("replicas")}

    def locations(self, files: Sequence[Mapping[str, Any]]) -> Locations:
        """Where the files' chunks are read from: each remote file's replicas, the one that
        answered the preflight first (:func:`preflight`), and the UUIDs they must have."""
        urls = {f["path"]: tuple(self.replicas[f["path"]]) for f in files
                if f["path"] in self.replicas}  # fmt: skip
        uuids = {f["path"]: f["uuid"] for f in files if _root_uuid(f)}
        return Locations(urls, uuids, self.remote)

    def bad(self, error: Exception, path: str, chunk: tuple[int, int] | None = None) -> None:
        """Skip ``chunk`` of ``path`` (all its chunks without one, or when the file changed:
        :class:`FileChangedError`), or raise ``error``."""
        if isinstance(error, FileChangedError):
            chunk = None  # none of its chunks is the one preprocessed
        reason = str(error)
        if not reason.startswith("dataset "):
            reason = f"dataset {self.dataset!r}, {reason}"
        if self.policy == "fail":
            message = f"{reason}{SKIP_HINT}"
            if isinstance(error, ChunkReadError):
                raise ChunkReadError(message, error.path, error.start, error.stop) from None
            raise InputError(message) from None
        log.warning("skipping (on_bad_file: skip): %s", reason)
        gone = [c for c in self.steps[path] if chunk is None or c == chunk]
        self.steps[path] = [c for c in self.steps[path] if c not in gone]
        self.skipped += [{"path": path, "start": a, "stop": b, "reason": reason} for a, b in gone]

    def reading(self, files: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The files with chunks left to read."""
        return [f for f in files if any(b > a for a, b in self.steps[f["path"]])]


def config_locations(config: Mapping, dataset: str, files: Sequence[str]) -> Locations:
    """Where a dataset's listed ``files`` are, from the config alone (no inventory): each
    logical name's URLs at the redirectors, no UUIDs to check."""
    urls = {f: tuple(dataset_replicas(config, dataset, f)) for f in files}
    return Locations({f: u for f, u in urls.items() if u != (f,) or is_url(f)}, {},
                     RemoteSettings.of(config))  # fmt: skip


def preflight(plan: ReadPlan, files: Sequence[Mapping[str, Any]]) -> None:
    """Open every file before any event is read: missing, damaged or changed files (other
    entries, another ROOT UUID or parquet footer than at preprocessing) fail the job with an
    :class:`InputError` naming them (or are skipped). A remote file is opened from its first
    replica that answers, which its chunks are then read from first (logged)."""
    where = f"dataset {plan.dataset!r}"
    for f in files:
        urls = plan.replicas.get(f["path"], [f["path"]])
        try:
            ttree, url, failures = open_replica(
                f["path"], urls, f["tree"], plan.remote, where=where,
                uuid=f["uuid"] if _root_uuid(f) else None,
            )  # fmt: skip
            if _is_parquet(f) and parquet.footprint(f["path"]) != f["uuid"]:
                raise InputError(
                    f"{where}, file {f['path']!r}: its content is not what was preprocessed "
                    "(another parquet footer): the file changed; rerun preprocessing "
                    "(snakemake --forcerun preprocess)"
                )
            if ttree.num_entries != f["entries"]:
                _forget_record(plan, f, urls)
                raise InputError(
                    f"{where}, file {f['path']!r}: {ttree.num_entries} entries, "
                    f"{f['entries']} when it was preprocessed: the file changed (or its cached "
                    "record was wrong: dropped); rerun preprocessing (snakemake --forcerun "
                    "preprocess)"
                )
        except InputError as err:
            plan.bad(err, f["path"])
            continue
        if f["path"] in plan.replicas:
            plan.replicas[f["path"]] = [url, *(u for u in urls if u != url)]
            failed = f" ({len(failures)} failed attempt(s) before)" if failures else ""
            log.info("%s: reading %s from %s%s", plan.dataset, f["path"], url, failed)


def _is_parquet(record: Mapping[str, Any]) -> bool:
    return str(record.get("uuid") or "").startswith("parquet:")


def _root_uuid(record: Mapping[str, Any]) -> bool:
    """Whether a file's record names its ROOT UUID, which every read checks (local files too:
    one rewritten in place with its mtime set back is not the file preprocessed)."""
    return bool(record.get("uuid")) and not _is_parquet(record)


def _forget_record(plan: ReadPlan, record: Mapping[str, Any], urls: Sequence[str]) -> None:
    """Drop preprocessing's cached record of a file that contradicts it, so that preprocessing
    it again inspects the file (best effort: the error that follows names the file)."""
    try:
        recordcache.forget(record["path"], record["tree"], is_data=plan.is_data,
                          step_size=plan.step_size, replicas=urls, remote=plan.remote,
                          dataset=plan.dataset)  # fmt: skip
    except InputError as err:
        log.debug("cannot drop the cached record of %s: %s", record["path"], err)
