"""Fit inputs for CMS combine: a ROOT shapes file (written with uproot) and a datacard.

For one histogram, the shapes file holds one directory per region (combine "bin") with a TH1
per process (``<process>``), per process and systematic (``<process>_<syst>Up/Down``) and the
data (``data_obs``). The datacard reads them with
``shapes * * FILE $CHANNEL/$PROCESS $CHANNEL/$PROCESS_$SYSTEMATIC``; every systematic is a
``shape`` nuisance for the processes that have it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from brewflow.errors import ConfigError
from brewflow.files import atomic_output, atomic_write
from brewflow.reproducible import fixed_root_clock
from brewflow.results import provenance
from brewflow.results.arithmetic import variation_names
from brewflow.results.model import Result

__all__ = ["datacard", "pyhf_workspace", "write_datacard", "write_shapes"]


def write_shapes(
    processes: Sequence[Result], histogram: str, regions: Sequence[str], path: str | Path
) -> None:
    """Write ``<region>/<process>[_<syst>Up|Down]`` and ``<region>/data_obs`` TH1s to ``path``."""
    path = Path(path)
    data = [p for p in processes if p.is_data]
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"brewflow-shapes/{path.name}")
    with (
        atomic_output(path) as tmp,
        fixed_root_clock(),
        uproot.recreate(tmp, uuid_function=lambda: name) as out,
    ):
        out["provenance"] = provenance.stamp(processes)
        for region in regions:
            for p in processes:
                if p.is_data:
                    continue
                out[f"{region}/{p.process}"] = p.project(histogram, region, "nominal")
                for syst in p.systematics:
                    if syst != "nominal":
                        out[f"{region}/{p.process}_{syst}"] = p.project(histogram, region, syst)
            if data:
                observed = data[0].project(histogram, region, "nominal")
                for extra in data[1:]:
                    observed = observed + extra.project(histogram, region, "nominal")
                out[f"{region}/data_obs"] = observed


def datacard(
    processes: Sequence[Result],
    histogram: str,
    regions: Sequence[str],
    shapes_file: str,
    signal: Sequence[str],
) -> str:
    """The combine datacard text for :func:`write_shapes`' file (rates read from the shapes)."""
    mc = [p for p in processes if not p.is_data]
    data = [p for p in processes if p.is_data]
    signals = [p for p in mc if p.process in signal]
    backgrounds = [p for p in mc if p.process not in signal]
    if not signals:
        raise ValueError(f"no signal process among {[p.process for p in mc]}; set shapes.signal")
    ordered = signals + backgrounds
    # combine convention: signal processes have indices <= 0, backgrounds > 0
    index = {p.process: -i for i, p in enumerate(signals)}
    index |= {p.process: i + 1 for i, p in enumerate(backgrounds)}
    observed = [
        sum(d.project(histogram, r, "nominal").sum().value for d in data) if data else -1
        for r in regions
    ]
    rows = [
        f"# brewflow datacard: histogram {histogram}",
        f"# {provenance.MARK}: {provenance.stamp(processes)}",
        f"imax {len(regions)}",
        f"jmax {len(ordered) - 1}",
        "kmax *",
        "-" * 60,
        f"shapes * * {shapes_file} $CHANNEL/$PROCESS $CHANNEL/$PROCESS_$SYSTEMATIC",
        "-" * 60,
        "bin " + " ".join(regions),
        "observation " + " ".join(f"{o:g}" for o in observed),
        "-" * 60,
        "bin " + " ".join(r for r in regions for _ in ordered),
        "process " + " ".join(p.process for _ in regions for p in ordered),
        "process " + " ".join(str(index[p.process]) for _ in regions for p in ordered),
        "rate " + " ".join("-1" for _ in regions for _ in ordered),
        "-" * 60,
    ]
    for syst in variation_names(mc):
        cells = ["1" if f"{syst}Up" in p.systematics else "-" for _ in regions for p in ordered]
        rows.append(f"{syst} shape " + " ".join(cells))
    return "\n".join(rows) + "\n"


def write_datacard(text: str, path: str | Path) -> None:
    """Write a datacard atomically."""
    atomic_write(path, text)


def pyhf_workspace(
    processes: Sequence[Result],
    histogram: str,
    regions: Sequence[str],
    signal: Sequence[str],
    poi: str = "mu",
) -> dict[str, Any]:
    """The same fit as a pyhf JSON workspace (HistFactory): one channel per region, one sample
    per process with a ``staterror`` (sqrt of the sum of w^2), a ``normfactor`` ``poi`` on the
    signal processes, and a ``histosys`` per systematic (Up/Down templates) for the processes
    that have it; observations from the data."""
    mc = [p for p in processes if not p.is_data]
    data = [p for p in processes if p.is_data]
    if not any(p.process in signal for p in mc):
        raise ValueError(f"no signal process among {[p.process for p in mc]}; set shapes.signal")
    channels, observations = [], []
    for region in regions:
        samples = []
        for p in mc:
            nominal = p.project(histogram, region, "nominal")
            modifiers: list[dict[str, Any]] = [
                {
                    "name": f"staterror_{region}",
                    "type": "staterror",
                    "data": np.sqrt(nominal.variances()).tolist(),
                }
            ]
            if p.process in signal:
                modifiers.append({"name": poi, "type": "normfactor", "data": None})
            for syst in variation_names([p]):
                templates = {
                    key: p.project(histogram, region, f"{syst}{d}").values().tolist()
                    for key, d in (("hi_data", "Up"), ("lo_data", "Down"))
                }
                modifiers.append({"name": syst, "type": "histosys", "data": templates})
            samples.append(
                {"name": p.process, "data": nominal.values().tolist(), "modifiers": modifiers}
            )
        channels.append({"name": region, "samples": samples})
        observed = sum(d.project(histogram, region, "nominal").values() for d in data)
        observations.append({"name": region, "data": np.asarray(observed, dtype=float).tolist()})
    return {
        "channels": channels,
        "observations": observations if data else [],
        "measurements": [{"name": "measurement", "config": {"poi": poi, "parameters": []}}],
        "version": "1.0.0",
    }


def write_fit_inputs(
    config: Mapping[str, Any],
    inputs: Sequence[Result],
    histogram: str,
    root: str | Path,
    card: str | Path,
    workspace: str | Path | None = None,
) -> None:
    """The fit inputs of one configured histogram over its regions: the ROOT shapes file, the
    datacard that reads it and (``workspace``) the pyhf JSON workspace."""
    if histogram not in config["histograms"]:
        known = ", ".join(config["histograms"])
        raise ConfigError(f"unknown histogram {histogram!r}; config has: {known}")
    definition = config["histograms"][histogram]
    regions = list(definition.get("regions") or config["regions"])
    signal = config["shapes"]["signal"]
    write_shapes(inputs, histogram, regions, root)
    write_datacard(datacard(inputs, histogram, regions, Path(root).name, signal), card)
    if workspace:
        document = pyhf_workspace(inputs, histogram, regions, signal)
        atomic_write(workspace, json.dumps(document, indent=1) + "\n")
