"""Config -> Snakemake targets: the dataset x systematic fan-out, output paths, fingerprints.

The ``.smk`` rules import these so that no logic lives in the workflow files.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from brewflow.config import (
    demo_payloads,
    era_of,
    eras,
    fit_channels,
    golden_json,
    hypotheses,
    is_generated,
    local_files,
    payload_files,
    processes,
    rates,
    skim_targets,
    systematics_for,
)
from brewflow.config.loading import resolved_document
from brewflow.config.specfiles import planning, spec_file
from brewflow.files import atomic_write, sweep_temporary
from brewflow.results.inventory import group_chunks, read_inventory

log = logging.getLogger(__name__)
SNAKEFILE = Path(__file__).resolve().parents[2] / "Snakefile"

__all__ = [
    "RESOLVED",
    "analysis_inputs",
    "analyze_outputs",
    "analyze_resources",
    "chunk_groups",
    "era_processes",
    "filled_histograms",
    "fit_files",
    "fit_stacks",
    "fitted",
    "generated_files",
    "plot_files",
    "plot_outputs",
    "preprocess_inputs",
    "processes",
    "region_numbers",
    "region_plot_outputs",
    "scope_rule",
    "scoped",
    "scoped_log",
    "scopes",
    "search_files",
    "searched",
    "shapes_outputs",
    "snakemake_command",
    "spec_file",
    "stack_files",
    "stack_inputs",
    "start_run",
    "table_outputs",
    "write_resolved",
    "write_specs",
]


def write_specs(config: Mapping) -> None:
    """Decide (write) the spec file of every job the workflow can plan, before Snakemake
    builds its DAG. Snakemake lists a folder's files the first time it checks one of them and
    takes any file not listed as missing: spec files written by input functions while the DAG
    is built (the first run of a config with many datasets) were refused as missing inputs.
    ``config`` is the one the build plans, not to be edited after
    (:func:`brewflow.config.specfiles.planning`)."""
    planning(config)
    for dataset in config["datasets"]:
        for kind in ("preprocess", "analyze", "scale"):
            spec_file(config, kind, dataset=dataset)
    for skim, dataset in skim_targets(config):
        spec_file(config, "skim", skim=skim, dataset=dataset)
    for region in config["regions"]:
        for histogram in filled_histograms(config, region):
            spec_file(config, "plot", region=region, histogram=histogram)
        for era in scopes(config):
            spec_file(config, "cutflow", region=region, era=era)
    for histogram in config.get("shapes", {}).get("histograms", []):
        spec_file(config, "shapes", histogram=histogram)


def preprocess_inputs(config: Mapping, dataset: str) -> list[str]:
    """Files a ``preprocess`` job of ``dataset`` reads: its local data files (globs expanded;
    remote ones are checked by the job) and, for data, its golden JSON (the runs of each file
    are checked against it), so it reruns when one changes."""
    mask = golden_json(config, dataset)
    return [*local_files(config, dataset), *([mask] if mask else [])]


def analysis_inputs(config: Mapping, dataset: str) -> list[str]:
    """Files an ``analyze`` job of ``dataset`` reads: its local data files (globs expanded; remote
    ones are checked against the inventory by the job), its golden JSON and the correction
    payloads (jobs rerun when one changes)."""
    return [*local_files(config, dataset), *payload_files(config, dataset)]


@functools.lru_cache(maxsize=256)
def _inventory(path: str, mtime_ns: int) -> dict[str, Any]:
    """A preprocess inventory, read once per DAG evaluation however many jobs ask for it."""
    return read_inventory(path)


def _load_inventory(path: str | Path) -> dict[str, Any]:
    return _inventory(str(path), os.stat(path).st_mtime_ns)


def chunk_groups(config: Mapping, inventory: str | Path) -> list[int]:
    """Indices of the chunk-group jobs of a dataset (its preprocess ``inventory``)."""
    files = _load_inventory(inventory)["files"]
    return list(range(len(group_chunks(files, config["events_per_job"]))))


def analyze_resources(
    config: Mapping, inventory: str | Path, threads: int, attempt: int = 1,
    systematics: str = "all",
) -> dict[str, int]:  # fmt: skip
    """``mem_mb`` and ``runtime`` (minutes) of an analyze job, from the events it reads.

    Memory: ``mem_mb_base`` plus ``mem_mb_per_thread`` per thread for partitions of 100k events
    (scaled with ``step_size``). Runtime: 3x the events over the events per second and thread
    that this dataset's job (``systematics``: ``all`` fused, else its systematic) measured when
    it last ran (:mod:`brewflow.config.rates`), else config ``resources.events_per_second``, plus
    5 minutes. A retried job (``attempt`` > 1) asks for proportionally more of both.
    """
    spec = config["resources"]
    events = _load_inventory(inventory)["entries"]
    if config["events_per_job"] is not None:
        events = min(events, config["events_per_job"] + config["step_size"])
    per_thread = spec["mem_mb_per_thread"] * max(config["step_size"] / 100_000, 0.25)
    mem_mb = spec["mem_mb_base"] + per_thread * threads
    rate = rates.measured(Path(inventory).stem, systematics) or spec["events_per_second"]
    seconds = 3 * events / (rate * threads)
    return {"mem_mb": int(mem_mb * attempt), "runtime": int((seconds / 60 + 5) * attempt)}


RESOLVED = ".brewflow/config.json"
"""Where the workflow keeps the validated config its jobs read."""


def write_resolved(config: Mapping, path: str | Path = RESOLVED) -> str:
    """Write the validated config to ``path`` (:data:`RESOLVED`) and return the path.

    Rules pass this path to ``brewflow`` commands, so they see exactly what Snakemake saw
    (including ``--config`` overrides). The path is stable: what a job depends on in the config
    is tracked by the rule's fingerprint params, so editing one dataset reruns only its jobs.
    The file is rewritten only when its content changes, and only at the start of a run
    (``onstart``, under Snakemake's lock): a second run in the same folder, refused by the
    lock, cannot change the config the first run's jobs read.
    """
    text = resolved_document(config)  # keeps the order of regions, datasets, ...
    path = Path(path)
    if not path.exists() or path.read_text() != text:
        atomic_write(path, text)
    return str(path)


def start_run(config: Mapping, results: str | Path = "results") -> None:
    """What the workflow does when a run starts (holding the lock, before any job), after
    :func:`brewflow.jobs.validation.check_payloads`: write the resolved config, and remove
    temporary files that killed jobs left under ``results``."""
    write_resolved(config)
    removed = sweep_temporary(results)
    if removed:
        log.info("removed %d temporary file(s) of killed jobs under %s", len(removed), results)


def generated_files(config: Mapping) -> list[str]:
    """Files that ``brewflow generate`` writes: demo datasets, golden JSON, corrections and the
    demo BDT."""
    files = [f for d in config["datasets"].values() if is_generated(d) for f in d["files"]]
    files += [mask for n, d in config["datasets"].items()
              if is_generated(d) and (mask := golden_json(config, n))]  # fmt: skip
    bdt = config.get("generate", {}).get("bdt")
    return list(dict.fromkeys([*files, *demo_payloads(config).values(), *([bdt] if bdt else [])]))


def analyze_outputs(config: Mapping, pattern: str) -> list[str]:
    """``pattern`` formatted for every dataset x systematic pair."""
    return [
        pattern.format(dataset=d, systematic=s)
        for d in config["datasets"]
        for s in systematics_for(config, d)
    ]


def plot_files(config: Mapping, era: str | None = None) -> list[str]:
    """File names (``{histogram}`` left to fill) one plot job writes: the data/MC plot in
    every format and, with ``plots.systematics``, the per-systematic comparison PDF (of the
    combination: it has every era's nuisances)."""
    names = [f"{{histogram}}.{ext}" for ext in config["plots"]["formats"]]
    if config["plots"]["systematics"] and era is None:
        return [*names, "{histogram}_systematics.pdf"]
    return names


def filled_histograms(config: Mapping, region: str) -> list[str]:
    """The histograms filled in ``region`` (those without ``regions`` are filled in all)."""
    return [h for h, definition in config["histograms"].items()
            if region in (definition.get("regions") or config["regions"])]  # fmt: skip


def region_plot_outputs(config: Mapping, region: str, era: str | None) -> list[str]:
    """The plots one job of ``era`` writes for ``region``: every histogram filled there."""
    return [
        scoped(f"results/plots/{region}/{f.format(histogram=h)}", era)
        for h in filled_histograms(config, region)
        for f in plot_files(config, era)
    ]


def region_numbers(config: Mapping, region: str, era: str | None) -> list[str]:
    """The numbers the plots of ``region`` draw (of ``era``): ``<histogram>.json`` per
    histogram filled there (:class:`brewflow.outputs.distribution.Distribution`)."""
    return [
        scoped(f"results/plots/{region}/{h}.json", era) for h in filled_histograms(config, region)
    ]


def plot_outputs(config: Mapping, pattern: str) -> list[str]:
    """``pattern`` (with ``{region}`` and ``{file}``) for every region x histogram plotted, of
    the combination and (:func:`scoped`) of each era."""
    return [
        scoped(pattern, era).format(region=r, file=f.format(histogram=h))
        for era in scopes(config)
        for h, definition in config["histograms"].items()
        for r in (definition.get("regions") or config["regions"])
        for f in plot_files(config, era)
    ]


def shapes_outputs(config: Mapping, pattern: str) -> list[str]:
    """``pattern`` formatted for every histogram with fit inputs (combine ROOT shapes and
    datacard, pyhf workspace)."""
    names = config.get("shapes", {}).get("histograms", [])
    return [pattern.format(histogram=h, ext=e) for h in names for e in ("root", "txt", "pyhf.json")]


def table_outputs(config: Mapping, pattern: str) -> list[str]:
    """``pattern`` formatted for every region x table format, of the combination and of each
    era."""
    return [
        scoped(pattern, era).format(region=r, ext=e)
        for era in scopes(config)
        for r in config["regions"]
        for e in ("csv", "md", "tex")
    ]


def scopes(config: Mapping) -> list[str | None]:
    """What stacks, tables and plots are made for: the combination (None), then each era
    (none without ``eras``)."""
    return [None, *eras(config)]


def scoped(pattern: str, era: str | None) -> str:
    """``results/<kind>/...`` of the combination; ``results/eras/<era>/<kind>/...`` of one era."""
    return pattern if era is None else pattern.replace("results/", f"results/eras/{era}/", 1)


def scoped_log(pattern: str, era: str | None) -> str:
    """``logs/<kind>/...`` of the combination; ``logs/<kind>/<era>/...`` of one era."""
    kind, _, rest = pattern.removeprefix("logs/").partition("/")
    return pattern if era is None else f"logs/{kind}/{era}/{rest}"


def scope_rule(name: str, era: str | None) -> str:
    """The name of a rule's copy for ``era`` (``name`` for the combination)."""
    return name if era is None else f"{name}_era_{era}"


def era_processes(config: Mapping, era: str | None) -> dict[str, list[str]]:
    """Process -> its datasets in ``era`` (None: every dataset), processes without one left
    out."""
    out: dict[str, list[str]] = {}
    for process, datasets in processes(config).items():
        if chosen := [d for d in datasets if era is None or era_of(config, d) == era]:
            out[process] = chosen
    return out


def stack_files(config: Mapping, era: str | None = None) -> list[str]:
    """The per-process stacks of ``era`` (None: of the combination)."""
    return [scoped(f"results/stack/{p}.json", era) for p in era_processes(config, era)]


def stack_inputs(config: Mapping, process: str, era: str | None = None) -> list[str]:
    """What the stack of ``process`` sums: the scaled datasets (of ``era``), or, for the
    combination of several eras, the eras' stacks."""
    if era is None and eras(config):
        return [scoped(f"results/stack/{process}.json", e) for e in eras(config)
                if process in era_processes(config, e)]  # fmt: skip
    return [f"results/scale/{d}.json" for d in era_processes(config, era)[process]]


def fit_stacks(config: Mapping, with_hypotheses: bool = True) -> list[str]:
    """The stacks the fit inputs read: each era's (one channel per region x era), or the
    stacks of the one implicit era; without the searches' hypotheses
    (``with_hypotheses=False``: the measurement's fit inputs, which leave them out)."""
    files = [f for era in eras(config) for f in stack_files(config, era)] or stack_files(config)
    if with_hypotheses:
        return files
    apart = hypotheses(config)
    return [f for f in files if Path(f).stem not in apart]


def fitted(config: Mapping) -> list[str]:
    """The histograms the config fits (none without a ``fit`` block)."""
    return list(config.get("fit", {}).get("histograms", []))


def searched(config: Mapping) -> list[str]:
    """The config's searches (``searches.<name>``)."""
    return list(config.get("searches", {}))


def search_files(config: Mapping, search: str) -> list[str]:
    """What search ``search`` writes in ``results/search/<search>/``: the limit table
    (``limits.json``, ``.md``, ``.tex``), the Brazil plot ``limits.<format>`` and each signal
    hypothesis's workspace ``<process>.pyhf.json``."""
    folder = f"results/search/{search}"
    points = config["searches"][search]["signals"]
    return [
        *(f"{folder}/limits.{ext}" for ext in ("json", "md", "tex")),
        *(f"{folder}/limits.{ext}" for ext in config["plots"]["formats"]),
        *(f"{folder}/{process}.pyhf.json" for process in points),
    ]


def fit_files(config: Mapping, histogram: str) -> list[str]:
    """What the fit of ``histogram`` writes in ``results/fit/<histogram>/``: the results table
    (``fit.json``, ``.md``, ``.tex``), the figures (pulls, impacts, correlation matrix,
    likelihood scan, CLs scan: ``brewflow.outputs.fit.FIGURES``) and per channel the pre-
    and post-fit plots, in the configured plot formats."""
    folder = f"results/fit/{histogram}"
    formats = config["plots"]["formats"]
    plots = ["pulls", "impacts", "correlations", "scan", "cls"] + [
        f"{stage}/{channel}" for stage in ("prefit", "postfit")
        for channel, _, _ in fit_channels(config, histogram)
    ]  # fmt: skip
    return [f"{folder}/fit.{ext}" for ext in ("json", "md", "tex")] + [
        f"{folder}/{name}.{ext}" for name in plots for ext in formats
    ]


def snakemake_command(
    workdir: str | Path, configfile: str | Path, cores: int, *extra: str
) -> list[str]:
    """The command that runs this repository's workflow in ``workdir`` on ``configfile``.

    Needs brewflow installed from a checkout (``pip install -e .``), where the Snakefile is.
    """
    if not SNAKEFILE.is_file():
        raise FileNotFoundError(
            f"no Snakefile at {SNAKEFILE}; install brewflow with "
            "'pip install -e .' from a clone of the repository"
        )
    return [
        sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir),
        "--config", f"file={Path(configfile).resolve()}", "--cores", str(cores), *extra,
    ]  # fmt: skip
