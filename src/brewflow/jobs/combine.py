"""The small jobs after analysis: merge a dataset's results, normalise it, sum a process.

Each reads result files and writes one; they import ``hist`` and numpy, never the array stack,
so they start in well under a second.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from brewflow.config import dataset_spec, era_of, era_settings, nuisance_names, process_of
from brewflow.errors import InputError
from brewflow.results import provenance
from brewflow.results.arithmetic import (
    combine_process,
    merge_systematics,
    rename_systematics,
    scale,
)
from brewflow.results.inventory import read_inventory
from brewflow.results.ledger import add_chunks, describe, event_ledger
from brewflow.results.members import combine_members
from brewflow.results.model import Result, load, save

__all__ = ["merge_dataset", "normalise", "sum_process"]

log = logging.getLogger(__name__)


def merge_dataset(
    inputs: Sequence[str | Path], output: str | Path, inventory: str | Path | None = None
) -> Result:
    """One result per dataset from its analyze outputs: chunk groups of a systematic add up,
    then the systematics side by side. With the dataset's ``inventory``, every event is checked
    to be counted once (the event ledger goes into ``meta["ledger"]``), and MC gets the
    inventory's ``sumw`` when nothing was skipped."""
    paths = [str(p) for p in inputs]
    try:
        loaded = {path: load(path) for path in paths}
        by_systematics: dict[tuple[str, ...], list[str]] = {}
        for path, result in loaded.items():
            by_systematics.setdefault(tuple(result.systematics), []).append(path)
        parts = [
            add_chunks([loaded[p] for p in group], group) if len(group) > 1 else loaded[group[0]]
            for group in by_systematics.values()
        ]
        merged = merge_systematics(parts)
        files = read_inventory(inventory) if inventory else None
        if files is not None:
            books = [event_ledger(part, files) for part in parts]
            for part, book in zip(parts[1:], books[1:], strict=True):
                if book["skipped"] != books[0]["skipped"]:
                    raise ValueError(
                        f"systematics {part.systematics} and {parts[0].systematics} skipped "
                        "different chunks (a transient read error?); rerun the analyze jobs"
                    )
            merged.meta["ledger"] = books[0]
            reads = {(r["path"], r["start"], r["stop"], r["replica"]): r
                     for part in parts for r in part.meta.get("replicas", [])}  # fmt: skip
            if reads:  # remote files: which replica served each chunk (any job)
                merged.meta["ledger"]["replicas"] = [reads[k] for k in sorted(reads)]
            if not files["is_data"] and books[0]["complete"]:
                merged.meta["sumw"] = files["sumw"]
    except ValueError as err:
        raise InputError(f"merge of {len(paths)} result(s): {err}") from None
    merged.meta["provenance"] = provenance.of(loaded.values())
    save(merged, output)
    return merged


def normalise(
    config: Mapping[str, Any], input: str | Path, inventory: str | Path, output: str | Path,
    *, dataset: str | None = None,
) -> Result:  # fmt: skip
    """MC scaled to ``xsec x luminosity / sum of genWeight`` (data by 1), with the luminosity
    of the dataset's era; ``envelope`` and ``pdf`` systematics combined from their members
    (:mod:`brewflow.results.members`); systematics not correlated across eras renamed
    ``<name>_<era>``
    (:func:`brewflow.config.nuisance_names`), so every later step sees one nuisance per era.
    An incomplete
    dataset (chunks skipped) is refused unless ``allow_partial``; then its factor uses the
    genWeight sum of what was read. ``dataset``: the dataset ``input`` must hold."""
    result = load(input)
    name = result.dataset or result.process
    if dataset is not None and name != dataset:
        raise InputError(f"{str(input)!r} holds dataset {name!r}, not {dataset!r}")
    spec = dataset_spec(config, name)
    era = era_of(config, name)
    luminosity = era_settings(config, era)["luminosity"]
    result = combine_members(result, config["systematics"])  # envelopes, PDF uncertainties
    result = rename_systematics(result, nuisance_names(config, name))
    result.process = process_of(config, name)  # the process it is stacked in
    book = result.meta.get("ledger")
    meta: dict[str, Any] = {"provenance": provenance.of([result], config=config)}
    if era is not None:
        meta["era"] = era
    sumw = None if spec["is_data"] else read_inventory(inventory)["sumw"]
    if book is not None and not book["complete"]:
        if not spec["allow_partial"]:
            raise InputError(
                f"dataset {name!r} is incomplete ({describe(book)}): not normalised. "
                "`brewflow status` lists what was skipped and why; the next `snakemake` "
                "reads the skipped chunks again (the rest comes from the cache), so rerun it "
                "once their server answers, or fix or remove those files, or set "
                f"datasets.{name}.allow_partial: true to normalise what was read"
            )
        meta["fraction"] = book["fraction"]
        sumw = book["sumw"]["read"] if not spec["is_data"] else None
        log.warning("%s: partial (allow_partial): %s", name, describe(book))
    if spec["is_data"]:
        scaled = scale(result, 1.0, luminosity=luminosity, **meta)
    else:
        factor = spec["xsec"] * luminosity / sumw if sumw else 0.0
        if not sumw:
            log.warning("%s: no events read; it contributes nothing", name)
        scaled = scale(
            result, factor, xsec=spec["xsec"], luminosity=luminosity, sumw_total=sumw, **meta
        )
        log.info("%s: xsec %g pb x L %g /pb / sumw %g = %g",
                 name, spec["xsec"], luminosity, sumw, factor)  # fmt: skip
    save(scaled, output)
    return scaled


def sum_process(inputs: Sequence[str | Path], process: str, output: str | Path) -> Result:
    """The scaled datasets of one process summed (what plots and tables stack)."""
    parts = [load(p) for p in inputs]
    total = combine_process(parts, process)
    total.meta["provenance"] = provenance.of(parts)
    save(total, output)
    return total
