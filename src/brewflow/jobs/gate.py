"""The data gate: the one way a job's events and region selections reach any output.

Every job that turns events into an artefact gets them through a :class:`DataGate` built
once from the resolved config for its dataset: the histograms and cutflows of ``analyze``
(:func:`brewflow.jobs.build.build`), the skims (:mod:`brewflow.jobs.skims`), the column
prediction of ``inspect`` (which therefore lists ``run`` and ``luminosityBlock`` where a golden
JSON reads them), and anything added later. It applies, for data:

- the **certified luminosity**: :meth:`DataGate.certified` keeps the events of the dataset's
  golden JSON (``lumi_mask``) before the analysis sees any;
- **blinding** (:class:`brewflow.config.blinding.Blinding`): :meth:`DataGate.selections`
  gives no selection for a blinded region; in a region with a blinded histogram window it
  leaves the events inside the window out of the region's mask (histograms, skims) and every
  event out of its cutflow (an event's number of cuts passed is -1, outside the cutflow axis):
  a cutflow row, compared with another region's or with the certified total, would count the
  events the window holds. Another region whose selected data events include some inside a
  window's phase space (the windowed region's cuts and the window: e.g. a Z window reaching
  into a search window above it) would show them: each selection says which
  (:attr:`RegionSelection.exposed`), the job counts them with its outputs and
  :meth:`DataGate.check` refuses to write any when there are (a configuration error naming
  both regions; no count is given).

MC events pass unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from brewflow.analysis import AnalysisOutput
from brewflow.arrays import lib
from brewflow.config import ConfigError, golden_json
from brewflow.config.blinding import Blinding, Window
from brewflow.errors import InputError
from brewflow.lumimask import LumiMask, LumiMaskError

__all__ = ["DataGate", "RegionSelection"]

NOT_ADMITTED = -1
"""The number of cuts passed given to an event the gate leaves out: below the cutflow axis,
so no row of the cutflow counts it."""


@dataclass(frozen=True)
class RegionSelection:
    """What of one region's events may enter its outputs: ``mask`` (per event: passes every
    cut of the region and is admitted) and ``passed`` (per event: the region's cuts passed in
    sequence, :data:`NOT_ADMITTED` for an event its cutflow leaves out)."""

    mask: Any
    passed: Any
    exposed: Mapping[str, Any] | None = None
    """Data: per windowed region, per event: selected here and inside that region's blinded
    window phase space (its cuts and its windows), which this region would show."""


@dataclass(frozen=True)
class DataGate:
    """Certified luminosity and blinding of one dataset (nothing for MC)."""

    dataset: str
    is_data: bool
    regions: Mapping[str, tuple[str, ...]]
    blinding: Blinding
    lumi_mask: str | None = None

    @classmethod
    def of(cls, config: Mapping[str, Any], dataset: str) -> DataGate:
        """The gate of ``dataset`` in a validated config; a golden JSON that cannot be used
        is a :class:`ConfigError` naming its config key."""
        spec = config["datasets"][dataset]
        regions = {name: tuple(region["cuts"]) for name, region in config["regions"].items()}
        blinding = Blinding.of(config) if spec["is_data"] else Blinding.none()  # MC: unblinded
        gate = cls(dataset, bool(spec["is_data"]), regions, blinding,
                   golden_json(config, dataset))  # fmt: skip
        gate._mask()  # the golden JSON is checked now, not when the first chunk is read
        return gate

    def _mask(self) -> LumiMask | None:
        if self.lumi_mask is None:
            return None
        try:
            return _lumi_mask(self.lumi_mask)
        except LumiMaskError as err:  # the golden JSON's problem, never a data file's
            raise ConfigError(f"config key 'datasets.{self.dataset}.lumi_mask': {err}") from None

    @property
    def columns(self) -> tuple[str, ...]:
        """The event branches the gate itself reads."""
        return ("run", "luminosityBlock") if self.lumi_mask else ()

    def certified_mask(self, events: Any, layout: str) -> Any:
        """Per event: is it in the golden JSON (None without one)? ``layout`` is the file
        whose branches define the events (named in errors)."""
        mask_of = self._mask()
        if mask_of is None:
            return None
        try:
            return mask_of.events(events)
        except KeyError as err:
            raise InputError(
                f"dataset {self.dataset!r}, file {layout!r}: config key 'lumi_mask': {err.args[0]}"
            ) from None

    def certified(self, events: Any, layout: str) -> tuple[Any, Any]:
        """``(events, n_certified)``: the events of the golden JSON and their number (lazy or
        eager, like ``events``); all of them and None without a golden JSON."""
        mask = self.certified_mask(events, layout)
        if mask is None:
            return events, None
        return events[mask], lib(mask).sum(mask)

    def admits(self, region: str) -> bool:
        """Whether any event of this dataset may enter ``region``'s outputs."""
        return not (self.is_data and self.blinding.is_blind(region))

    def selections(
        self, output: AnalysisOutput, regions: Sequence[str] | None = None
    ) -> dict[str, RegionSelection]:
        """The selection of every region (or of ``regions``) that admits events: its cuts,
        less the events a blinded window leaves out, and no cutflow, where it has a window
        (data)."""
        out = {}
        for region in self.regions if regions is None else regions:
            if not self.admits(region):
                continue
            cuts = self._cuts(output, region)
            mask = output.selection.all(*cuts)
            passed = output.selection.n_passed(*cuts)
            vetoes = self.blinding.vetoes(region) if self.is_data else ()
            if vetoes:  # its histograms: the events outside the windows; its cutflow: none
                # (a row, against another region's or the certified total, would count the
                # events a window holds)
                mask = mask & ~_inside(output, vetoes)
                passed = passed * 0 + NOT_ADMITTED
            mask = lib(mask).fill_none(mask, False)
            out[region] = RegionSelection(mask, passed, self._exposed(output, region, mask))
        return out

    def _exposed(self, output: AnalysisOutput, region: str, mask: Any) -> dict[str, Any] | None:
        """Per other region with a blinded window ``region`` does not share: its events in
        ``mask`` inside that window's phase space (data; None for MC)."""
        if not self.is_data:
            return None
        own = set(self.blinding.vetoes(region))
        out = {}
        for other in self.regions:
            windows = [w for w in self.blinding.vetoes(other) if w not in own]
            if other == region or not windows:
                continue
            phase = output.selection.all(*self._cuts(output, other)) & _inside(output, windows)
            out[other] = mask & lib(phase).fill_none(phase, False)
        return out

    def exposures(self, selections: Mapping[str, RegionSelection]) -> dict[str, Any]:
        """``"<region>/<windowed region>"`` -> the number of ``region``'s selected data events
        inside that region's blinded window phase space (lazy or eager); :meth:`check` them
        once computed."""
        out = {}
        for region, selection in selections.items():
            for other, hit in (selection.exposed or {}).items():
                out[f"{region}/{other}"] = lib(hit).sum(hit)
        return out

    def check(self, exposures: Mapping[str, Any]) -> None:
        """Refuse (a :class:`ConfigError`) when a region's data events include some inside
        another region's blinded window: its outputs would show them. The message names the
        regions and the window, never how many events."""
        for key, count in sorted(exposures.items()):
            if int(count):
                region, other = key.split("/", 1)
                windows = self.blinding.vetoes(other)
                names = ", ".join(f"histograms.{w.histogram}" for w in windows)
                raise ConfigError(
                    f"config key 'regions.{region}': its data events include some inside the "
                    f"blinded window of region {other!r} "
                    f"({'; '.join(str(w) for w in windows)}): its outputs would show them; "
                    f"make the regions disjoint (a cut), or fill {names} in {region!r} too"
                )

    def _cuts(self, output: AnalysisOutput, region: str) -> tuple[str, ...]:
        """``region``'s cuts, each of which the analysis must define (else a
        :class:`ConfigError` naming the config key)."""
        cuts = self.regions[region]
        unknown = [c for c in cuts if c not in output.selection]
        if unknown:
            raise ConfigError(
                f"config key 'regions.{region}.cuts': the analysis defines no cut "
                f"{unknown[0]!r} (it has: {', '.join(output.selection.names)})"
            )
        return cuts

    def selection(self, output: AnalysisOutput, region: str) -> RegionSelection:
        """The selection of ``region``: as :meth:`selections`, and for a region that admits
        no event of this dataset (a blinded region of data), one that selects none."""
        found = self.selections(output, [region]).get(region)
        if found is not None:
            return found
        cuts = output.selection.n_passed(*self._cuts(output, region))
        none = lib(cuts).zeros_like(cuts, dtype=bool)
        return RegionSelection(none, lib(none).where(none, 0, NOT_ADMITTED))


def _inside(output: AnalysisOutput, windows: Sequence[Window]) -> Any:
    """Per event: True if a value of a window's variable lies in ``[low, high)`` (any entry of
    a per-object variable; None is outside)."""
    veto = None
    for window in windows:
        values = output.variables[window.variable]
        ak = lib(values)
        inside = (values >= window.low) & (values < window.high)
        if values.ndim > 1:
            inside = ak.any(inside, axis=-1)
        inside = ak.fill_none(inside, False)
        veto = inside if veto is None else veto | inside
    return veto


_MASKS: dict[tuple[str, int, int], LumiMask] = {}


def _lumi_mask(path: str) -> LumiMask:
    """The golden JSON at ``path``, parsed once per process while the file is unchanged."""
    try:
        stat = os.stat(path)
    except OSError as err:
        raise LumiMaskError(f"cannot read golden JSON {path!r}: {err.strerror}") from None
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _MASKS:
        _MASKS[key] = LumiMask(path)
    return _MASKS[key]
