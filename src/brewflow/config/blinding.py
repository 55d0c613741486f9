"""Blinding: which data the config keeps out of every output, in one object.

A region with ``blind: true`` admits no data event; a histogram with ``blind: [low, high]``
leaves out of every region it is filled in the data events with its variable in
``[low, high)`` (any entry, for a per-object variable), from every histogram and every cutflow
row of that region, so no total can reveal them. The jobs that read events apply it through
:class:`brewflow.jobs.gate.DataGate`; the outputs (plots, tables, fit inputs, the fit) ask it
what to draw and write. Standard library only: the Snakefile imports the config package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Blinding", "Window"]


@dataclass(frozen=True)
class Window:
    """A histogram's blinded range of its variable, ``[low, high)``."""

    histogram: str
    variable: str
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.variable} in [{self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class Blinding:
    """The blinded regions and, per region, the windows of the histograms filled there."""

    regions: frozenset[str]
    windows: Mapping[str, tuple[Window, ...]]

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Blinding:
        """The blinding a validated config asks for."""
        histograms = config["histograms"]
        blind = frozenset(name for name, spec in config["regions"].items() if spec.get("blind"))
        windows = {
            region: tuple(
                Window(name, spec["variable"], float(spec["blind"][0]), float(spec["blind"][1]))
                for name, spec in histograms.items()
                if "blind" in spec and region in (spec.get("regions") or config["regions"])
            )
            for region in config["regions"]
        }
        return cls(blind, {region: found for region, found in windows.items() if found})

    @classmethod
    def none(cls) -> Blinding:
        """No blinding (what MC gets: a window or a blinded region hides data only)."""
        return cls(frozenset(), {})

    def is_blind(self, region: str) -> bool:
        """True when ``region`` admits no data event."""
        return region in self.regions

    def hides_cutflow(self, region: str) -> bool:
        """True when ``region`` has no data cutflow: it is blinded, or has a window."""
        return self.is_blind(region) or bool(self.vetoes(region))

    def vetoes(self, region: str) -> tuple[Window, ...]:
        """The windows whose data events ``region`` leaves out (none for a blinded region:
        it admits no data event at all)."""
        return () if self.is_blind(region) else self.windows.get(region, ())

    def window(self, histogram: str, region: str) -> Window | None:
        """``histogram``'s own window in ``region`` (None without)."""
        return next((w for w in self.windows.get(region, ()) if w.histogram == histogram), None)

    def drawn_window(self, histogram: str, variable: str, region: str) -> Window | None:
        """The range a figure of ``histogram`` (of ``variable``) in ``region`` shows no data
        in: its own window, else another histogram's window on the same variable (it hides
        the same range there); None without."""
        return self.window(histogram, region) or next(
            (w for w in self.vetoes(region) if w.variable == variable), None
        )

    def left_out(self, region: str, histogram: str | None = None) -> str | None:
        """What ``region``'s data leave out because of the windows of histograms other than
        ``histogram`` (None when nothing), e.g. ``"mll in [85, 95)"``."""
        others = [str(w) for w in self.vetoes(region) if w.histogram != histogram]
        return ", ".join(others) or None

    def channel(self, histogram: str, region: str, has_data: bool) -> tuple[bool, Window | None]:
        """``(asimov, window)`` of a fit channel of ``histogram`` in ``region``: ``asimov``
        when its observations must be the Asimov dataset (the region is blinded, another
        histogram's window leaves data events out of the region, or it has no data), else the
        histogram's own blinded ``window`` (None without)."""
        asimov = self.is_blind(region) or bool(self.left_out(region, histogram)) or not has_data
        return asimov, None if asimov else self.window(histogram, region)
