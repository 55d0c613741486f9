"""Systematics combined bin by bin from member histograms: the ``envelope`` of weight
variations (the 7-point QCD scale envelope) and the ``pdf`` uncertainty of an LHAPDF set's
members (:mod:`brewflow.pdfsets`).

The analyze jobs fill each member into a category of its own, ``<name>Up|<member>`` or
``<name>Down|<member>`` (:func:`brewflow.config.member_categories`); when a dataset is
normalised, its complete (merged) histograms' members become ``<name>Up`` and ``<name>Down``,
bin by bin:

- envelope: up the highest, down the lowest of the nominal and every member (the variance
  taken from the histogram chosen in the bin);
- pdf: ``nominal +- delta``, ``delta`` the Hessian or replica spread of the error members,
  alpha_s added in quadrature (the variance the nominal's).

Cutflows are combined row by row (the yield after each cut), not bin by bin of their internal
``passed`` axis, whose bins a row sums.

A dataset's uncertainty is its own; the datasets of a process add their shifts (fully
correlated, an upper bound of the process's Hessian sum). Numpy and hist only: a small job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hist
import numpy as np

from brewflow.config.systematics import MEMBER
from brewflow.errors import InputError
from brewflow.pdfsets import PDF_SETS
from brewflow.results.model import CUTFLOW, Result

__all__ = ["combine_members"]


def _owner(category: str) -> tuple[str, str]:
    """``(systematic, member)`` of a member category ``<name>Up|<member>``."""
    owner, member = category.split(MEMBER)
    for direction in ("Up", "Down"):
        if owner.endswith(direction):
            return owner[: -len(direction)], member
    raise InputError(f"systematic category {category!r} names no Up or Down systematic")


def _expected(name: str, spec: Mapping[str, Any]) -> set[str]:
    if spec["type"] == "envelope":
        return {f"{w}{d}" for w in spec["of"] for d in ("Up", "Down")}
    return {str(i) for i in range(PDF_SETS[spec["set"]].entries)}


def _combined(
    values: dict[str, np.ndarray], variances: dict[str, np.ndarray] | None,
    spec: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:  # fmt: skip
    """(up, down, their variances) from the nominal's and members' bin values."""
    nominal = values["nominal"]
    if spec["type"] == "envelope":
        names = ["nominal", *sorted(k for k in values if k != "nominal")]
        stack = np.stack([values[n] for n in names])
        high, low = np.argmax(stack, axis=0), np.argmin(stack, axis=0)
        up = np.take_along_axis(stack, high[None], axis=0)[0]
        down = np.take_along_axis(stack, low[None], axis=0)[0]
        if variances is None:
            return up, down, None, None
        spread = np.stack([variances[n] for n in names])
        return (up, down, np.take_along_axis(spread, high[None], axis=0)[0],
                np.take_along_axis(spread, low[None], axis=0)[0])  # fmt: skip
    pdf = PDF_SETS[spec["set"]]
    members = np.stack([values[str(i)] for i in pdf.error_members])
    if pdf.error == "hessian":
        delta = np.sqrt(np.sum((members - values["0"]) ** 2, axis=0))
    else:
        delta = np.std(members, axis=0, ddof=1)
    if pdf.alphas is not None:
        low_as, high_as = (values[str(i)] for i in pdf.alphas)
        delta = np.hypot(delta, (high_as - low_as) / 2 * pdf.alphas_scale)
    kept = None if variances is None else variances["nominal"]
    return nominal + delta, nominal - delta, kept, kept


PASSED = "passed"
"""A cutflow's axis: the number of cuts an event passed in sequence (a row: that many or more)."""


def _rows(bins: np.ndarray, axis: int) -> np.ndarray:
    """Cutflow bins -> rows (each the sum of its bin and every later one)."""
    return np.flip(np.cumsum(np.flip(bins, axis), axis), axis)


def _bins(rows: np.ndarray, axis: int) -> np.ndarray:
    """Cutflow rows -> bins (the inverse of :func:`_rows`)."""
    after = np.concatenate([np.delete(rows, 0, axis),
                            np.zeros_like(np.take(rows, [0], axis))], axis)  # fmt: skip
    return rows - after


def _histogram(h: hist.Hist, systematics: Mapping[str, Mapping[str, Any]]) -> hist.Hist:
    axis = [a.name for a in h.axes].index("systematic")
    categories = list(h.axes["systematic"])
    groups: dict[str, dict[str, int]] = {}
    for index, category in enumerate(categories):
        if MEMBER in category:
            name, member = _owner(category)
            groups.setdefault(name, {})[member] = index
    kept = [c for c in categories if MEMBER not in c]
    names = kept + [f"{n}{d}" for n in groups for d in ("Up", "Down")]
    axes = [hist.axis.StrCategory(names, name=a.name, label=a.label) if a.name == "systematic"
            else a for a in h.axes]  # fmt: skip
    out = hist.Hist(*axes, storage=h.storage_type(), name=h.name, label=h.label)
    source, target = h.view(flow=True), out.view(flow=True)
    fields = source.dtype.names or ()
    others = [a.name for a in h.axes if a.name != "systematic"]
    rows = others.index(PASSED) if PASSED in others else None

    def at(view: np.ndarray, index: int) -> Any:
        return view[(slice(None),) * axis + (index,)]

    for j, category in enumerate(kept):
        at(target, j)[...] = at(source, categories.index(category))
    if "nominal" not in categories:
        raise InputError(f"histogram {h.name!r}: members without a nominal to combine them with")
    for k, (name, members) in enumerate(groups.items()):
        missing = _expected(name, systematics[name]) - set(members)
        if missing:
            raise InputError(
                f"systematic {name!r}: the histograms lack {len(missing)} of its members (e.g. "
                f"{sorted(missing)[0]!r}); both {name}Up and {name}Down must be analysed"
            )
        indices = {"nominal": categories.index("nominal"), **members}
        value = (lambda v: v["value"]) if fields else (lambda v: v)
        values = {m: np.asarray(value(at(source, i)), dtype=np.float64)
                  for m, i in indices.items()}  # fmt: skip
        variances = ({m: np.asarray(at(source, i)["variance"]) for m, i in indices.items()}
                     if "variance" in fields else None)  # fmt: skip
        if rows is not None:  # cutflows: combined row by row (a row sums the bins after it)
            values = {m: _rows(v, rows) for m, v in values.items()}
            variances = None if variances is None else {
                m: _rows(v, rows) for m, v in variances.items()}  # fmt: skip
        up, down, up_var, down_var = _combined(values, variances, systematics[name])
        if rows is not None:
            up, down = _bins(up, rows), _bins(down, rows)
            up_var = None if up_var is None else _bins(up_var, rows)
            down_var = None if down_var is None else _bins(down_var, rows)
        for offset, (v, var) in enumerate(((up, up_var), (down, down_var))):
            slot = at(target, len(kept) + 2 * k + offset)
            if fields:
                slot["value"] = v
                slot["variance"] = var
            else:
                slot[...] = v
    return out


def combine_members(result: Result, systematics: Mapping[str, Mapping[str, Any]]) -> Result:
    """``result`` with its ``envelope`` and ``pdf`` systematics' member categories combined
    into ``<name>Up``/``<name>Down`` (``systematics``: the config's, by name); unchanged
    without members."""
    if not any(MEMBER in c for c in result.histograms[CUTFLOW].axes["systematic"]):
        return result
    histograms = {name: _histogram(h, systematics) for name, h in result.histograms.items()}
    meta = {**result.meta, "systematics": list(histograms[CUTFLOW].axes["systematic"])}
    return Result(result.dataset, result.process, result.is_data, histograms, result.cutflows, meta)
