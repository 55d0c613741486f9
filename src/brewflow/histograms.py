"""Histogram booking and filling from config definitions; category merging; cutflow histograms.

Every analysis histogram has axes ``region`` (StrCategory), ``systematic`` (StrCategory) and the
variable (Regular or Variable), with Weight storage (sum of weights and of squared weights).
Cutflows are two more histograms over ``passed`` (the number of a region's cuts an event passes
in sequence): ``_cutflow`` (weighted) and ``_cutflow_events`` (unweighted counts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import awkward as ak
import hist
import hist.dask

from brewflow.arrays import is_lazy, lib
from brewflow.errors import BrewflowError
from brewflow.results.model import CUTFLOW, CUTFLOW_EVENTS, RESERVED_AXES

__all__ = [
    "CUTFLOW",
    "CUTFLOW_EVENTS",
    "RESERVED_AXES",
    "FillLengthError",
    "Filler",
    "book",
    "book_cutflow",
    "checked_weight",
    "fill",
    "fill_arguments",
    "variable_axis",
]


def variable_axis(name: str, definition: Mapping[str, Any]) -> hist.axis.AxisProtocol:
    """The variable axis of a histogram definition (``bins/start/stop`` or ``edges``), named
    and labelled by its variable (a plot's axis title comes from the plot job's config, so a
    label edit reruns the plots only)."""
    variable = label = definition["variable"]
    if variable in RESERVED_AXES:
        raise ValueError(f"histogram {name!r}: variable name {variable!r} is reserved")
    if "edges" in definition:
        return hist.axis.Variable(definition["edges"], name=variable, label=label)
    return hist.axis.Regular(
        definition["bins"], definition["start"], definition["stop"], name=variable, label=label
    )


def _hist_class(lazy: bool) -> type:
    return hist.dask.Hist if lazy else hist.Hist


def book(
    definitions: Mapping[str, Mapping[str, Any]],
    regions: Sequence[str],
    systematics: Sequence[str],
    *,
    lazy: bool,
) -> dict[str, Any]:
    """Empty histograms, one per definition, with region and systematic category axes."""
    cls = _hist_class(lazy)
    out = {}
    for name, definition in definitions.items():
        out[name] = cls(
            hist.axis.StrCategory(list(definition.get("regions") or regions), name="region"),
            hist.axis.StrCategory(list(systematics), name="systematic"),
            variable_axis(name, definition),
            storage=hist.storage.Weight(),
            name=name,
            label=definition["variable"],
        )
    return out


def book_cutflow(
    regions: Mapping[str, Sequence[str]], systematics: Sequence[str], *, lazy: bool
) -> dict[str, Any]:
    """The weighted and unweighted cutflow histograms for the given ``{region: cuts}``."""
    cls = _hist_class(lazy)
    n_cuts = max(len(cuts) for cuts in regions.values())
    axes = (
        hist.axis.StrCategory(list(regions), name="region"),
        hist.axis.StrCategory(list(systematics), name="systematic"),
        hist.axis.Integer(0, n_cuts + 1, name="passed", underflow=False, overflow=False),
    )
    return {
        CUTFLOW: cls(*axes, storage=hist.storage.Weight()),
        CUTFLOW_EVENTS: cls(*axes, storage=hist.storage.Double()),
    }


def fill_arguments(
    values: Any, mask: Any, weight: Any | None, *, name: str = "histogram"
) -> dict[str, Any]:
    """``values`` and per-entry ``weight`` of the events in ``mask``, ready for ``Hist.fill``:
    jagged values are flattened (each event's weight repeated per object), None dropped; the
    weight's length is checked (:func:`checked_weight`, ``name`` in the error)."""
    out = Filler({None: mask}).arguments(region=None, variable=None, values=values, weight=weight)
    if "weight" in out:
        out["weight"] = checked_weight(out["values"], out["weight"], name, "selection")
    return out


def fill(
    h: Any, *, region: str, systematic: str, values: Any, mask: Any, weight: Any | None
) -> None:
    """Fill ``values`` of events in ``mask`` into the region and systematic categories."""
    Filler({region: mask}).fill(
        h, region=region, systematic=systematic, variable=None, values=values, weight=weight
    )


class Filler:
    """Fills of one analysis output into many histograms, regions and systematics, with the
    selections and weights prepared once and shared.

    The masked, flattened values are built once per (variable, region) and the weights once
    per (systematic, selection): with many weight variations the lazy graph is built several
    times faster. Weights are keyed by the very selection that made the values they go with
    (the region's mask for one value per event that is never None; the region's mask and the
    variable's defined values otherwise), so a histogram never gets another's weights.
    :func:`fill` and :func:`fill_arguments` are its one-histogram forms.
    """

    def __init__(self, masks: Mapping[Any, Any]) -> None:
        self.masks = masks
        self._values: dict[tuple, tuple[Any, Any, Any]] = {}
        self._region_masks: dict[Any, Any] = {}
        self._weights: dict[tuple, tuple[Any, Any]] = {}

    def _region_mask(self, region: Any) -> Any:
        """The region's mask with None (an undecided cut) as False."""
        if region not in self._region_masks:
            mask = self.masks[region]
            self._region_masks[region] = lib(mask).fill_none(mask, False)
        return self._region_masks[region]

    def _entries(self, variable: Any, values: Any, region: Any) -> tuple[Any, Any, Any]:
        """``(values to fill, selection, keep)``: flat values give the event mask as selection
        and no ``keep``; jagged ones the selected lists and the non-None flat entries."""
        key = (variable, region)
        if key not in self._values:
            ak = lib(values)
            if values.ndim > 1:
                selected = values[self.masks[region]]
                flat = ak.flatten(selected)
                keep = ~ak.is_none(flat)
                self._values[key] = (flat[keep], selected, keep)
            else:
                mask = self._region_mask(region)
                if _may_be_none(values):  # a None value drops the event: its own mask
                    mask = ak.fill_none(mask & ~ak.is_none(values), False)
                self._values[key] = (values[mask], mask, None)
        return self._values[key]

    def per_entry(self, *, region: Any, variable: Any, values: Any, per_event: Any) -> Any:
        """``per_event`` (one value per event, e.g. a label) for each entry the fill of
        ``values`` in ``region`` makes, as the weights are."""
        _, selection, keep = self._entries(variable, values, region)
        if keep is None:  # flat values: selection is the event mask
            return per_event[selection]
        entries = per_event[self.masks[region]]
        return lib(entries).flatten(lib(entries).broadcast_arrays(entries, selection)[0])[keep]

    def arguments(
        self, *, region: Any, variable: Any, values: Any, weight: Any, systematic: Any = None
    ) -> dict[str, Any]:
        """``{"values": ..., "weight": ...}`` of ``values`` (the output's ``variable``) in
        ``region``, weighted by ``systematic``'s ``weight`` (None: unweighted)."""
        flat, selection, _ = self._entries(variable, values, region)
        out = {"values": flat}
        if weight is not None:
            key = (region, systematic, id(selection))  # the selection is kept in _values
            cached = self._weights.get(key)
            if cached is None or cached[0] is not weight:
                entries = self.per_entry(
                    region=region, variable=variable, values=values, per_event=weight
                )
                if not is_lazy(entries):  # lazily, equal by construction (same selection)
                    entries = checked_weight(flat, entries, variable, region)
                cached = self._weights[key] = (weight, entries)
            out["weight"] = cached[1]
        return out

    def fill(
        self,
        h: Any,
        *,
        region: Any,
        systematic: str,
        variable: Any,
        values: Any,
        weight: Any,
        select: Callable[[Any], Any] | None = None,
    ) -> None:
        """Fill ``h``; ``select`` picks the part of the prepared arrays to fill (e.g. the
        partitions of one stacked object variation)."""
        select = select or (lambda a: a)
        args = self.arguments(
            region=region, variable=variable, values=values, weight=weight, systematic=systematic
        )
        args = {k: select(v) for k, v in args.items()}
        args[h.axes[-1].name] = args.pop("values")
        h.fill(region=region, systematic=systematic, **args)


def _may_be_none(values: Any) -> bool:
    """Whether an array's entries can be None (its type is an option type)."""
    layout = values._meta.layout if is_lazy(values) else ak.to_layout(values)
    return bool(layout.is_option)


class FillLengthError(BrewflowError, ValueError):
    """Values and weights of one histogram fill differ in length."""


def _same_length(values: Any, weight: Any, name: str, region: str) -> Any:
    if ak.backend(values) != "typetracer" and len(values) != len(weight):
        raise FillLengthError(
            f"histogram {name!r}, region {region!r}: {len(values)} values but {len(weight)} "
            "weights; the analysis's weight must have one entry per event"
        )
    return weight


def checked_weight(values: Any, weight: Any, name: str, region: str) -> Any:
    """``weight``, after checking it has one entry per value (lazily: when each partition is
    computed). boost-histogram refuses most mismatches itself, but fills with an empty weight
    array from memory past its end; this makes every mismatch an error naming the histogram."""
    if is_lazy(values):
        import dask_awkward as dak

        return dak.map_partitions(
            _same_length, values, weight, name, region, label="fill-check", meta=weight._meta
        )
    return _same_length(values, weight, name, region)
