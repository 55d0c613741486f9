"""Where a plot's legend and its text block (region label, notes) go: in a top corner of the
axes, side by side or one under the other, chosen so that the y axis needs the least headroom
for every drawn bar, band and data point (with its error bar) to stay below them.

mplhep's ``yscale_legend`` grows the y axis until a legend at a fixed place clears what is
drawn (linear steps, one draw per step); here the boxes' sizes are measured once, every
arrangement's headroom is computed in closed form (linear or log axis) and the smallest wins,
so a histogram whose highest bins are at the left gets the legend on the right and one that
peaks in the middle gets both boxes in the corners.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.legend import Legend
from matplotlib.text import Text

__all__ = ["Box", "annotate", "required_top", "wrap"]

log = logging.getLogger(__name__)

MARGIN_X = 0.03  # axes fraction between a box and the frame's side
MARGIN_Y = 0.04  # axes fraction between a box and the frame's top
GAP = 0.03  # axes fraction between two boxes, and between a box and what is drawn below it
FILL = 0.95  # the highest drawn point sits at most this fraction of the axis up


@dataclass(frozen=True)
class Box:
    """A box in axes fractions (0 to 1 from the frame's lower left corner)."""

    x0: float
    x1: float
    y0: float
    y1: float

    def overlaps(self, other: Box, gap: float = 0.0) -> bool:
        """True when the boxes intersect or come closer than ``gap``."""
        return not (self.x1 + gap <= other.x0 or other.x1 + gap <= self.x0
                    or self.y1 + gap <= other.y0 or other.y1 + gap <= self.y0)  # fmt: skip


def required_top(
    tops: np.ndarray,
    lefts: np.ndarray,
    rights: np.ndarray,
    boxes: Sequence[Box],
    bottom: float,
    log_scale: bool,
) -> float:
    """The smallest upper y limit at which every drawn top (data units, one per x range
    ``[lefts, rights]`` in axes fractions) within ``GAP`` of a box's sides lies ``GAP`` below
    it, and every one at most ``FILL`` of the axis up; the lower limit is ``bottom``."""
    limits = [(np.ones_like(tops, dtype=bool), FILL)]
    limits += [((rights > b.x0 - GAP) & (lefts < b.x1 + GAP), b.y0 - GAP) for b in boxes]
    top = bottom * 10 if log_scale else bottom + 1.0
    for under, fraction in limits:
        heights = tops[under & np.isfinite(tops) & (tops > bottom)]
        if not len(heights) or fraction <= 0:
            continue
        h = heights.max()
        # the fraction of the axis at which h sits, solved for the top: linear h = b + f (t - b),
        # log log h = log b + f (log t - log b)
        if log_scale:
            need = bottom * (h / bottom) ** (1 / fraction)
        else:
            need = bottom + (h - bottom) / fraction
        top = max(top, need)
    return float(top)


def wrap(line: str, width: int = 42) -> list[str]:
    """``line`` broken at spaces into lines of at most ``width`` characters where it can be,
    never inside ``$...$`` (mathtext; a line with an unpaired ``$`` is kept whole)."""
    if line.count("$") % 2:
        return [line]
    lines: list[str] = []
    for word in re.findall(r"(?:\$[^$]*\$|[^\s$])+", line):  # formulas keep their spaces
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _size(artist: Any, renderer: Any, frame: Any) -> tuple[float, float]:
    extent = artist.get_window_extent(renderer)
    return extent.width / frame.width, extent.height / frame.height


def _column(side: str, width: float, height: float, y1: float) -> Box:
    x0 = MARGIN_X if side == "left" else 1 - MARGIN_X - width
    return Box(x0, x0 + width, y1 - height, y1)


def _arrangements(legend: tuple[float, float], text: tuple[float, float]) -> list[list[Box]]:
    """Every arrangement [text box, legend box] of the two boxes in the top corners, in order
    of preference: text left and legend right, text left over the legend, text right over
    the legend, legend left and text right."""
    top = 1 - MARGIN_Y
    out = []
    sides = [("left", "right", False), ("left", "left", True), ("right", "right", True),
             ("right", "left", False)]  # fmt: skip
    for text_side, legend_side, stacked in sides:
        t = _column(text_side, *text, top)
        below = (t.y0 - GAP if text[1] > 0 else top) if stacked else top
        out.append([t, _column(legend_side, *legend, below)])
    return out  # fmt: skip


def annotate(
    ax: Any,
    handles: Sequence[Any],
    labels: Sequence[str],
    lines: Sequence[str],
    edges: np.ndarray,
    tops: np.ndarray,
    *,
    bottom: float,
    fontsize: float = 18,
    text_size: float = 20,
) -> tuple[Legend, Text]:
    """Draw the legend (``handles``, ``labels``) and the text block (``lines``, wrapped) in
    the top corners of ``ax`` and set its y limits from ``bottom`` so that no drawn top
    (``tops`` per bin of ``edges``, data units) reaches under a box. Of every arrangement
    (text left or right, the legend beside it or under it, in one or two columns) whose boxes
    stay in the frame apart from each other, the one needing the lowest upper limit wins
    (the first of equals). Returns the legend and the text."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    log_scale = ax.get_yscale() == "log"
    to_axes = ax.transData + ax.transAxes.inverted()
    xs = to_axes.transform(np.column_stack([edges, np.full(len(edges), bottom)]))[:, 0]
    lefts, rights = np.minimum(xs[:-1], xs[1:]), np.maximum(xs[:-1], xs[1:])
    lines = [part for line in lines for part in wrap(line)]
    text = ax.text(0, 0, "\n".join(lines), transform=ax.transAxes, va="top",
                   fontsize=text_size)  # fmt: skip
    text_box = _size(text, renderer, frame) if lines else (0.0, 0.0)
    best: tuple[float, int, list[Box]] | None = None
    for ncol in (2, 1):
        legend = ax.legend(handles, labels, ncol=ncol, fontsize=fontsize, borderaxespad=0,
                           loc="upper left", bbox_to_anchor=(0, 1))  # fmt: skip
        for boxes in _arrangements(_size(legend, renderer, frame), text_box):
            t, b = boxes
            if b.x0 < 0 or t.x0 < 0 or b.y0 < 0 or (lines and t.overlaps(b, GAP)):
                continue
            top = required_top(tops, lefts, rights, boxes if lines else [b], bottom, log_scale)
            if best is None or top < best[0]:
                best = (top, ncol, boxes)
    if best is None:  # too large for the frame: the text over a one-column legend, at the left
        log.warning("the legend and the text of %r do not fit in its frame", ax.get_xlabel())
        boxes = _arrangements(_size(legend, renderer, frame), text_box)[1]
        best = (required_top(tops, lefts, rights, boxes, bottom, log_scale), 1, boxes)
    top, ncol, (t, b) = best
    legend = ax.legend(handles, labels, ncol=ncol, fontsize=fontsize, borderaxespad=0,
                       loc="upper left", bbox_to_anchor=(b.x0, b.y1))  # fmt: skip
    left = bool(np.isclose(t.x0, MARGIN_X))
    text.set_position((t.x0 if left else t.x1, t.y1))
    text.set_horizontalalignment("left" if left else "right")
    ax.set_ylim(bottom, top)
    return legend, text
