"""What a data/MC plot draws, as numbers: the :class:`Distribution` of one histogram in one
region (the stacked processes, the total prediction with its statistical and systematic
uncertainties, the data with their Garwood intervals, the signal hypotheses' lines), in the
units of the figure's y axis. The figure (:func:`brewflow.outputs.plots.draw`) and the
HEPData record (:mod:`brewflow.outputs.hepdata`) are both made of it, so a reader downloads
exactly what is drawn; the plot job writes it beside the figure (``<histogram>.json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brewflow.files import atomic_write
from brewflow.outputs.points import garwood
from brewflow.results import provenance
from brewflow.results.arithmetic import variation_names
from brewflow.results.ledger import partial_note
from brewflow.results.model import Result

__all__ = [
    "Component",
    "Distribution",
    "axis_unit",
    "blinded_bins",
    "distribution",
    "events_title",
    "histogram_edges",
    "mc_total",
    "prediction",
    "read_distribution",
    "uncertainty_band",
    "write_distribution",
]


def blinded_bins(edges: np.ndarray, window: Sequence[float] | None) -> np.ndarray:
    """Per bin: True where it overlaps the blinded ``window`` ``(low, high)`` (none without)."""
    if window is None:
        return np.zeros(len(edges) - 1, dtype=bool)
    return (edges[:-1] < window[1]) & (edges[1:] > window[0])


def histogram_edges(definition: Mapping[str, Any]) -> np.ndarray:
    """The bin edges of a histogram of the config (``edges``, or ``bins`` from ``start`` to
    ``stop``)."""
    if "edges" in definition:
        return np.asarray(definition["edges"], dtype=float)
    return np.linspace(definition["start"], definition["stop"], definition["bins"] + 1)


def events_title(edges: np.ndarray, xlabel: str) -> tuple[str, bool]:
    """The y-axis title of a histogram of events over ``edges`` and whether its contents are
    divided by the bin width. The unit is the one the x-axis title ends with in brackets
    (``'$m_{\\ell\\ell}$ [GeV]'``): ``'Events / 2.5 GeV'`` for uniform bins, ``'Events / 0.2'``
    without a unit, ``'Events'`` for bins of width 1 centred on integers (multiplicities);
    variable bins are shown per unit of x (``'Events / GeV'``, ``'Events / unit'``), except
    bins of integers (edges at half-integers, e.g. a multiplicity's last bin "2 or more"):
    ``'Events / bin'``, not divided (a count per jet would mean nothing)."""
    unit = axis_unit(xlabel)
    widths = np.diff(edges)
    integers = not unit and np.allclose(edges - 0.5, np.round(edges - 0.5))
    if not np.allclose(widths, widths[0], rtol=1e-6, atol=0) and integers:
        return "Events / bin", False
    if not np.allclose(widths, widths[0], rtol=1e-6, atol=0):
        return f"Events / {unit or 'unit'}", True
    centers = (edges[:-1] + edges[1:]) / 2
    if np.isclose(widths[0], 1) and np.allclose(centers, np.round(centers)):
        return "Events", False
    return " ".join(filter(None, ["Events /", f"{widths[0]:.3g}", unit])), False


def axis_unit(label: str) -> str:
    """The unit an axis title ends with in brackets (``'$m_{\\ell\\ell}$ [GeV]'``: ``'GeV'``;
    none: ``''``)."""
    found = re.search(r"\[([^\[\]]+)\]\s*$", label or "")
    return found.group(1).strip() if found else ""


def _values(result: Result, name: str, region: str, systematic: str) -> np.ndarray:
    present = systematic in result.systematics
    return result.project(name, region, systematic if present else "nominal").values()


def mc_total(processes: Sequence[Result], histogram: str, region: str, systematic: str) -> Any:
    """The MC processes' sum of ``histogram`` in ``region`` under ``systematic`` (a process
    without that variation: its nominal)."""
    return sum(_values(p, histogram, region, systematic) for p in processes if not p.is_data)


def prediction(
    processes: Sequence[Result], histogram: str, region: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The total MC prediction per bin, its statistical uncertainty (sqrt of the sum of w^2)
    and its lower and upper systematic uncertainties: for each systematic, the shifts of the
    total under its Up and Down variations; the largest upward and downward shifts (zero if
    none) added in quadrature over systematics. Processes without a variation contribute their
    nominal to it."""
    mc = [p for p in processes if not p.is_data]
    total = mc_total(mc, histogram, region, "nominal")
    stat2 = sum(p.project(histogram, region).variances() for p in mc)
    up2, down2 = np.zeros_like(total), np.zeros_like(total)
    for name in variation_names(mc):
        shifts = [mc_total(mc, histogram, region, name + d) - total for d in ("Up", "Down")]
        up2 += np.maximum(np.maximum(shifts[0], shifts[1]), 0.0) ** 2
        down2 += np.minimum(np.minimum(shifts[0], shifts[1]), 0.0) ** 2
    return total, np.sqrt(stat2), np.sqrt(down2), np.sqrt(up2)


def uncertainty_band(
    processes: Sequence[Result], histogram: str, region: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total MC prediction and its lower and upper uncertainty per bin: the statistical and
    systematic uncertainties of :func:`prediction` added in quadrature."""
    total, stat, down, up = prediction(processes, histogram, region)
    return total, np.hypot(stat, down), np.hypot(stat, up)


@dataclass(frozen=True)
class Component:
    """One drawn histogram: a stacked process or a signal hypothesis's line, per bin in the
    figure's y units."""

    process: str
    label: str
    color: str | None
    values: np.ndarray


@dataclass(frozen=True)
class Distribution:
    """One histogram in one region as its data/MC plot draws it. Every array is per bin and
    in the y axis' units (``ytitle``; divided by ``widths``, ones unless the bins are shown
    per unit of x). ``stacked`` bottom to top (the smallest first), ``total`` their sum with
    ``stat`` and ``syst_down``/``syst_up`` (the band is their sum in quadrature); ``data``
    None for a blinded region (no data drawn), NaN in a blinded window's bins, with the
    Garwood interval ``data_low``/``data_high``; ``events`` the data's counts."""

    histogram: str
    region: str
    xlabel: str
    ytitle: str
    edges: np.ndarray
    widths: np.ndarray
    stacked: tuple[Component, ...]
    total: np.ndarray
    stat: np.ndarray
    syst_down: np.ndarray
    syst_up: np.ndarray
    has_syst: bool
    has_data: bool
    data: np.ndarray | None = None
    data_low: np.ndarray | None = None
    data_high: np.ndarray | None = None
    events: np.ndarray | None = None
    signals: tuple[Component, ...] = ()
    blind: bool = False
    window: tuple[float, float] | None = None
    notes: tuple[str, ...] = field(default=())
    left_out: str | None = None
    """What the data leave out for other histograms' windows (e.g. ``mll in [85, 95)``)."""

    @property
    def band(self) -> tuple[np.ndarray, np.ndarray]:
        """The drawn band's lower and upper half-widths (stat. and syst. in quadrature)."""
        return np.hypot(self.stat, self.syst_down), np.hypot(self.stat, self.syst_up)

    def to_json(self) -> dict[str, Any]:
        """The distribution as JSON (NaN as null)."""

        def array(values: np.ndarray | None) -> list | None:
            if values is None:
                return None
            return [None if not np.isfinite(v) else float(v) for v in np.asarray(values)]

        def component(c: Component) -> dict[str, Any]:
            return {"process": c.process, "label": c.label, "color": c.color,
                    "values": array(c.values)}  # fmt: skip

        return {
            "histogram": self.histogram, "region": self.region, "xlabel": self.xlabel,
            "ytitle": self.ytitle, "edges": array(self.edges), "widths": array(self.widths),
            "stacked": [component(c) for c in self.stacked], "total": array(self.total),
            "stat": array(self.stat), "syst_down": array(self.syst_down),
            "syst_up": array(self.syst_up), "has_syst": self.has_syst,
            "has_data": self.has_data, "data": array(self.data),
            "data_low": array(self.data_low), "data_high": array(self.data_high),
            "events": array(self.events), "signals": [component(c) for c in self.signals],
            "blind": self.blind, "window": None if self.window is None else list(self.window),
            "notes": list(self.notes), "left_out": self.left_out,
        }  # fmt: skip

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Distribution:
        """The distribution :meth:`to_json` wrote."""

        def array(values: Sequence | None) -> np.ndarray | None:
            return None if values is None else np.array(values, dtype=float)

        def component(c: Mapping[str, Any]) -> Component:
            return Component(c["process"], c["label"], c["color"], np.array(c["values"], float))

        arrays = ("edges", "widths", "total", "stat", "syst_down", "syst_up", "data",
                  "data_low", "data_high", "events")  # fmt: skip
        window = document["window"]
        fields: dict[str, Any] = {k: document[k] for k in ("histogram", "region", "xlabel",
                                                         "ytitle", "has_syst", "has_data",
                                                         "blind")}  # fmt: skip
        fields |= {k: array(document[k]) for k in arrays}
        return cls(
            **fields,
            stacked=tuple(component(c) for c in document["stacked"]),
            signals=tuple(component(c) for c in document["signals"]),
            window=None if window is None else (float(window[0]), float(window[1])),
            notes=tuple(document["notes"]),
            left_out=document["left_out"],
        )


def distribution(
    processes: Sequence[Result],
    histogram: str,
    region: str,
    *,
    styles: Mapping[str, Mapping[str, str]],
    blind: bool = False,
    window: Sequence[float] | None = None,
    xlabel: str | None = None,
    signals: Sequence[Result] = (),
    title: str | None = None,
    note: str | None = None,
    left_out: str | None = None,
) -> Distribution:
    """The :class:`Distribution` of ``histogram`` in ``region``: MC stacked by process
    (``styles[process]``: its ``label`` and ``color``), the data (none when ``blind``; NaN in
    the bins overlapping the blinded ``window`` ``(low, high)``; an empty bin where MC
    predicts nothing is not drawn either), the ``signals`` (a search's hypotheses) as lines;
    ``xlabel`` the axis title (default the histogram's), whose unit the y title takes
    (:func:`events_title`); the figure's text: the region's ``title`` (default its name), the
    partial input, a further ``note`` and the blinding; ``left_out``: what the data leave out
    for other histograms' windows (said in the text)."""
    mc = [p for p in processes if not p.is_data]
    data = [] if blind else [p for p in processes if p.is_data]
    if not mc:
        raise ValueError(f"histogram {histogram!r}: no MC process to plot")
    hists = [p.project(histogram, region) for p in mc]
    order = np.argsort([h.sum().value for h in hists])  # largest on top
    axis = hists[0].axes[0]
    edges = np.asarray(axis.edges, dtype=float)
    xlabel = xlabel or axis.label
    ytitle, per_width = events_title(edges, xlabel)
    widths = np.diff(edges) if per_width else np.ones(len(edges) - 1)

    def drawn(result: Result, values: np.ndarray) -> Component:
        style = styles.get(result.process, {})
        return Component(result.process, style.get("label", result.process),
                         style.get("color"), values / widths)  # fmt: skip

    stacked = tuple(drawn(mc[i], hists[i].values()) for i in order)
    total, stat, down, up = prediction(mc, histogram, region)
    lines = tuple(drawn(s, s.project(histogram, region).values()) for s in signals)
    lines = tuple(line for line in lines if np.any(line.values))  # none of its events: no line
    out: dict[str, Any] = {}
    hidden = blinded_bins(edges, window)
    if data:
        counts = sum((p.project(histogram, region).values() for p in data[1:]),
                     data[0].project(histogram, region).values())  # fmt: skip
        # an empty bin shows its upper error (1.84) where MC predicts events, else nothing
        counts = np.where(hidden | ((counts == 0) & (total <= 0)), np.nan, counts)
        low, high = garwood(counts)
        out = {"data": counts / widths, "data_low": low / widths, "data_high": high / widths,
               "events": counts}  # fmt: skip
    text = [
        title or region,
        partial_note(processes),
        note,
        f"Data: events with {left_out} left out" if left_out else None,
    ]
    if blind:
        text.append("Data blinded")
    elif window is not None:
        text.append(f"Data blinded in [{window[0]:g}, {window[1]:g})")
    return Distribution(
        histogram=histogram, region=region, xlabel=xlabel, ytitle=ytitle, edges=edges,
        widths=widths, stacked=stacked, total=total / widths, stat=stat / widths,
        syst_down=down / widths, syst_up=up / widths,
        has_syst=any(s != "nominal" for p in mc for s in p.systematics),
        has_data=any(p.is_data for p in processes), signals=lines, blind=blind,
        window=None if window is None else (float(window[0]), float(window[1])),
        notes=tuple(filter(None, text)), left_out=left_out, **out,
    )  # fmt: skip


def write_distribution(dist: Distribution, path: str | Path, stamp: str) -> None:
    """Write ``dist`` as JSON with the provenance ``stamp`` of its inputs."""
    document = {"distribution": dist.to_json(), provenance.MARK: stamp}
    atomic_write(path, json.dumps(document, indent=1, sort_keys=True) + "\n")


def read_distribution(path: str | Path) -> Distribution:
    """The distribution :func:`write_distribution` wrote."""
    return Distribution.from_json(json.loads(Path(path).read_text())["distribution"])
