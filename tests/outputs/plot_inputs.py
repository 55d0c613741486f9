"""Demo-like inputs of the figure tests: stacked processes (Drell-Yan, ttbar, WW) of chosen
shapes on chosen bins, with systematic variations, and pseudo-data drawn from their sum. The
numbers are set bin by bin (``Result`` objects as ``brewflow scale`` writes them), so a test
knows every content it draws."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from brewflow import histograms as H
from brewflow.results.model import Result

__all__ = ["EDGES", "PROCESS_STYLES", "demo_processes", "process", "shape"]

EDGES = {
    "mass": np.linspace(50, 150, 41),  # m_ll, 2.5 GeV bins
    "eta": np.linspace(-2.4, 2.4, 25),
    "njets": np.arange(-0.5, 8.0),  # multiplicities: width 1 centred on integers
    "met": np.array([0, 10, 20, 30, 40, 50, 60, 80, 100, 130, 170, 250.0]),  # variable
}
PROCESS_STYLES = {
    "dy": {"label": "Drell-Yan", "color": "#5790fc"},
    "top": {"label": "$t\\bar{t}$", "color": "#f89c20"},
    "diboson": {"label": "WW", "color": "#e42536"},
}


def process(
    name: str,
    edges: Sequence[float],
    nominal: np.ndarray,
    *,
    is_data: bool = False,
    variations: Mapping[str, np.ndarray] | None = None,
    stat: float = 0.03,
) -> Result:
    """A result of one process with histogram ``x`` in region ``r``: ``nominal`` per bin (and
    each of ``variations``, e.g. ``{"jesUp": ...}``), variances ``(stat x content)^2`` for MC
    and the content for data (unweighted events)."""
    variations = dict(variations or {})
    categories = ["nominal", *variations]
    definition = {"x": {"variable": "x", "edges": list(map(float, edges))}}
    hists = H.book(definition, ["r"], categories, lazy=False)
    hists.update(H.book_cutflow({"r": ["c1"]}, categories, lazy=False))
    view = hists["x"].view()
    for i, values in enumerate([nominal, *variations.values()]):
        values = np.asarray(values, dtype=float)
        view.value[0, i] = values
        view.variance[0, i] = values if is_data else (stat * values) ** 2
    events = int(np.sum(nominal)) if is_data else 1000
    return Result(name, name, is_data, hists, {"r": ["c1"]}, {"events": events})


def shape(edges: np.ndarray, kind: str, total: float) -> np.ndarray:
    """``total`` events spread over the bins as a peak at the left, middle or right, flat, or
    a Breit-Wigner at 91 (``'z'``)."""
    x = (edges[:-1] + edges[1:]) / 2
    u = (x - edges[0]) / (edges[-1] - edges[0])
    density = {
        "left": np.exp(-u / 0.15),
        "middle": np.exp(-0.5 * ((u - 0.5) / 0.12) ** 2),
        "right": np.exp(-(1 - u) / 0.15),
        "flat": np.ones_like(u),
        "z": 1 / ((x - 91.2) ** 2 + 2.5**2 / 4),
    }[kind] * np.diff(edges)
    return total * density / density.sum()


def demo_processes(
    edges: np.ndarray,
    kind: str = "z",
    *,
    scale: float = 1.0,
    seed: int = 1,
    data_scale: float = 1.0,
) -> list[Result]:
    """Drell-Yan (most events, shape ``kind``), ttbar (broad) and WW (small), with a jes
    shift (+-3% ttbar, +-1% Drell-Yan) and a flat lumi one, and data drawn as Poisson of
    ``data_scale`` x their sum."""
    dy = shape(edges, kind, 6000 * scale)
    top = shape(edges, "flat", 400 * scale) * np.linspace(1.4, 0.6, len(edges) - 1)
    ww = shape(edges, "flat", 40 * scale)
    rng = np.random.default_rng(seed)
    data = rng.poisson(data_scale * (dy + top + ww)).astype(float)

    def varied(values: np.ndarray, jes: float) -> dict[str, np.ndarray]:
        return {"jesUp": values * (1 + jes), "jesDown": values * (1 - jes),
                "lumiUp": values * 1.025, "lumiDown": values * 0.975}  # fmt: skip

    return [
        process("data", edges, data, is_data=True),
        process("dy", edges, dy, variations=varied(dy, 0.01)),
        process("top", edges, top, variations=varied(top, 0.03)),
        process("diboson", edges, ww, variations=varied(ww, 0.0)),
    ]
