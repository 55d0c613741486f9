"""Config -> Snakemake targets: the dataset x systematic fan-out, output paths, fingerprints.

The ``.smk`` rules import these so that no logic lives in the workflow files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from brewflow.config import (
    applicable_systematics,
    is_generated,
    local_files,
    on_bad_file,
    payload_files,
    processes,
    systematics_for,
)
from brewflow.config.loading import resolved_document
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
    "dataset_fingerprint",
    "fingerprint",
    "fingerprint_file",
    "generated_files",
    "normalisation_fingerprint",
    "plot_files",
    "plot_fingerprint",
    "plot_outputs",
    "preprocess_fingerprint",
    "processes",
    "shapes_outputs",
    "skim_fingerprint",
    "snakemake_command",
    "start_run",
    "table_outputs",
    "write_resolved",
]


def fingerprint(value: Any) -> str:
    """A short stable hash of a JSON-serialisable value (what a job depends on in the config)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


FINGERPRINTS = Path(".brewflow") / "fingerprints"


def fingerprint_file(kind: str, name: str, value: str) -> str:
    """The file recording fingerprint ``value`` of ``kind``/``name``: a rule's input, so that
    Snakemake reruns the job when what it depends on in the config changes (its mtime is newer
    than the job's outputs). Written only when the value changes; a file written for the first
    time (a new checkout, a removed ``.brewflow``) is dated 1970, so it reruns nothing.

    Rules carry their config dependencies this way rather than as ``params``: Snakemake compares
    params through pandas whenever pandas is installed, which costs every DAG build 0.5 s.
    """
    path = FINGERPRINTS / kind / f"{name}.txt"
    text = value + "\n"
    try:
        current = path.read_text()
    except FileNotFoundError:
        atomic_write(path, text)
        os.utime(path, (0, 0))
    else:
        if current != text:
            atomic_write(path, text)
    return str(path)


def dataset_fingerprint(config: Mapping, dataset: str) -> str:
    """What an ``analyze`` job of this dataset depends on in the config (and nothing else)."""
    spec = config["datasets"][dataset]
    relevant = {k: spec.get(k) for k in ("files", "is_data", "tree", "jec", "lumi_mask")}
    relevant["on_bad_file"] = on_bad_file(config, dataset)
    keys = ("analysis", "regions", "histograms", "step_size", "tree", "corrections", "jets")
    shared = {k: config.get(k) for k in keys}
    systematics = {s: config["systematics"][s] for s in applicable_systematics(config, dataset)}
    return fingerprint([relevant, shared, systematics])


def skim_fingerprint(config: Mapping, skim: str, dataset: str) -> str:
    """What a skim of a dataset depends on: its definition and what its analyze jobs do."""
    return fingerprint([config["skims"][skim], dataset_fingerprint(config, dataset)])


def preprocess_fingerprint(config: Mapping, dataset: str) -> str:
    """What a dataset's inventory depends on in the config: its files, kind, tree, chunking
    and bad-file policy (not its plot label or normalisation)."""
    spec = config["datasets"][dataset]
    relevant = {k: spec.get(k) for k in ("files", "redirectors", "is_data", "tree")}
    policy = on_bad_file(config, dataset)
    return fingerprint([relevant, policy, config["step_size"], config["tree"]])


def normalisation_fingerprint(config: Mapping, dataset: str) -> str:
    """What ``scale`` of a dataset depends on: cross section, luminosity, allow_partial."""
    spec = config["datasets"][dataset]
    return fingerprint([spec.get("xsec"), config["luminosity"], spec["allow_partial"]])


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
    config: Mapping, inventory: str | Path, threads: int, attempt: int = 1
) -> dict[str, int]:
    """``mem_mb`` and ``runtime`` (minutes) of an analyze job, from the events it reads.

    Memory: ``mem_mb_base`` plus ``mem_mb_per_thread`` per thread for partitions of 100k events
    (scaled with ``step_size``). Runtime: 3x the events over ``events_per_second`` per thread,
    plus 5 minutes. A retried job (``attempt`` > 1) asks for proportionally more of both.
    """
    spec = config["resources"]
    events = _load_inventory(inventory)["entries"]
    if config["events_per_job"] is not None:
        events = min(events, config["events_per_job"] + config["step_size"])
    per_thread = spec["mem_mb_per_thread"] * max(config["step_size"] / 100_000, 0.25)
    mem_mb = spec["mem_mb_base"] + per_thread * threads
    seconds = 3 * events / (spec["events_per_second"] * threads)
    return {"mem_mb": int(mem_mb * attempt), "runtime": int((seconds / 60 + 5) * attempt)}


def plot_fingerprint(config: Mapping, histogram: str) -> str:
    """What a plot depends on in the config besides its inputs: styles, labels, binning."""
    styles = {
        name: [d.get("label"), d.get("color"), d.get("process")]
        for name, d in config["datasets"].items()
    }
    return fingerprint(
        [
            styles,
            config["plots"],
            config["histograms"][histogram],
            config["regions"],
            config["luminosity"],
            config["energy"],
        ]
    )


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
    files += [
        d["lumi_mask"] for d in config["datasets"].values() if "lumi_mask" in d and is_generated(d)
    ]
    settings = config.get("generate", {})
    return [*files, *(settings[k] for k in ("corrections", "bdt") if settings.get(k))]


def analyze_outputs(config: Mapping, pattern: str) -> list[str]:
    """``pattern`` formatted for every dataset x systematic pair."""
    return [
        pattern.format(dataset=d, systematic=s)
        for d in config["datasets"]
        for s in systematics_for(config, d)
    ]


def plot_files(config: Mapping) -> list[str]:
    """File names (``{histogram}`` left to fill) one plot job writes: the data/MC plot in
    every format and, with ``plots.systematics``, the per-systematic comparison PDF."""
    names = [f"{{histogram}}.{ext}" for ext in config["plots"]["formats"]]
    return [*names, "{histogram}_systematics.pdf"] if config["plots"]["systematics"] else names


def plot_outputs(config: Mapping, pattern: str) -> list[str]:
    """``pattern`` (with ``{region}`` and ``{file}``) for every region x histogram plotted."""
    return [
        pattern.format(region=r, file=f.format(histogram=h))
        for h, definition in config["histograms"].items()
        for r in (definition.get("regions") or config["regions"])
        for f in plot_files(config)
    ]


def shapes_outputs(config: Mapping, pattern: str) -> list[str]:
    """``pattern`` formatted for every histogram with fit inputs (combine ROOT shapes and
    datacard, pyhf workspace)."""
    names = config.get("shapes", {}).get("histograms", [])
    return [pattern.format(histogram=h, ext=e) for h in names for e in ("root", "txt", "pyhf.json")]


def table_outputs(config: Mapping, pattern: str) -> list[str]:
    """``pattern`` formatted for every region x table format."""
    return [
        pattern.format(region=r, ext=e) for r in config["regions"] for e in ("csv", "md", "tex")
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
