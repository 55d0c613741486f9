"""Cutflow and N-1 studies of a :class:`~brewflow.selection.Selection`, eager or lazy.

``Cutflow``: events passing each cut alone and the cuts cumulatively (initial first).
``NMinusOne``: events passing all cuts but one, for each cut in turn (then all cuts), and
histograms of a variable in each of those selections. Both give pandas tables and mplhep plots;
lazy inputs are computed together in one ``dask.compute`` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hist
import hist.dask
import numpy as np
import pandas as pd

from brewflow.arrays import is_lazy, lib
from brewflow.histograms import fill_arguments

__all__ = ["Cutflow", "CutflowResult", "NMinusOne", "NMinusOneResult"]


def _compute(*values: Any) -> list[Any]:
    if any(is_lazy(v) or hasattr(v, "dask") for v in values):
        import dask

        return list(dask.compute(*values))
    return list(values)


def _sums(masks: Sequence[Any], weight: Any | None) -> tuple[list[Any], list[Any]]:
    ak = lib(masks[0])
    counts = [ak.sum(m) for m in masks]
    sumw = [ak.sum(weight[m]) for m in masks] if weight is not None else counts
    return counts, sumw


@dataclass(frozen=True)
class CutflowResult:
    """Computed cutflow: one entry per step, ``initial`` first."""

    labels: list[str]
    onecut: list[int]  # events passing this cut alone
    cumulative: list[int]  # events passing this and every earlier cut
    onecut_sumw: list[float]
    cumulative_sumw: list[float]

    def to_frame(self) -> pd.DataFrame:
        """A table indexed by cut with counts, sums of weights and efficiencies."""
        cumulative = np.asarray(self.cumulative, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = cumulative / np.concatenate([[cumulative[0]], cumulative[:-1]])
            total = cumulative / cumulative[0]
        return pd.DataFrame(
            {
                "onecut": self.onecut,
                "cumulative": self.cumulative,
                "onecut_sumw": self.onecut_sumw,
                "cumulative_sumw": self.cumulative_sumw,
                "eff": relative,
                "cum_eff": total,
            },
            index=pd.Index(self.labels, name="cut"),
        )

    def plot(self, ax: Any = None, weighted: bool = False) -> Any:
        """Bar chart of the cumulative counts (or sums of weights) per step."""
        values = self.cumulative_sumw if weighted else self.cumulative
        return _bars(values, self.labels, "Events" if not weighted else "Sum of weights", ax)


class Cutflow:
    """Lazy or eager cutflow of the named cuts, in order (``Selection.cutflow``)."""

    def __init__(self, names: Sequence[str], masks: Sequence[Any], weight: Any | None) -> None:
        self.names = list(names)
        self._masks = list(masks)
        self._weight = weight

    def result(self) -> CutflowResult:
        """Compute the counts (one pass for lazy inputs)."""
        initial = self._masks[0] | ~self._masks[0]
        cumulative, current = [], None
        for mask in self._masks:
            current = mask if current is None else current & mask
            cumulative.append(current)
        onecut = [initial, *self._masks]
        steps = [initial, *cumulative]
        n1, w1 = _sums(onecut, self._weight)
        nc, wc = _sums(steps, self._weight)
        values = _compute(*n1, *w1, *nc, *wc)
        k = len(onecut)
        ints = lambda xs: [int(x) for x in xs]  # noqa: E731
        return CutflowResult(
            ["initial", *self.names],
            ints(values[:k]),
            ints(values[2 * k : 3 * k]),
            [float(x) for x in values[k : 2 * k]],
            [float(x) for x in values[3 * k :]],
        )


@dataclass(frozen=True)
class NMinusOneResult:
    """Computed N-1 counts: ``initial``, ``N - <cut>`` for each cut, then ``N`` (all cuts)."""

    labels: list[str]
    events: list[int]
    sumw: list[float]

    def to_frame(self) -> pd.DataFrame:
        """A table of events and sums of weights per N-1 selection."""
        return pd.DataFrame(
            {"events": self.events, "sumw": self.sumw},
            index=pd.Index(self.labels, name="selection"),
        )

    def plot(self, ax: Any = None) -> Any:
        """Bar chart of events per N-1 selection."""
        return _bars(self.events, self.labels, "Events", ax)


class NMinusOne:
    """Events passing all cuts but one, each in turn (``Selection.nminusone``)."""

    def __init__(self, names: Sequence[str], masks: Sequence[Any], weight: Any | None) -> None:
        self.names = list(names)
        self._weight = weight
        initial = masks[0] | ~masks[0]
        selections = [initial]
        for skip in range(len(masks)):
            selections.append(_all([m for i, m in enumerate(masks) if i != skip], initial))
        selections.append(_all(masks, initial))
        self._selections = selections
        self.labels = ["initial", *(f"N - {n}" for n in self.names), "N"]

    def result(self) -> NMinusOneResult:
        """Compute the counts (one pass for lazy inputs)."""
        counts, sumw = _sums(self._selections, self._weight)
        values = _compute(*counts, *sumw)
        k = len(counts)
        return NMinusOneResult(
            self.labels, [int(x) for x in values[:k]], [float(x) for x in values[k:]]
        )

    def histogram(self, values: Any, axis: hist.axis.AxisProtocol) -> Any:
        """``values`` (per event, or jagged per object) histogrammed in every N-1 selection.

        Returns a ``hist.Hist`` (``hist.dask.Hist`` for lazy inputs, call ``.compute()``) with a
        ``selection`` category axis and ``axis``.
        """
        lazy = is_lazy(values)
        cls = hist.dask.Hist if lazy else hist.Hist
        h = cls(hist.axis.StrCategory(self.labels, name="selection"), axis,
                storage=hist.storage.Weight())  # fmt: skip
        for label, mask in zip(self.labels, self._selections, strict=True):
            args = fill_arguments(values, mask, self._weight, name=f"N-1 {label}")
            args[axis.name] = args.pop("values")
            h.fill(selection=label, **args)
        return h


def _all(masks: Sequence[Any], initial: Any) -> Any:
    out = initial
    for mask in masks:
        out = out & mask
    return out


def _bars(values: Sequence[float], labels: Sequence[str], ylabel: str, ax: Any) -> Any:
    import matplotlib.pyplot as plt
    import mplhep as mh

    if ax is None:
        _, ax = plt.subplots()
    edges = np.arange(len(values) + 1)
    mh.histplot(np.asarray(values, dtype=float), edges, ax=ax, histtype="fill", alpha=0.6)
    ax.set_xticks(edges[:-1] + 0.5, labels, rotation=45, ha="right")
    ax.set_ylabel(ylabel)
    return ax
