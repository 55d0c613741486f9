"""A geometric check for figure tests: do a plot's legend and texts (CMS label, region label,
notes) cover anything it draws? In display coordinates after ``fig.canvas.draw()``, each
legend's and text's bounding box is compared with every bin of every step histogram (a
stacked process, the uncertainty band, a variation's line: a box over a bin whose top reaches
above the box's bottom lies on the bar or under its top), and with every data point (marker
and error bar), and the boxes with each other.

Independent of :mod:`brewflow.outputs.layout`: it reads the drawn artists, not the layout's
numbers. Usage: ``assert overlaps(ax) == []``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.container import ErrorbarContainer
from matplotlib.legend import Legend
from matplotlib.patches import StepPatch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

__all__ = ["boxes", "overlaps"]


def boxes(ax: Any) -> dict[str, Bbox]:
    """The display boxes of ``ax``'s legend and non-empty texts, by a name for messages."""
    ax.figure.canvas.draw()
    found = {}
    legend = ax.get_legend()
    if isinstance(legend, Legend):
        found["legend"] = legend.get_window_extent()
    for text in ax.texts:
        if isinstance(text, Text) and text.get_text() and text.get_visible():
            found[f"text {text.get_text()!r}"] = text.get_window_extent()
    return found


def _bars(ax: Any) -> list[tuple[str, float, float, float]]:
    """(name, x0, x1, top) in display coordinates of each bin of each step histogram."""
    out = []
    for patch in ax.patches:
        if not isinstance(patch, StepPatch):
            continue
        values, edges, baseline = patch.get_data()
        base = np.broadcast_to(np.nan if baseline is None else baseline, values.shape)
        tops = np.fmax(values, base)
        for i, top in enumerate(tops):
            if not np.isfinite(top):
                continue
            (x0, y), (x1, _) = ax.transData.transform([(edges[i], top), (edges[i + 1], top)])
            out.append((f"{patch.get_label()!r} bin {i}", min(x0, x1), max(x0, x1), y))
    return out


def _points(ax: Any) -> list[tuple[str, float, float, float]]:
    """(name, x, low, high) in display coordinates of each data point with its error bar."""
    out = []
    for container in ax.containers:
        if not isinstance(container, ErrorbarContainer):
            continue
        line, _, bars = container.lines
        if line is not None:
            for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
                (dx, dy) = ax.transData.transform((x, y))
                out.append((f"data point at x={x:g}", dx, dy, dy))
        for collection in bars:
            for (x, lo), (_, hi) in collection.get_segments():
                (dx, dlo), (_, dhi) = ax.transData.transform([(x, lo), (x, hi)])
                out.append((f"error bar at x={x:g}", dx, min(dlo, dhi), max(dlo, dhi)))
    return out


def overlaps(ax: Any, marker: float = 4.0) -> list[str]:
    """Every overlap on ``ax`` as a sentence (none: ``[]``): a box over a bin whose top is
    above the box's bottom, a box that a data point or its error bar (widened by ``marker``
    display units) enters, two boxes that intersect."""
    found = boxes(ax)
    problems = []
    for name, box in found.items():
        for what, x0, x1, top in _bars(ax):
            if x1 > box.x0 and x0 < box.x1 and top > box.y0:
                problems.append(f"{name} lies on {what} (top {top:.0f} > {box.y0:.0f})")
        for what, x, low, high in _points(ax):
            inside_x = box.x0 - marker < x < box.x1 + marker
            if inside_x and high + marker > box.y0 and low - marker < box.y1:
                problems.append(f"{name} covers the {what}")
    names = list(found)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if found[first].overlaps(found[second]):
                problems.append(f"{first} overlaps {second}")
    return problems
