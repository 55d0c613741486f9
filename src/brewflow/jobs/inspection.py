"""What an analysis will read and how big its task graph is, found without reading event data.

Only file metadata is opened (the first file of a dataset, for its branch types); the analysis
runs on dask-awkward's typetracer, so no basket is read or decompressed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask
import dask_awkward as dak
from dask.base import collections_to_dsk

from brewflow.config import dataset_files, dataset_spec
from brewflow.jobs.build import build
from brewflow.jobs.reading import config_locations
from brewflow.nanoevents.reader import lazy_events

__all__ = ["graph_report", "inspect_config", "inspect_dataset"]


def graph_report(collections: Mapping[str, Any]) -> dict[str, Any]:
    """Columns read per input layer and task-graph layer counts before/after optimization."""
    values = list(collections.values())
    before = collections_to_dsk(values, optimize_graph=False)
    optimized = dask.optimize(*values)
    after = collections_to_dsk(list(optimized), optimize_graph=False)
    columns = dak.necessary_columns(*values)
    return {
        "columns": sorted({c for cols in columns.values() for c in cols or ()}),
        "input_layers": len(columns),
        "layers_before": len(before.layers),
        "layers_after": len(after.layers),
    }


def inspect_dataset(config: Mapping, dataset: str, systematic: str = "nominal") -> dict[str, Any]:
    """The graph report of the configured analysis on one dataset, plus its files and tree."""
    spec = dataset_spec(config, dataset)
    tree = spec.get("tree", config["tree"])
    files = dataset_files(config, dataset)
    locations = config_locations(config, dataset, files)
    events = lazy_events({f: tree for f in files}, open_files=False, locations=locations)
    graph = build(config, dataset, systematic, events, files[0] if files else "")
    outputs = {**graph.histograms, **({} if graph.certified is None else
                                      {"certified": graph.certified})}  # fmt: skip
    report = graph_report(outputs)
    return {"dataset": dataset, "tree": tree, "files": len(files), **report}


def inspect_config(config: Mapping, dataset: str | None = None) -> list[dict[str, Any]]:
    """The graph reports of every dataset of ``config`` (or only ``dataset``)."""
    names = [dataset] if dataset else list(config["datasets"])
    return [inspect_dataset(config, name) for name in names]
