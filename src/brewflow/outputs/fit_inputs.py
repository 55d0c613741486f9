"""Fit inputs for CMS combine: a ROOT shapes file (written with uproot) and a datacard.

For one histogram, the shapes file holds one directory per channel (combine "bin": a region,
or a region x era ``<region>_<era>``) with a TH1 per process (``<process>``), per process and
systematic (``<process>_<syst>Up/Down``) and the data (``data_obs``). The datacard reads them
with ``shapes * * FILE $CHANNEL/$PROCESS $CHANNEL/$PROCESS_$SYSTEMATIC``; every systematic is a
``shape`` nuisance for the processes that have it (an era's uncorrelated nuisance,
``<name>_<era>``, only in that era's channels), a free normalisation (``shapes.normfactors``) a
``rateParam``, rates are ``-1`` (read from the templates) and ``* autoMCStats 0`` gives every
bin its MC statistical uncertainty (Barlow-Beeston-lite, as the pyhf workspace's
``staterror``); the conventions of combine's "Preparing the datacard" and "Automatic
statistical uncertainties" pages.

Blinded data never enters a fit input: a blinded channel's ``data_obs`` is the Asimov dataset
(the sum of the MC at its nominal, signal strength 1), and so are the bins of a blinded window.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import uproot

from brewflow.config import channel_blinding, fit_channels, hypotheses
from brewflow.errors import ConfigError
from brewflow.files import atomic_output, atomic_write
from brewflow.reproducible import fixed_root_clock
from brewflow.results import provenance
from brewflow.results.arithmetic import variation_names
from brewflow.results.model import Result

if TYPE_CHECKING:
    import hist

__all__ = [
    "Channel",
    "channels_of",
    "datacard",
    "fit_channels_of",
    "pyhf_workspace",
    "write_datacard",
    "write_fit_inputs",
    "write_shapes",
]


@dataclass(frozen=True)
class Channel:
    """One fit channel: a ``region`` of the processes of one era (``name`` ``<region>_<era>``,
    or the region), with its blinding: the whole channel (``blind``) or a ``window``
    ``(low, high)`` of the histogram."""

    name: str
    region: str
    processes: Sequence[Result]
    blind: bool = False
    window: tuple[float, float] | None = None

    @property
    def mc(self) -> list[Result]:
        return [p for p in self.processes if not p.is_data]

    @property
    def data(self) -> list[Result]:
        return [p for p in self.processes if p.is_data]

    def observed(self, histogram: str) -> hist.Hist | None:
        """The data of the channel (None without data), the Asimov (MC sum at nominal) where
        it is blinded."""
        if not self.data:
            return self._asimov(histogram) if self.blind else None
        observed = self.data[0].project(histogram, self.region, "nominal")
        for extra in self.data[1:]:
            observed = observed + extra.project(histogram, self.region, "nominal")
        traits = observed.axes[0].traits
        if self.blind:
            hidden = np.ones(observed.view(flow=True).shape, dtype=bool)
        elif self.window is not None:
            low, high = self.window
            edges = observed.axes[0].edges
            inside = list((edges[:-1] < high) & (edges[1:] > low))
            under, over = [low < edges[0]] * traits.underflow, [high > edges[-1]] * traits.overflow
            hidden = np.asarray(under + inside + over, dtype=bool)
        else:
            hidden = None
        if hidden is None or not hidden.any():
            return observed
        asimov = self._asimov(histogram)
        out = observed.copy()
        view, model = out.view(flow=True), asimov.view(flow=True)
        if view.dtype.names:
            for field in view.dtype.names:
                view[field][hidden] = model["value"][hidden]
        else:
            view[hidden] = model["value"][hidden]
        return out

    def _asimov(self, histogram: str) -> hist.Hist:
        """The sum of the channel's MC at nominal (with their variances)."""
        asimov = self.mc[0].project(histogram, self.region, "nominal")
        for p in self.mc[1:]:
            asimov = asimov + p.project(histogram, self.region, "nominal")
        return asimov


def channels_of(
    processes: Sequence[Result], regions: Sequence[str], config: Mapping[str, Any] | None = None,
    histogram: str | None = None,
) -> list[Channel]:  # fmt: skip
    """One channel per region (no eras), blinded as the ``config`` says."""
    return [_channel(region, region, processes, config, histogram) for region in regions]


def _channel(
    name: str, region: str, processes: Sequence[Result], config: Mapping[str, Any] | None,
    histogram: str | None, era: str | None = None,
) -> Channel:  # fmt: skip
    if config is None or histogram is None:
        return Channel(name, region, processes)
    asimov, window = channel_blinding(config, histogram, region, era)
    return Channel(name, region, processes, blind=asimov, window=window)


def write_shapes(channels: Sequence[Channel], histogram: str, path: str | Path) -> None:
    """Write ``<channel>/<process>[_<syst>Up|Down]`` and ``<channel>/data_obs`` TH1s."""
    path = Path(path)
    results = [p for c in channels for p in c.processes]
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"brewflow-shapes/{path.name}")
    with (
        atomic_output(path) as tmp,
        fixed_root_clock(),
        uproot.recreate(tmp, uuid_function=lambda: name) as out,
    ):
        out["provenance"] = provenance.stamp(results)
        for channel in channels:
            for p in channel.mc:
                out[f"{channel.name}/{p.process}"] = p.project(histogram, channel.region)
                for syst in p.systematics:
                    if syst != "nominal":
                        out[f"{channel.name}/{p.process}_{syst}"] = p.project(
                            histogram, channel.region, syst
                        )
            observed = channel.observed(histogram)
            if observed is not None:
                out[f"{channel.name}/data_obs"] = observed


def _ordered(channel: Channel, signal: Sequence[str]) -> list[Result]:
    """The channel's MC, signal processes first (a channel may have none: a control region)."""
    return [p for p in channel.mc if p.process in signal] + [
        p for p in channel.mc if p.process not in signal
    ]


def _check_signal(channels: Sequence[Channel], signal: Sequence[str]) -> None:
    known = sorted({p.process for c in channels for p in c.mc})
    if not set(known) & set(signal):
        raise ValueError(f"no signal process among {known}; set shapes.signal")


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines, each column padded to its widest cell: combine splits on any
    whitespace, the alignment is for the reader (as in combine's documentation)."""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths[: len(row)], strict=True)).rstrip()
            for row in rows]  # fmt: skip


def _rate(channel: Channel, process: Result, histogram: str) -> str:
    """The datacard rate of a process in a channel: ``-1``, read from its template
    (``TH1::Integral``), or ``0`` for an empty template: combine leaves a process of rate 0
    out of the channel, and resolves ``-1`` only for a template with a non-zero integral."""
    nominal = process.project(histogram, channel.region, "nominal")
    return "-1" if nominal.values().sum() != 0 else "0"


NORMFACTOR_RANGE = "[0,10]"
"""The range of a free normalisation (``rateParam``): pyhf's default bounds of a
``normfactor``, so the card and the workspace are one model."""


def datacard(
    channels: Sequence[Channel], histogram: str, shapes_file: str, signal: Sequence[str],
    normfactors: Mapping[str, Sequence[str]] | None = None,
) -> str:  # fmt: skip
    """The combine datacard text for :func:`write_shapes`' file: the templates read by one
    ``shapes`` line, rates ``-1`` (the templates' integrals; ``0`` for an empty one), a
    ``shape`` nuisance per systematic for the processes that have it, a free normalisation
    (``rateParam``, in every channel) per ``normfactors`` name and process it scales, and
    the MC statistical uncertainty of the templates as ``* autoMCStats 0``
    (Barlow-Beeston-lite per bin): the model of :func:`pyhf_workspace` (``staterror``,
    ``normfactor``, ``histosys``). Observations are the data's integral in range (the Asimov
    where blinded; ``-1``: read from ``data_obs``, for a channel without data)."""
    _check_signal(channels, signal)
    results = [p for c in channels for p in c.processes]
    rows_of = {c.name: _ordered(c, signal) for c in channels}
    processes = list(dict.fromkeys(p.process for c in channels for p in rows_of[c.name]))
    # combine convention: signal processes have indices <= 0, backgrounds > 0
    signals = [p for p in processes if p in signal]
    index = {p: -i for i, p in enumerate(signals)}
    index |= {p: i + 1 for i, p in enumerate(q for q in processes if q not in signal)}
    observed = []
    for c in channels:
        obs = c.observed(histogram)
        observed.append(f"{obs.sum().value:.12g}" if obs is not None else "-1")
    cells = [(c, p) for c in channels for p in rows_of[c.name]]
    blinded = [c.name for c in channels if c.blind or c.window is not None]
    separator = "-" * 60
    head = [
        f"# brewflow datacard: histogram {histogram}",
        f"# {provenance.MARK}: {provenance.stamp(results)}",
        *([f"# blinded (data_obs is the Asimov there): {' '.join(blinded)}"] if blinded else []),
        f"imax {len(channels)}  number of channels",
        f"jmax {len(processes) - 1}  number of processes - 1",
        "kmax *  number of nuisance parameters",
        separator,
        f"shapes * * {shapes_file} $CHANNEL/$PROCESS $CHANNEL/$PROCESS_$SYSTEMATIC",
        separator,
        *_aligned([["bin", *(c.name for c in channels)], ["observation", *observed]]),
        separator,
    ]
    table = [
        ["bin", *(c.name for c, _ in cells)],
        ["process", *(p.process for _, p in cells)],
        ["process", *(str(index[p.process]) for _, p in cells)],
        ["rate", *(_rate(c, p, histogram) for c, p in cells)],
    ]
    nuisances = [
        [f"{syst} shape", *("1" if f"{syst}Up" in p.systematics else "-" for _, p in cells)]
        for syst in variation_names([p for c in channels for p in c.mc])
    ]
    lines = _aligned([*table, *nuisances])
    free = [[name, "rateParam", "*", process, "1", NORMFACTOR_RANGE]
            for name, scaled in (normfactors or {}).items()
            for process in scaled if process in processes]  # fmt: skip
    body = [*lines[:4], separator, *lines[4:], *(_aligned(free) if free else []),
            "* autoMCStats 0"]  # fmt: skip
    return "\n".join([*head, *body]) + "\n"


def write_datacard(text: str, path: str | Path) -> None:
    """Write a datacard atomically."""
    atomic_write(path, text)


def pyhf_workspace(
    channels: Sequence[Channel], histogram: str, signal: Sequence[str], poi: str = "mu",
    normfactors: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The same fit as a pyhf JSON workspace (HistFactory): one channel per :class:`Channel`,
    one sample per process with a ``staterror`` (sqrt of the sum of w^2), a ``normfactor``
    ``poi`` on the signal processes and one per ``normfactors`` name on the processes it
    scales (free background normalisations), and a ``histosys`` per systematic (Up/Down
    templates) for the processes that have it; observations from the data (the Asimov where
    blinded)."""
    scaled = {p: [n for n, ps in (normfactors or {}).items() if p in ps]
              for c in channels for p in (q.process for q in c.mc)}  # fmt: skip
    _check_signal(channels, signal)
    out_channels, observations = [], []
    for channel in channels:
        samples = []
        for p in _ordered(channel, signal):
            nominal = p.project(histogram, channel.region, "nominal")
            modifiers: list[dict[str, Any]] = [
                {
                    "name": f"staterror_{channel.name}",
                    "type": "staterror",
                    "data": np.sqrt(nominal.variances()).tolist(),
                }
            ]
            if p.process in signal:
                modifiers.append({"name": poi, "type": "normfactor", "data": None})
            for name in scaled[p.process]:
                modifiers.append({"name": name, "type": "normfactor", "data": None})
            for syst in variation_names([p]):
                templates = {
                    key: p.project(histogram, channel.region, f"{syst}{d}").values().tolist()
                    for key, d in (("hi_data", "Up"), ("lo_data", "Down"))
                }
                modifiers.append({"name": syst, "type": "histosys", "data": templates})
            samples.append(
                {"name": p.process, "data": nominal.values().tolist(), "modifiers": modifiers}
            )
        out_channels.append({"name": channel.name, "samples": samples})
        observed = channel.observed(histogram)
        if observed is not None:
            values = np.asarray(observed.values(), dtype=float).tolist()
            observations.append({"name": channel.name, "data": values})
    return {
        "channels": out_channels,
        "observations": observations if len(observations) == len(channels) else [],
        "measurements": [{"name": "measurement", "config": {"poi": poi, "parameters": []}}],
        "version": "1.0.0",
    }


def fit_channels_of(
    config: Mapping[str, Any], inputs: Sequence[Result], histogram: str
) -> list[Channel]:
    """The channels of a histogram's fit (region x era; :func:`brewflow.config.fit_channels`)
    from the stacks ``inputs`` (each era's, told apart by their ``era``), without the
    searches' signal hypotheses (:func:`brewflow.config.hypotheses`: in their own fits only)."""
    out = []
    apart = hypotheses(config)
    for name, region, era in fit_channels(config, histogram):
        processes = [p for p in inputs if p.meta.get("era") == era and p.process not in apart]
        if not processes:
            raise ConfigError(f"histogram {histogram!r}: no stacked process of era {era!r} given")
        out.append(_channel(name, region, processes, config, histogram, era))
    return out


def write_fit_inputs(
    config: Mapping[str, Any],
    inputs: Sequence[Result],
    histogram: str,
    root: str | Path,
    card: str | Path,
    workspace: str | Path | None = None,
) -> None:
    """The fit inputs of one configured histogram over its regions (x eras): the ROOT shapes
    file, the datacard that reads it and (``workspace``) the pyhf JSON workspace."""
    if histogram not in config["histograms"]:
        known = ", ".join(config["histograms"])
        raise ConfigError(f"unknown histogram {histogram!r}; config has: {known}")
    channels = fit_channels_of(config, inputs, histogram)
    signal = config["shapes"]["signal"]
    normfactors = config["shapes"].get("normfactors", {})
    write_shapes(channels, histogram, root)
    write_datacard(datacard(channels, histogram, Path(root).name, signal, normfactors), card)
    if workspace:
        document = pyhf_workspace(channels, histogram, signal, normfactors=normfactors)
        atomic_write(workspace, json.dumps(document, indent=1) + "\n")
