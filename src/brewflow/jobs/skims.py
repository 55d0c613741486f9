"""Skims: the events of a region with chosen columns, to parquet or ROOT, with a ledger.

``config["skims"][name]`` names a ``region`` (its cuts select the events, on nominal objects),
``columns`` (NanoAOD branches or whole collections, written as read, so a later run re-applies
its corrections exactly as on the original files; default: every field the analysis reads) and
``variables`` (analysis variables, computed on corrected objects, added as columns). A skim is a
folder of ``part-<i>.parquet`` files (``format: parquet``, :func:`dask_awkward.to_parquet`) or
``part-<i>.root`` files (``format: root``, uproot; tree ``Events`` in NanoAOD's layout:
``nMuon``, ``Muon_pt``, ``MET_pt``; a missing variable value is NaN), one per chunk read, and
``skim.json``: per part the events read and selected, the sum of genWeight (and of its square)
of the events it was selected from and its source chunk; what was skipped; the provenance.
Skims are dataset inputs (``files: [results/skim/<skim>/<dataset>/*.parquet]``, or
``*.root``): preprocessing takes each part's sum of genWeight from the ledger, so
normalisation is that of the original dataset.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import dask
import dask_awkward as dak
import numpy as np
import uproot

from brewflow.arrays import metadata_pass, typetracer_like
from brewflow.config import ConfigError, dataset_spec, payload_files
from brewflow.files import atomic_output
from brewflow.jobs import execution
from brewflow.jobs.build import analysis_code
from brewflow.jobs.gate import DataGate
from brewflow.nanoevents.inputs import InputError
from brewflow.reproducible import fixed_root_clock
from brewflow.results import provenance
from brewflow.results.documents import read_document, write_document
from brewflow.results.inventory import read_inventory
from brewflow.weights import weight_sums

__all__ = ["LEDGER", "part_of", "skim_job", "write_skim"]

LEDGER = "skim.json"
log = logging.getLogger(__name__)


def part_of(path: str | Path) -> dict[str, Any] | None:
    """The ledger entry of a skim part (None for a file outside a brewflow skim)."""
    path = Path(path)
    ledger = path.parent / LEDGER
    if not ledger.is_file():
        return None
    for part in read_document(ledger, what="brewflow skim ledger")["parts"]:
        if part["file"] == path.name:
            return part
    raise InputError(f"file {str(path)!r} is not listed in its skim ledger {str(ledger)!r}")


def _per_partition(array: Any, square: bool = False) -> Any:
    """One number per partition: the sum of the weights ``array`` (of their squares), float64
    (:func:`brewflow.weights.weight_sums`)."""
    meta = typetracer_like(np.zeros(1))

    def total(values: ak.Array) -> ak.Array:
        if metadata_pass(values):
            return meta
        return ak.Array(np.array([weight_sums(values)[1 if square else 0]]))

    return dak.map_partitions(total, array, meta=meta, label="partition-sum")


def _read_fields(events: Any, output: Any) -> list[str]:
    """The event fields (collections, branches) the analysis reads, corrections included, and
    the event identity (run, lumi block, event): what a skim keeps to be analysed again."""
    graphs = [*output.variables.values(), output.selection.all(*output.selection.names)]
    if output.weights:
        graphs += [output.weights.weight(v) for v in [None, *output.weights.variations]]
    branches = {c for cols in dak.necessary_columns(*graphs).values() for c in cols or ()}
    fields = {"run", "luminosityBlock", "event"}  # event identity, and for golden JSONs
    for branch in branches:
        prefix = branch.split("_", 1)[0]
        counted = branch[1:] if branch.startswith("n") else None
        if counted is not None and counted in events.fields:
            fields.add(counted)
        elif branch in events.fields:
            fields.add(branch)
        elif prefix in events.fields:
            fields.add(prefix)
    return [f for f in events.fields if f in fields]


def _root_branches(data: ak.Array) -> dict[str, ak.Array]:
    """The fields of ``data`` as uproot writes them in NanoAOD's layout: behaviours dropped,
    missing values (option types, e.g. a variable undefined for an event) as NaN."""
    out = {}
    for field in data.fields:
        column = ak.without_parameters(data[field])
        if "?" in str(column.type.content):
            column = ak.fill_none(column, np.nan, axis=None)
        out[field] = column
    return out


class _ToRoot:
    """Write one partition to ``directory/part-<i>.root`` (tree ``Events``: collections as
    ``nMuon`` + ``Muon_pt``..., records as ``MET_pt``...); returns its number of events."""

    def __init__(self, directory: Path, seed: str) -> None:
        self.directory, self.seed = directory, seed

    def __call__(self, data: ak.Array, block_index: tuple[int, ...]) -> ak.Array:
        name = f"part-{block_index[0]}.root"
        identity = uuid.uuid5(uuid.NAMESPACE_URL, f"brewflow-skim/{self.seed}/{name}")
        branches = _root_branches(data)
        with (
            atomic_output(self.directory / name) as tmp,
            fixed_root_clock(),
            uproot.recreate(tmp, uuid_function=lambda: identity) as out,
        ):
            out.mktree("Events", {k: v.type for k, v in branches.items()})
            if len(data):
                out["Events"].extend(branches)
        return ak.Array(np.array([len(data)], dtype=np.int64))


def _to_root(table: Any, directory: Path, seed: str) -> Any:
    """A lazy write of every partition of ``table`` to ROOT (:class:`_ToRoot`)."""
    from dask.blockwise import BlockIndex

    meta = typetracer_like(np.zeros(1, np.int64))
    written = dak.map_partitions(
        _ToRoot(directory, seed), table, BlockIndex((table.npartitions,)),
        label="to-root", meta=meta,
    )  # fmt: skip
    written.dask.layers[written.name].annotations = {"ak_output": True}  # write every column
    return written


def write_skim(
    config: Mapping[str, Any],
    name: str,
    dataset: str,
    files: Sequence[Mapping[str, Any]],
    outdir: str | Path,
    *,
    scheduler: str | None = None,
    workers: int = 1,
    progress_interval: float | None = 10.0,
) -> dict[str, Any]:
    """Write the skim ``name`` of ``dataset`` (preprocess records ``files``) to ``outdir``;
    return its ledger (also written to ``outdir/skim.json``)."""
    from brewflow.jobs.blocks import with_blocks
    from brewflow.jobs.build import analysis_context, load_analysis
    from brewflow.jobs.correctors import correctors
    from brewflow.jobs.reading import ReadPlan, preflight
    from brewflow.nanoevents.reader import lazy_events

    spec = config["skims"][name]
    is_data = config["datasets"][dataset]["is_data"]
    cuts = config["regions"][spec["region"]]["cuts"]
    outdir = Path(outdir)
    plan = ReadPlan(config, dataset, files)
    preflight(plan, files)
    reading = plan.reading(files)
    if not reading:
        raise InputError(f"dataset {dataset!r}: no events to skim (every file was skipped)")
    read = lazy_events(
        {f["path"]: f["tree"] for f in reading},
        steps={f["path"]: plan.steps[f["path"]] for f in reading},
        entries={f["path"]: f["entries"] for f in reading},
        retries=(config["retries"]["read"], config["retries"]["backoff"]),
        locations=plan.locations(reading),  # logical names' replicas; UUIDs checked
    )
    gate = DataGate.of(config, dataset)  # certified luminosity and blinding, as analyze
    certified = gate.certified_mask(read, reading[0]["path"])
    events = read if certified is None else read[certified]
    corrector = correctors(config, dataset)
    context = analysis_context(config, dataset)
    analysis = with_blocks(config, dataset, load_analysis(config["analysis"]["callable"]),
                           reading[0]["path"])  # fmt: skip
    output = analysis(corrector.apply(events) if corrector else events, context)
    selection = gate.selection(output, spec["region"])
    mask = selection.mask
    exposures = gate.exposures({spec["region"]: selection})  # checked before the skim lands
    columns = list(spec["columns"]) or _read_fields(events, output)
    missing = [c for c in columns if c not in events.fields]
    if missing:
        raise InputError(
            f"config key 'skims.{name}.columns': no branch or collection {missing} in "
            f"dataset {dataset!r} (first file {reading[0]['path']!r})"
        )
    table = events[columns][mask]
    for variable in spec["variables"]:
        if variable not in output.variables:  # the config's: not run again (jobs.guard)
            raise ConfigError(
                f"config key 'skims.{name}.variables': the analysis returns no {variable!r} "
                f"(it has: {', '.join(output.variables)})"
            )
        table = dak.with_field(table, output.variables[variable][mask], variable)
    selected = _per_partition(dak.values_astype(mask, np.float64))
    # parts of a killed run of this job are cleared, a previous skim is replaced whole
    with atomic_output(outdir, directory=True, clear_stale=True) as tmp:
        suffix = spec["format"]
        if suffix == "root":
            writing = _to_root(table, tmp, seed=f"{name}/{dataset}")
        else:
            writing = dak.to_parquet(table, str(tmp), compute=False, prefix="part")
        collections: tuple = (writing, selected)
        if certified is not None:
            collections += (_per_partition(dak.values_astype(certified, np.float64)),)
        if not is_data:
            weights = events.genWeight
            collections += (_per_partition(weights), _per_partition(weights, square=True))
        collections += tuple(exposures.values())
        sizes = [b - a for f in reading for a, b in plan.steps[f["path"]]]
        label = f"{dataset}/skim {name}"
        progress = (
            execution.Progress(label, sizes, progress_interval) if progress_interval else None
        )
        _, n_selected, *sums = execution.compute(
            dask.optimize(*collections),  # the columns written and counted, read once
            scheduler=scheduler or execution.scheduler_name(config), workers=workers,
            progress=progress,
        )  # fmt: skip
        if exposures:  # a window's events in this region: no skim (the parts are dropped)
            counts, sums = sums[len(sums) - len(exposures) :], sums[: len(sums) - len(exposures)]
            gate.check(dict(zip(exposures, counts, strict=True)))
        n_certified = sums.pop(0) if certified is not None else None
        sources = [(f["path"], a, b) for f in reading for a, b in plan.steps[f["path"]]]
        written = sorted(tmp.glob(f"*.{suffix}"), key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))
        if len(written) != len(sources):
            raise RuntimeError(f"{len(written)} {suffix} parts for {len(sources)} chunks in {tmp}")
        parts = []
        for i, (path, (source, start, stop)) in enumerate(zip(written, sources, strict=True)):
            part: dict[str, Any] = {
                "file": f"part-{i}.{suffix}",
                "events_read": stop - start,
                "events": int(n_selected[i]),
                "source": [source, start, stop],
            }
            if n_certified is not None:
                part["events_certified"] = int(n_certified[i])
            if sums:
                part["sumw"], part["sumw2"] = float(sums[0][i]), float(sums[1][i])
            path.rename(tmp / part["file"])
            parts.append(part)
        document = {
            "format": "brewflow-skim",
            "skim": name,
            "dataset": dataset,
            "region": spec["region"],
            "file_format": suffix,
            "cuts": list(cuts),
            "columns": columns,
            "variables": list(spec["variables"]),
            "events_read": sum(p["events_read"] for p in parts),
            **_gate_record(gate, spec["region"], parts),
            "events": sum(p["events"] for p in parts),
            "parts": parts,
            "skipped": plan.skipped,
            "provenance": provenance.record(
                config=config,
                inputs=files,
                payloads=payload_files(config, dataset),
                analysis=analysis_code(config),
            ),
        }
        write_document(tmp / LEDGER, document)
    log.info("%s: %d of %d events in %d parts -> %s", label, document["events"],
             document["events_read"], len(parts), outdir)  # fmt: skip
    return document


def _gate_record(gate: DataGate, region: str, parts: Sequence[Mapping]) -> dict[str, Any]:
    """What the data gate did to a skim, for its ledger: the certified events and the golden
    JSON, whether the region is blinded."""
    out: dict[str, Any] = {}
    if gate.lumi_mask is not None:
        out["events_certified"] = sum(p["events_certified"] for p in parts)
        out["lumi_mask"] = gate.lumi_mask
    if not gate.admits(region):
        out["blinded"] = True
    return out


def skim_job(
    config: Mapping[str, Any],
    name: str,
    dataset: str,
    inventory: str | Path,
    outdir: str | Path,
    **options: Any,
) -> dict[str, Any]:
    """One skim job of the workflow: :func:`write_skim` on the files of ``dataset``'s
    ``inventory``; ``options`` go to it."""
    dataset_spec(config, dataset)
    if name not in config["skims"]:
        raise ConfigError(f"unknown skim {name!r}; config has: {', '.join(config['skims'])}")
    files = read_inventory(inventory)["files"]
    return write_skim(config, name, dataset, files, outdir, **options)
