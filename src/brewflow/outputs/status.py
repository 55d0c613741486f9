"""``brewflow status``: the event ledger of a results folder, per dataset.

For each dataset with an inventory (``results/preprocess``): whether every event was read
exactly once (the ledger that ``merge`` writes), what was skipped and why, and whether it was
normalised as partial (``allow_partial``). Datasets not merged yet show their analyze outputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from brewflow import results
from brewflow.results.inventory import read_inventory

__all__ = ["collect"]


def _analyzed(folder: Path, inventory: dict[str, Any]) -> dict[str, Any]:
    """Events read and chunks skipped by the nominal analyze outputs found so far."""
    parts = [results.load(p) for p in sorted(folder.glob("**/nominal.json"))]
    read = sum(r.meta["events"] for r in parts)
    skipped = [s for r in parts for s in r.meta.get("skipped", [])]
    return {
        "state": f"not merged yet: {len(parts)} nominal analyze output(s)",
        "events": {"expected": inventory["entries"], "read": read},
        "skipped": skipped,
    }


def _run_datasets(results: Path) -> list[str] | None:
    """The datasets of the run whose outputs are in ``results``: from its resolved config
    (``../.brewflow/config.json``), None when there is none."""
    from brewflow.config import load_config
    from brewflow.pipeline import RESOLVED

    path = results.parent / RESOLVED
    if not path.is_file():
        return None
    return list(load_config(path)["datasets"])


def collect(
    directory: str | Path = "results", datasets: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """One entry per dataset of the run (``datasets``; default those of the run's resolved
    config beside ``directory``, ``.brewflow/config.json``, else every inventory found):
    ``dataset``, ``state`` (complete, partial, incomplete, or not merged yet), the ledger's
    counts and the skipped files and chunks with their reason. A dataset removed from the
    config is not the run's, whatever its old files say."""
    root = Path(directory)
    if datasets is None:
        datasets = _run_datasets(root)
    chosen = None if datasets is None else set(datasets)
    if not (root / "preprocess").is_dir():
        raise FileNotFoundError(
            f"{str(root)!r} has no preprocess/ folder: not a brewflow results folder, or "
            "nothing has run yet (run snakemake first)"
        )
    out = []
    for path in sorted((root / "preprocess").glob("*.json")):
        inventory = read_inventory(path)
        dataset = inventory["dataset"]
        if chosen is not None and dataset not in chosen:
            continue
        merged, scaled = root / "merge" / f"{dataset}.json", root / "scale" / f"{dataset}.json"
        book = results.load(merged).meta.get("ledger") if merged.is_file() else None
        if book is None and scaled.is_file():  # deleted after the run: snakemake keeps it
            entry: dict[str, Any] = {
                "state": "merge output missing",
                "advice": f"{merged} is missing; {results.regenerate(merged)}",
                "events": {"expected": inventory["entries"], "read": 0},
                "skipped": [],
            }
        elif book is None:
            entry = _analyzed(root / "analyze" / dataset, inventory)
            entry["skipped"] += [{**s, "start": None, "stop": None} for s in inventory["skipped"]]
        else:
            entry = dict(book)
            if book["complete"]:
                entry["state"] = "complete"
            elif scaled.is_file() and "fraction" in results.load(scaled).meta:
                entry["state"] = "partial, normalised (allow_partial)"
            else:
                entry["state"] = "incomplete: not normalised (allow_partial: false)"
        out.append({"dataset": dataset, **entry})
    return out
