"""The CMS building blocks the config turns on, applied around the analysis: what a physicist
configures instead of writing. Every job that runs the analysis (analyze, skims, inspect, the
check before a run) runs it through :func:`with_blocks`, which adds to its output:

- ``met_filters`` (per era): the cut ``met_filters``, every recommended ``Flag_*`` of the era's
  campaign (:mod:`brewflow.metfilters`), data and MC, for regions to list; 2022-23 data also
  JetMET's on-the-fly ``ecalBadCalibFilter`` veto;
- ``theory`` (MC): the weights ``qcd_muR``, ``qcd_muF``, ``qcd_muRmuF``, ``ps_isr``,
  ``ps_fsr`` with their variations (:mod:`brewflow.theory`), each 1 at nominal, and, for the
  datasets of ``theory.top_pt``, the top pT reweighting ``top_pt`` (not 1 at nominal), for the
  systematics (``type: weight``) to name;
- ``jets.veto_map`` (per era; :mod:`brewflow.jetquality`): the cut ``jet_veto`` (event mode),
  or the jets in vetoed cells removed before the analysis sees them (``mode: jet``);
- ``hem_veto`` (per era, 2018; :mod:`brewflow.detector`): the cut ``hem_veto``;
- ``l1_prefiring`` (per era, MC): the weight ``l1_prefiring`` with its variations;
- ``lepton_sf`` (per era, MC): a weight per entry, named by its key, on the analysis's
  selected leptons (``AnalysisOutput.objects``; :mod:`brewflow.leptonsf`);
- systematics of type ``pdf`` (MC they apply to): ``LHEPdfWeight``'s members as variations
  ``<name>|<entry>`` of a factor 1, the histograms they fill combined bin by bin later.

A cut a block adds exists in every era once one era configures it (it passes every event of an
era without the block), so regions list it in multi-era configs. A block's cut or weight the
analysis defines itself is a configuration error (one of the two must go); a branch a block
needs and the file lacks is an input error naming both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from brewflow.analysis import AnalysisOutput, Context
from brewflow.arrays import lib
from brewflow.config import (
    MEMBER,
    ConfigError,
    applicable_systematics,
    era_of,
    era_settings,
    met_filters_of,
    theory_applies,
)
from brewflow.corrected import CorrectedEvents, with_collection
from brewflow.corrections import CorrectionError, load
from brewflow.detector import PREFIRING_BRANCHES, HemRegion, hem_veto, prefiring_weights
from brewflow.errors import InputError
from brewflow.jetquality import veto_map_jets, veto_map_selected
from brewflow.leptonsf import (
    electron_reco_sf_weights,
    electron_sf_weights,
    muon_sf_weights,
    trigger_sf_weights,
)
from brewflow.metfilters import (
    RECOMMENDATIONS,
    MissingFlag,
    ecal_bad_calib_pass,
    met_filter_mask,
)
from brewflow.objects import has_branch
from brewflow.pdfsets import PDF_SETS
from brewflow.theory import parton_shower_weights, pdf_members, scale_weights, top_pt_weights

__all__ = ["HEM_VETO", "JET_VETO", "L1_PREFIRING", "MET_FILTERS", "with_blocks"]

MET_FILTERS = "met_filters"
"""The name of the MET filters' cut."""
JET_VETO = "jet_veto"
"""The name of the jet veto map's cut."""
HEM_VETO = "hem_veto"
"""The name of the HEM15/16 veto's cut."""
L1_PREFIRING = "l1_prefiring"
"""The name of the L1 prefiring weight."""

Analysis = Callable[[Any, Context], AnalysisOutput]


def _flags(config: Mapping[str, Any], dataset: str) -> tuple[str, tuple[str, ...]] | None:
    """(what the list is, its flags) of ``dataset``'s era, or None without MET filters."""
    spec = met_filters_of(config, dataset)
    if spec is None:
        return None
    if isinstance(spec, str):
        return f"the recommendation {spec!r}", RECOMMENDATIONS[spec].flags
    return "the config's list", tuple(spec)


def _branch(events: Any, name: str, dataset: str, key: str, where: str,
            choice: str = "theory.datasets") -> Any:  # fmt: skip
    if name not in events.fields:
        raise InputError(
            f"dataset {dataset!r}{where}: config key {key!r} needs the branch {name}, which the "
            f"file lacks; leave the dataset out of {choice}"
        )
    return events[name]


def _named(names: Any, dataset: str, process: str) -> bool:
    return dataset in names or process in names


def _theory(output: AnalysisOutput, events: Any, block: Mapping[str, Any], dataset: str,
            process: str, where: str, variations: bool) -> None:  # fmt: skip
    """Add the ``theory`` block's weights to ``output``: with their variations when the run
    wants them (the nominal objects' run), else only the factor that is not 1 (top pT)."""
    found: dict[str, dict[str, Any]] = {}
    if block.get("scale") and variations:
        scale = scale_weights(_branch(events, "LHEScaleWeight", dataset, "theory.scale", where))
        found |= {f"qcd_{key}": factor for key, factor in scale.items()}
    if block.get("parton_shower") and variations:
        ps = parton_shower_weights(
            _branch(events, "PSWeight", dataset, "theory.parton_shower", where),
            block["parton_shower"],
        )
        found |= {"ps_isr": ps["isr"], "ps_fsr": ps["fsr"]}
    top = block.get("top_pt")
    if top and _named(top["datasets"], dataset, process):
        found["top_pt"] = top_pt_weights(
            _branch(events, "GenPart", dataset, "theory.top_pt", where), top["method"]
        )
    for name, factor in found.items():
        _add_weight(output, name, "theory", factor, variations)


def _add_cut(output: AnalysisOutput, name: str, mask: Any) -> None:
    if name in output.selection:
        raise ConfigError(
            f"config key {name!r}: the analysis defines the cut {name!r} itself; remove it "
            f"from the analysis or the {name} block"
        )
    output.selection.add(name, mask)


def _add_weight(output: AnalysisOutput, name: str, key: str, factor: Mapping[str, Any],
                variations: bool) -> None:  # fmt: skip
    if name in output.weights.names or f"{name}Up" in output.weights.variations:
        raise ConfigError(
            f"config key {key!r}: the analysis defines the weight {name!r} itself; remove it "
            f"from the analysis or from the {key} block"
        )
    varied = {"up": factor["up"], "down": factor["down"]} if variations else {}
    output.weights.add(name, factor["nominal"], **varied)


@dataclass(frozen=True)
class _Blocks:
    """The blocks that apply to one dataset, read from the config once per job."""

    dataset: str
    is_data: bool
    where: str
    flags: tuple[str, tuple[str, ...]] | None
    ecal_patch: bool  # data of a campaign whose ecalBadCalibFilter needs JetMET's patch
    theory: Mapping[str, Any] | None
    process: str
    veto_map: Mapping[str, Any] | None
    jet_veto_cut: bool  # a region lists the cut jet_veto (an era has an event veto map)
    hem: HemRegion | None
    hem_cut: bool  # a region lists the cut hem_veto (an era has a HEM veto)
    prefiring: bool
    pdf: tuple[tuple[str, int], ...]  # (systematic, LHEPdfWeight entries) of type pdf
    lepton_sf: Mapping[str, Any]  # MC: weight name -> its lepton_sf entry

    def __bool__(self) -> bool:
        return bool(self.flags or self.theory or self.veto_map or self.jet_veto_cut
                    or self.hem_cut or self.prefiring or self.pdf or self.lepton_sf)  # fmt: skip

    def missing(self, branch: str, key: str) -> InputError:
        return InputError(
            f"dataset {self.dataset!r}{self.where}: {key} needs the branch {branch}, which the "
            "file lacks"
        )

    def prepared(self, events: Any) -> Any:
        """The events the analysis sees: without the jets a veto map in jet mode removes."""
        if not self.veto_map or self.veto_map.get("mode", "event") != "jet":
            return events
        vetoed = veto_map_jets(events.Jet, self._map(), self.veto_map.get("map", "jetvetomap"))
        return with_collection(events, "Jet", events.Jet[~vetoed])

    def _map(self) -> Any:
        assert self.veto_map is not None
        return load(self.veto_map["file"], self.veto_map["name"])

    def add_cuts(self, output: AnalysisOutput, events: Any) -> None:
        if self.flags is not None:
            what, names = self.flags
            try:
                mask = met_filter_mask(events, names)
            except MissingFlag as err:
                raise InputError(
                    f"dataset {self.dataset!r}{self.where}: {err}, which {what} (met_filters) "
                    "requires; older NanoAOD needs a list of its own: met_filters: "
                    "[goodVertices, ...]"
                ) from None
            if self.ecal_patch:  # the flag is wrong for some 2022-23 runs: JetMET's veto,
                # on NanoAOD's jets and PuppiMET as the recipe is written
                stored = events.nanoaod if isinstance(events, CorrectedEvents) else events
                mask = mask & ecal_bad_calib_pass(stored)
            _add_cut(output, MET_FILTERS, mask)
        if self.jet_veto_cut:
            _add_cut(output, JET_VETO, self._jet_veto(events))
        if self.hem_cut:
            _add_cut(output, HEM_VETO, self._hem(events))

    def _jet_veto(self, events: Any) -> Any:
        passed = events.luminosityBlock >= 0  # every event: an era without an event veto map
        if not self.veto_map or self.veto_map.get("mode", "event") != "event":
            return passed
        for branch in ("Jet_chEmEF", "Jet_neEmEF", "Jet_jetId", "Muon_isPFcand"):
            if not has_branch(events, branch):
                raise self.missing(branch, "jets.veto_map")
        jets = events.Jet
        vetoed = veto_map_jets(jets, self._map(), self.veto_map.get("map", "jetvetomap"))
        selected = veto_map_selected(jets, events.Muon)
        return ~lib(passed).any(vetoed & selected, axis=1)

    def _hem(self, events: Any) -> Any:
        if self.hem is None:
            return events.luminosityBlock >= 0  # every event: an era without the HEM veto
        return hem_veto(events, self.is_data, self.hem)

    def add_weights(self, output: AnalysisOutput, events: Any, variations: bool) -> None:
        if variations:
            for name, entries in self.pdf:
                key = f"systematics.{name}"
                lhe = _branch(events, "LHEPdfWeight", self.dataset, key, self.where,
                              f"{key}.datasets")  # fmt: skip
                what = f"dataset {self.dataset!r}{self.where}, {key}"
                members = f"{name}{MEMBER}members"  # a factor 1: the members replace it
                output.weights.add(members, lib(lhe).ones_like(events.luminosityBlock, dtype=float))
                for index, member in enumerate(pdf_members(lhe, entries, what)):
                    output.weights.add_variation(f"{name}{MEMBER}{index}", members, member, member)
        if self.prefiring:
            absent = [b for b in PREFIRING_BRANCHES if not has_branch(events, b)]
            if absent:
                raise self.missing(absent[0], "l1_prefiring")
            prefiring = prefiring_weights(events)
            _add_weight(output, L1_PREFIRING, "l1_prefiring", prefiring, variations)
        if self.theory is not None:
            _theory(output, events, self.theory, self.dataset, self.process, self.where,
                    variations)  # fmt: skip
        for name, spec in self.lepton_sf.items():
            factor = self._lepton_sf(output, events, spec, name)
            _add_weight(output, name, f"lepton_sf.{name}", factor, variations)

    def _lepton_sf(self, output: AnalysisOutput, events: Any, spec: Mapping[str, Any],
                   name: str) -> dict[str, Any]:  # fmt: skip
        """The event weights of one ``lepton_sf`` entry on the analysis's selected leptons."""
        collection = spec["collection"]
        if collection not in output.objects:
            raise ConfigError(
                f"config key 'lepton_sf.{name}': the analysis names no selected {collection} "
                f"(AnalysisOutput.objects[{collection!r}]; it names: "
                f"{', '.join(output.objects) or 'none'})"
            )
        leptons, correction = output.objects[collection], load(spec["file"], spec["name"])
        kind, year = spec.get("kind", "id"), spec.get("year")
        try:
            if kind == "trigger":
                return trigger_sf_weights(correction, leptons, events.TrigObj, year,
                                          bits=spec.get("bits", (1, 3)))  # fmt: skip
            if collection == "Muon":
                return muon_sf_weights(correction, leptons, year)
            if kind == "reco":
                return electron_reco_sf_weights(correction, leptons, year)
            return electron_sf_weights(correction, leptons, year, spec.get("working_point", ""))
        except CorrectionError as err:
            raise ConfigError(f"config key 'lepton_sf.{name}': {err}") from None


def _blocks(config: Mapping[str, Any], dataset: str, where: str) -> _Blocks:
    theory = config.get("theory") if theory_applies(config, dataset) else None
    top_pt = (theory or {}).get("top_pt")  # names its datasets: the spec holds the process
    spec = config["datasets"][dataset]
    era = era_settings(config, era_of(config, dataset))
    listed = {cut for region in config["regions"].values() for cut in region["cuts"]}
    jets = era.get("jets") or {}
    hem = era.get("hem_veto") or None  # false: off
    recommendation = met_filters_of(config, dataset)  # a campaign's name, a list, or None
    return _Blocks(
        dataset=dataset,
        is_data=spec["is_data"],
        where=f" (file {where!r})" if where else "",
        flags=_flags(config, dataset),
        ecal_patch=spec["is_data"]
        and isinstance(recommendation, str)
        and RECOMMENDATIONS[recommendation].ecal_patch,
        theory=theory,
        process=spec.get("process", dataset) if top_pt else dataset,
        veto_map=jets.get("veto_map"),
        # the cuts exist where regions list them (config checks: then an era has the block;
        # a job sees only its own era)
        jet_veto_cut=JET_VETO in listed,
        hem=None if hem is None else HemRegion(**(hem if isinstance(hem, Mapping) else {})),
        hem_cut=HEM_VETO in listed,
        prefiring=bool(era.get("l1_prefiring")) and not spec["is_data"],
        lepton_sf={} if spec["is_data"] else dict(era.get("lepton_sf") or {}),
        pdf=_pdf_members(config, dataset),
    )


def _pdf_members(config: Mapping[str, Any], dataset: str) -> tuple[tuple[str, int], ...]:
    """(systematic, LHEPdfWeight entries) of the dataset's ``pdf`` systematics; none in a job
    whose view holds no systematics (skims: nominal objects only)."""
    if not config.get("systematics"):
        return ()
    return tuple(
        (name, PDF_SETS[config["systematics"][name]["set"]].entries)
        for name in applicable_systematics(config, dataset)
        if config["systematics"][name]["type"] == "pdf"
    )


def with_blocks(
    config: Mapping[str, Any], dataset: str, analysis: Analysis, where: str = ""
) -> Analysis:
    """``analysis`` with the blocks the config turns on for ``dataset`` applied to its events
    and output (``where``: the file the events come from, in errors)."""
    blocks = _blocks(config, dataset, where)
    if not blocks:
        return analysis

    def run(events: Any, context: Context) -> AnalysisOutput:
        events = blocks.prepared(events)
        output = analysis(events, context)
        if not isinstance(output, AnalysisOutput):
            return output  # the caller names what it returned
        blocks.add_cuts(output, events)
        blocks.add_weights(output, events, context.wants_weight_variations)
        return output

    return run
