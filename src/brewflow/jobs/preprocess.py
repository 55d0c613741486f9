"""Per-dataset file inventory: entries per file, sum of generator weights (MC), runs (data: a
file none of whose runs its golden JSON certifies is refused), ROOT file UUID; each file's
record cached, verified against the file (:mod:`brewflow.nanoevents.identity`)."""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brewflow.config import (
    dataset_files,
    dataset_replicas,
    dataset_spec,
    golden_json,
    on_bad_file,
)
from brewflow.errors import ConfigError
from brewflow.goldenjson import LumiMaskError, certified_ranges
from brewflow.jobs import recordcache
from brewflow.locations import RemoteSettings, is_glob, is_url
from brewflow.nanoevents import parquet, trees
from brewflow.nanoevents import remote as nanoremote
from brewflow.nanoevents.inputs import (
    SKIP_HINT,
    InputError,
    check_finite_weights,
    one_line,
    open_replica,
    uuid_of,
)
from brewflow.nanoevents.remote import remote_errors
from brewflow.results import provenance
from brewflow.weights import weight_sums

__all__ = ["InputError", "chunks", "inspect_file", "preprocess"]

log = logging.getLogger(__name__)


def chunks(clusters: list[int], step_size: int) -> list[list[int]]:
    """``[start, stop)`` chunks of about ``step_size`` entries, cut at cluster boundaries.

    ``clusters`` are the tree's cluster (basket) boundaries ``[0, ..., entries]``. Whole clusters
    are grouped until a chunk holds at least ``step_size`` entries, so no basket is decompressed
    by two chunks; a cluster larger than ``step_size`` is split evenly (parallelism first).
    """
    out: list[list[int]] = []
    start = clusters[0]
    for low, high in itertools.pairwise(clusters):
        if high - low > step_size:
            if start < low:
                out.append([start, low])
            parts = -(-(high - low) // step_size)
            cuts = [low + (high - low) * i // parts for i in range(parts + 1)]
            out += [[a, b] for a, b in itertools.pairwise(cuts)]
            start = high
        elif high - start >= step_size:
            out.append([start, high])
            start = high
    if start < clusters[-1]:
        out.append([start, clusters[-1]])
    return out


def inspect_file(
    path: str,
    tree: str,
    *,
    is_data: bool,
    dataset: str,
    step_size: int | None = None,
    replicas: Sequence[str] | None = None,
    remote: RemoteSettings | None = None,
) -> dict[str, Any]:
    """Entries, sum of ``genWeight`` (and of its square) for MC, the runs (sorted) of data
    with a ``run`` branch, size and UUID of one file;
    with ``step_size``, its chunks: ``[start, stop)`` cut at cluster boundaries. A remote
    file (``path`` a URL or a logical name, ``replicas`` its URLs in order) is read from the
    first replica that answers, recorded as ``replica``."""
    remote = remote or RemoteSettings()
    inspect = functools.partial(_inspect, path, tree, is_data=is_data, dataset=dataset,
                                step_size=step_size)  # fmt: skip
    urls = list(replicas or [path])
    record, _, _ = open_replica(path, urls, tree, remote, where=f"dataset {dataset!r}",
                                then=inspect)  # fmt: skip
    if "replica" in record:
        record["replicas"] = urls
    return record


def _inspect(
    path: str, tree: str, ttree: Any, replica: str, *, is_data: bool, dataset: str,
    step_size: int | None,
) -> dict[str, Any]:  # fmt: skip
    """The record of file ``path`` read from ``replica`` (its open ``ttree``). A read error is
    raised as is for a remote replica (the next one is tried), as an :class:`InputError` for a
    local file."""
    where = f"dataset {dataset!r}, file {path!r}"
    if isinstance(ttree, parquet.Source):
        return _inspect_parquet(path, ttree, is_data=is_data, step_size=step_size)
    record: dict[str, Any] = {
        "path": path,
        "tree": tree,
        "entries": int(ttree.num_entries),
        "size": _size(ttree, replica),
        "uuid": uuid_of(ttree),
    }
    if is_url(replica):
        record["replica"] = replica
    try:
        if step_size is not None:
            record["chunk_size"] = step_size
            record["chunks"] = chunks(trees.cluster_edges(ttree), step_size)
        if not is_data and (skimmed := _skimmed_from(path)):
            record.update(skimmed)
        elif not is_data:
            if "genWeight" not in trees.branch_names(ttree):
                raise InputError(
                    f"{where}: MC file without a 'genWeight' branch; if this is collision data "
                    "set 'is_data: true' for the dataset"
                )
            sumw, sumw2 = 0.0, 0.0
            entries, step = int(ttree.num_entries), 10_000_000
            for start in range(0, entries, step):
                weights = trees.read(ttree, ["genWeight"], start, min(start + step, entries))
                values = np.asarray(weights["genWeight"])
                check_finite_weights(values, where, start)
                chunk_sums = weight_sums(values)
                sumw, sumw2 = sumw + chunk_sums[0], sumw2 + chunk_sums[1]
            record["sumw"], record["sumw2"] = sumw, sumw2
        if is_data and "run" in trees.branch_names(ttree):
            record["runs"] = _runs(ttree)
    except remote_errors() as err:
        if is_url(replica):
            raise
        trees.forget(replica, tree)
        what = "run" if is_data else "genWeight"
        raise InputError(f"{where}: damaged, cannot read {what} ({err})") from None
    return record


def _runs(ttree: Any) -> list[int]:
    """The run numbers of a data file's events (its ``run`` branch, read in steps), sorted."""
    runs: set[int] = set()
    entries, step = int(ttree.num_entries), 10_000_000
    for start in range(0, entries, step):
        values = trees.read(ttree, ["run"], start, min(start + step, entries))["run"]
        runs.update(int(r) for r in np.unique(np.asarray(values)))
    return sorted(runs)


def _size(ttree: Any, replica: str) -> int:
    """The file's size in bytes: on disk, or (remote) the end of the ROOT file its header
    records."""
    if is_url(replica):
        return int(ttree.file.fEND)
    return Path(replica).stat().st_size


def _inspect_parquet(
    path: str, source: Any, *, is_data: bool, step_size: int | None
) -> dict[str, Any]:
    """The record of a parquet file: one chunk (the whole file). For MC, the sum of genWeight
    of a skim's part is that of the events it was skimmed from (:func:`_skimmed_from`); a
    parquet file without a ledger sums its own genWeight."""
    record: dict[str, Any] = {
        "path": path,
        "tree": "parquet",
        "entries": source.num_entries,
        "size": Path(path).stat().st_size,
        "uuid": parquet.footprint(path),
    }
    if step_size is not None:
        record["chunk_size"], record["chunks"] = step_size, [[0, source.num_entries]]
    if not is_data and (skimmed := _skimmed_from(path)):
        record.update(skimmed)
    elif not is_data:
        import awkward as ak

        w = ak.from_parquet(path, columns=["genWeight"])["genWeight"]
        check_finite_weights(ak.to_numpy(w), f"file {path!r}", 0)
        record["sumw"], record["sumw2"] = weight_sums(w)
    if is_data and "run" in source.branches:
        import awkward as ak

        runs = ak.to_numpy(ak.from_parquet(path, columns=["run"])["run"])
        record["runs"] = [int(r) for r in np.unique(runs)]
    return record


def _skimmed_from(path: str) -> dict[str, float]:
    """For a part of a brewflow skim (parquet or ROOT), the sums of genWeight of the events it
    was selected from (its ledger, :mod:`brewflow.jobs.skims`): normalisation is the original's.
    Empty for any other file."""
    from brewflow.jobs import skims

    part = skims.part_of(path)
    if part is None:
        return {}
    return {"sumw": part["sumw"], "sumw2": part["sumw2"], "sumw_from": "skim ledger"}


def _cached_inspect(
    path: str,
    tree: str,
    *,
    is_data: bool,
    dataset: str,
    step_size: int,
    cache: Path | None,
    replicas: Sequence[str],
    remote: RemoteSettings,
) -> dict[str, Any]:
    """:func:`inspect_file`, its record reused from ``cache`` while the file is the one it was
    made from (:mod:`brewflow.jobs.recordcache`); without one, inspected."""
    inspect = functools.partial(
        inspect_file, path, tree, is_data=is_data, dataset=dataset, step_size=step_size,
        replicas=replicas, remote=remote,
    )  # fmt: skip
    if cache is None:
        return inspect()
    return recordcache.cached(inspect, path, tree, is_data=is_data, dataset=dataset,
                              step_size=step_size, cache=cache, replicas=replicas,
                              remote=remote)  # fmt: skip


def preprocess(config: Mapping, dataset: str, *, cache: Path | None = None) -> dict[str, Any]:
    """Inventory of a dataset's files (globs expanded), in a JSON-serialisable dict: per file
    entries, size, UUID, sums of weights (MC), runs (data) and chunks of ``step_size`` events
    at cluster boundaries (what the analysis partitions are). A data file none of whose runs
    the dataset's golden JSON (``lumi_mask``, its own or its era's) certifies is a bad file
    (an :class:`InputError` naming its runs and the JSON's, or skipped and recorded).

    With ``cache`` (a folder; the workflow uses :data:`brewflow.jobs.recordcache.CACHE`), each
    file's record is kept there and reused while the file is unchanged, so adding files to a
    dataset inspects only the new ones."""
    spec = dataset_spec(config, dataset)
    tree = spec.get("tree", config["tree"])
    step = config["step_size"]
    remote = RemoteSettings.of(config)
    policy = on_bad_file(config, dataset)
    golden = _golden_runs(golden_json(config, dataset), dataset)
    paths = _expanded(dataset_files(config, dataset), remote, dataset)
    files, skipped = [], []
    for i, path in enumerate(paths):
        try:
            record = _cached_inspect(
                path, tree, is_data=spec["is_data"], dataset=dataset, step_size=step,
                cache=cache, replicas=dataset_replicas(config, dataset, path), remote=remote,
            )  # fmt: skip
            if golden is not None:
                _check_era(record, golden, str(golden_json(config, dataset)), dataset)
        except InputError as err:
            if policy == "fail":
                raise InputError(f"{err}{SKIP_HINT}") from None
            log.warning("skipping (on_bad_file: skip): %s", err)
            skipped.append({"path": path, "reason": str(err)})
            continue
        files.append(record)
        if len(paths) > 20 and (i + 1) % max(1, len(paths) // 10) == 0:
            log.info("%s: %d/%d files inventoried", dataset, i + 1, len(paths))
    if not files:
        raise InputError(f"dataset {dataset!r}: none of its {len(paths)} file(s) is readable")
    _refuse_copies(dataset, files)
    out: dict[str, Any] = {
        "dataset": dataset,
        "is_data": spec["is_data"],
        "entries": sum(f["entries"] for f in files),
        "files": files,
        "skipped": skipped,
    }
    out["provenance"] = provenance.record(inputs=files)
    if not spec["is_data"]:
        out["sumw"] = sum(f["sumw"] for f in files)
        if out["sumw"] == 0 and out["entries"] > 0:
            raise InputError(
                f"dataset {dataset!r}: the sum of genWeight over {out['entries']} events is "
                "zero; cannot normalise to the cross section (is genWeight filled?)"
            )
    log.info(
        "%s: %d files, %d events%s",
        dataset,
        len(files),
        out["entries"],
        f", {len(skipped)} file(s) skipped" if skipped else "",
    )
    return out


def _golden_runs(mask: str | None, dataset: str) -> list[int] | None:
    """The runs (sorted) a data dataset's golden JSON ``mask`` (:func:`golden_json`: its own
    or its era's ``lumi_mask``) certifies lumi blocks of; None without one."""
    if not mask:
        return None
    try:
        return sorted({run for run, _, _ in certified_ranges(Path(mask))})
    except LumiMaskError as err:  # the golden JSON's problem, not a data file's
        raise ConfigError(f"config key 'datasets.{dataset}.lumi_mask': {err}") from None


def _check_era(record: Mapping[str, Any], golden: list[int], mask: str, dataset: str) -> None:
    """Refuse a data file none of whose runs the dataset's golden JSON certifies (a file of
    another era: its events would all be dropped without a word). A file without events or
    without a ``run`` branch is not checked here."""
    runs = record.get("runs") or []
    if not runs or not set(runs).isdisjoint(golden):
        return
    raise InputError(
        f"dataset {dataset!r}, file {record['path']!r}: {_span(runs)}, golden JSON {mask!r} "
        f"certifies runs {golden[0]}-{golden[-1]}: is the dataset in the right era (config "
        f"keys 'datasets.{dataset}.era', 'lumi_mask')?"
    )


def _span(runs: Sequence[int]) -> str:
    """``run 315267``, ``runs 315267, 315270``, or ``runs 297050-306460 (12 runs)``."""
    if len(runs) == 1:
        return f"run {runs[0]}"
    if len(runs) <= 3:
        return "runs " + ", ".join(map(str, runs))
    return f"runs {runs[0]}-{runs[-1]} ({len(runs)} runs)"


def _expanded(entries: Sequence[str], remote: RemoteSettings, dataset: str) -> list[str]:
    """The entries with each glob on an XRootD folder replaced by the files it matches (local
    globs were expanded with the config)."""
    out: list[str] = []
    for entry in entries:
        if not (is_url(entry) and is_glob(entry)):
            out.append(entry)
            continue
        try:
            matches = nanoremote.expand_glob(entry, remote)
        except nanoremote.remote_errors() as err:
            raise InputError(
                f"dataset {dataset!r}: cannot list {entry!r} ({one_line(err)}); is the server "
                "up and the folder there?"
            ) from None
        if not matches:
            raise InputError(f"dataset {dataset!r}: the glob {entry!r} matches no file")
        log.info("%s: %s matches %d file(s)", dataset, entry, len(matches))
        out += matches
    return out


def _refuse_copies(dataset: str, files: Sequence[Mapping[str, Any]]) -> None:
    """Two files with one ROOT UUID are copies of one file (``cp``, a second download): their
    events would be counted twice. Refused naming both (validation already refuses two names of
    one file)."""
    seen: dict[str, str] = {}
    for record in files:
        first = seen.setdefault(record["uuid"], record["path"])
        if first != record["path"]:
            raise InputError(
                f"dataset {dataset!r}: files {first!r} and {record['path']!r} are copies of one "
                f"file (same ROOT UUID {record['uuid']}); its events would be counted twice: "
                "list one of them"
            )
