"""Named event selections: boolean masks by name, combined on demand (cf. PackedSelection)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from brewflow.arrays import lib
from brewflow.cutflow import Cutflow, NMinusOne

__all__ = ["MAX_CUTS", "Selection"]

MAX_CUTS = 64


class Selection:
    """Up to 64 named per-event boolean masks (eager or lazy, all of the same length)."""

    def __init__(self) -> None:
        self._masks: dict[str, Any] = {}

    def add(self, name: str, mask: Any) -> None:
        """Register ``mask`` (bool per event; None counts as False) under ``name``."""
        if name in self._masks:
            raise ValueError(f"selection {name!r} is already defined")
        if len(self._masks) >= MAX_CUTS:
            raise ValueError(f"at most {MAX_CUTS} selections; cannot add {name!r}")
        self._masks[name] = lib(mask).fill_none(mask, False)

    @property
    def names(self) -> list[str]:
        """Selection names in the order they were added."""
        return list(self._masks)

    def __contains__(self, name: str) -> bool:
        return name in self._masks

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __getitem__(self, name: str) -> Any:
        try:
            return self._masks[name]
        except KeyError:
            raise KeyError(
                f"no selection named {name!r}; the analysis defines: {', '.join(self._masks)}"
            ) from None

    def require(self, **values: bool) -> Any:
        """Events where each named selection equals the given bool (``require(trigger=True)``)."""
        if not values:
            raise ValueError("require() needs at least one selection")
        out = None
        for name, wanted in values.items():
            mask = self[name] if wanted else ~self[name]
            out = mask if out is None else out & mask
        return out

    def all(self, *names: str) -> Any:
        """Events passing every named selection."""
        return self.require(**dict.fromkeys(names, True))

    def cumulative(self, *names: str) -> list[Any]:
        """Masks of events passing the first 1, 2, ..., n named selections (cutflow order)."""
        out, current = [], None
        for name in names:
            current = self[name] if current is None else current & self[name]
            out.append(current)
        return out

    def n_passed(self, *names: str) -> Any:
        """Per event, how many of the named selections it passes in sequence before failing one."""
        cumulative = self.cumulative(*names)
        total = cumulative[0] * 1
        for mask in cumulative[1:]:
            total = total + mask
        return total

    def cutflow(self, *names: str, weight: Any = None) -> Cutflow:
        """Events (and sums of ``weight``) passing each named cut alone and cumulatively."""
        return Cutflow(names, [self[n] for n in names], weight)

    def nminusone(self, *names: str, weight: Any = None) -> NMinusOne:
        """Events passing all named cuts but one, each in turn; see :class:`NMinusOne`."""
        return NMinusOne(names, [self[n] for n in names], weight)
