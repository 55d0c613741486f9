"""NanoAOD events with some collections replaced by corrected ones (jets and MET, electrons):
what the analysis sees on nominal or varied objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from brewflow.arrays import chain, lib

__all__ = ["CorrectedEvents", "with_collection"]


class CorrectedEvents:
    """NanoAOD events with some collections replaced (corrected jets and MET).

    Field access (``events.Muon``, ``events["Jet"]``, ``events.fields``) returns the replaced
    collections or the original ones *unchanged*: the same lazy arrays for every variation, so
    a graph with several object variations computes the jet-independent parts (leptons,
    triggers, most weights) once. Anything else (slicing ``events[mask]``, ``len``, passing
    ``events`` to an array function) acts on :meth:`materialize`, a real record array with
    the replacements.
    """

    def __init__(self, events: Any, replaced: Mapping[str, Any]) -> None:
        self._events = events
        self._replaced = dict(replaced)

    @property
    def nanoaod(self) -> Any:
        """The events as NanoAOD stores them (no collection replaced)."""
        return self._events

    @property
    def fields(self) -> list[str]:
        return list(self._events.fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._replaced:
            return self._replaced[name]
        return getattr(self._events, name)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._replaced[key] if key in self._replaced else self._events[key]
        return self.materialize()[key]

    def __len__(self) -> int:
        return len(self.materialize())

    @classmethod
    def chain(cls, views: Sequence[CorrectedEvents]) -> CorrectedEvents | None:
        """The views one after the other along the event axis (lazy: block ``i`` is partitions
        ``i * P`` to ``(i + 1) * P``); None when they do not share events and field types."""
        events = views[0]._events
        names = list(views[0]._replaced)
        if any(v._events is not events or list(v._replaced) != names for v in views):
            return None
        for name in names:
            if any(v._replaced[name].form != views[0]._replaced[name].form for v in views):
                return None
        return cls(
            chain([events] * len(views)),
            {name: chain([v._replaced[name] for v in views]) for name in names},
        )

    def materialize(self) -> Any:
        """The events as one record array with the replaced collections."""
        out = self._events
        for name, values in self._replaced.items():
            out = lib(values).with_field(out, values, name)
        return out


def with_collection(events: Any, name: str, values: Any) -> CorrectedEvents:
    """``events`` (NanoAOD or :class:`CorrectedEvents`) with collection ``name`` replaced."""
    if isinstance(events, CorrectedEvents):
        return CorrectedEvents(events._events, {**events._replaced, name: values})
    return CorrectedEvents(events, {name: values})
