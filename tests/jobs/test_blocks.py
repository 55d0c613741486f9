"""The CMS blocks the runner applies (brewflow.jobs.blocks) through the analyze job, on the
real samples of config/examples/cms_multi_era.yaml (2018 pre-UL Drell-Yan and SingleMuon data,
2022 NanoAOD v12 ttbar): the MET filters' cutflow row and the theory weights' variations equal
an explicit loop over the branches read with uproot; conflicts and missing branches named."""

from __future__ import annotations

import copy
import math

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.analysis import AnalysisOutput, Context
from brewflow.config import ConfigError, load_config, met_filters_of, systematics_for
from brewflow.corrections import load
from brewflow.errors import InputError
from brewflow.jobs import preprocess
from brewflow.jobs.analyze import run
from brewflow.jobs.blocks import with_blocks
from brewflow.jobs.correctors import correctors
from brewflow.metfilters import RECOMMENDATIONS, met_filter_mask
from brewflow.nanoevents.reader import eager_events
from brewflow.selection import Selection
from brewflow.weights import Weights
from tests.helpers import ROOT


@pytest.fixture
def example(shared_data, monkeypatch) -> dict:
    """The example without its lepton_sf blocks (the trivial analyses here select no leptons;
    test_lepton_sf_blocks_weigh_the_selected_leptons gives them theirs)."""
    monkeypatch.chdir(ROOT)  # its paths are relative to the repository (../shared/data)
    config = load_config(ROOT / "config" / "examples" / "cms_multi_era.yaml")
    for era in config["eras"].values():
        era.pop("lepton_sf", None)
    return config


def _flags(config: dict, dataset: str) -> tuple[str, ...]:
    spec = met_filters_of(config, dataset)
    return RECOMMENDATIONS[spec].flags if isinstance(spec, str) else tuple(spec)


def _branches(path: str, names: list[str]) -> dict[str, list]:
    with uproot.open(path) as f:
        return {n: f["Events"][n].array(library="np").tolist() for n in names}


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("dataset", ["SingleMuon_2018", "DYJetsToLL_M50_2018", "TTto2L2Nu_2022"])
def test_met_filters_are_a_cutflow_row_of_every_region(example, dataset, lazy):
    files = preprocess.preprocess(example, dataset)["files"]
    result = run(example, dataset, "nominal", files, lazy=lazy,
                 **({"scheduler": "sync"} if lazy else {}))  # fmt: skip
    path = example["datasets"][dataset]["files"][0]
    flags = _flags(example, dataset)
    read = _branches(path, [f"Flag_{f}" for f in flags])
    passing = sum(
        all(read[f"Flag_{f}"][i] for f in flags) for i in range(len(read[f"Flag_{flags[0]}"]))
    )
    for region in example["regions"]:
        flow = result.cutflow(region)
        assert flow["cuts"][:2] == ["initial", "met_filters"]
        assert flow["events"][1] == passing, region  # [0]: every event, [1]: met_filters


def test_theory_weights_vary_the_yields_as_an_explicit_loop(example):
    """ttbar 2022: the initial cutflow row's sum of weights at nominal (reweighted in top pT)
    and under qcd_muR, qcd_muF, ps_isr and top_pt, each from genWeight times the weights
    taken event by event."""
    dataset = "TTto2L2Nu_2022"
    example = copy.deepcopy(example)  # the single scales as systematics of their own
    example["systematics"] |= {"qcd_muR": {"type": "weight"}, "qcd_muF": {"type": "weight"}}
    files = preprocess.preprocess(example, dataset)["files"]
    systematics = systematics_for(example, dataset)
    assert {"qcd_muRUp", "qcd_muFDown", "ps_isrDown"} <= set(systematics)
    result = run(example, dataset, systematics, files, lazy=False)
    path = example["datasets"][dataset]["files"][0]
    read = _branches(path, ["genWeight", "LHEScaleWeight", "PSWeight"])
    with uproot.open(path) as f:  # the top pT weight: the last-copy tops' data/NLO factors
        tops = f["Events"].arrays(["GenPart_pdgId", "GenPart_statusFlags", "GenPart_pt"])
    sf = [math.prod(math.exp(0.0615 - 0.0005 * pt) for i, s, pt in zip(*row, strict=True)
                    if abs(i) == 6 and (s >> 13) & 1)
          for row in zip(tops.GenPart_pdgId.tolist(), tops.GenPart_statusFlags.tolist(),
                         tops.GenPart_pt.tolist(), strict=True)]  # fmt: skip
    gen = [g * math.sqrt(w) for g, w in zip(read["genWeight"], sf, strict=True)]

    def varied(branch: str, index: int) -> float:
        return sum(g * w[index] for g, w in zip(gen, read[branch], strict=True))

    expected = {
        "nominal": sum(gen),
        "qcd_muRUp": varied("LHEScaleWeight", 7),
        "qcd_muRDown": varied("LHEScaleWeight", 1),
        "qcd_muFUp": varied("LHEScaleWeight", 5),
        "ps_isrDown": varied("PSWeight", 2),
        "top_ptUp": sum(g * math.sqrt(w) for g, w in zip(gen, sf, strict=True)),
        "top_ptDown": sum(g / math.sqrt(w) for g, w in zip(gen, sf, strict=True)),
    }
    for systematic, total in expected.items():
        found = result.cutflow("dilepton", systematic)["sumw"][0]
        assert found == pytest.approx(total, rel=1e-6), systematic
    assert expected["qcd_muRUp"] != pytest.approx(expected["nominal"], rel=1e-3)


def _trivial(events, context: Context) -> AnalysisOutput:
    weights = Weights()
    if not context.is_data:
        weights.add("genWeight", events.genWeight)
    selection = Selection()
    selection.add("all", events.run == events.run)
    return AnalysisOutput(selection, {"x": events.run}, weights)


def test_a_block_the_analysis_also_defines_and_a_missing_branch_are_named(example):
    path = example["datasets"]["DYJetsToLL_M50_2018"]["files"][0]
    events = eager_events(path)
    context = Context("DYJetsToLL_M50_2018", False)

    def with_ps(events, context):
        output = _trivial(events, context)
        output.weights.add("ps_isr", events.genWeight * 0 + 1)
        return output

    with pytest.raises(ConfigError, match="defines the weight 'ps_isr' itself"):
        with_blocks(example, "DYJetsToLL_M50_2018", with_ps)(events, context)
    ul = copy.deepcopy(example)
    ul["eras"]["2018"]["met_filters"] = "run2_ul_2018"  # UL's list on pre-UL NanoAOD
    with pytest.raises(
        InputError,
        match=r"dataset 'DYJetsToLL_M50_2018' \(file '.*nano_dy\.root'"
        r"\): no branch Flag_BadPFMuonDzFilter .* which the recommendation "
        r"'run2_ul_2018' \(met_filters\) requires",
    ):
        with_blocks(ul, "DYJetsToLL_M50_2018", _trivial, path)(events, context)
    data = eager_events(example["datasets"]["SingleMuon_2018"]["files"][0])
    output = with_blocks(example, "SingleMuon_2018", _trivial)(
        data, Context("SingleMuon_2018", True)
    )
    assert output.weights.names == []  # data never get theory weights
    assert "met_filters" in output.selection
    events_without = events[[f for f in events.fields if f != "LHEScaleWeight"]]
    with pytest.raises(InputError, match="needs the branch LHEScaleWeight"):
        with_blocks(example, "DYJetsToLL_M50_2018", _trivial)(events_without, context)

    def with_variation(events, context):  # a block's weight name as the analysis's variation
        output = _trivial(events, context)
        output.weights.add("mine", events.genWeight * 0 + 1)
        output.weights.add_variation("qcd_muR", "mine", events.genWeight, events.genWeight)
        return output

    with pytest.raises(ConfigError, match="defines the weight 'qcd_muR' itself"):
        with_blocks(example, "DYJetsToLL_M50_2018", with_variation)(events, context)


def _jet_rows(path: str) -> dict[str, list]:
    names = ["Jet_eta", "Jet_phi", "Jet_jetId", "Jet_neHEF", "Jet_neEmEF", "Jet_chEmEF",
             "Jet_muEF", "Muon_eta", "Muon_phi", "Muon_isPFcand", "Electron_pt",
             "Electron_eta", "Electron_phi"]  # fmt: skip
    with uproot.open(path) as f:
        return {n: f["Events"][n].array().tolist() for n in names}


def _pf_muon_near(rows: dict, i: int, eta: float, phi: float) -> bool:
    return any(
        pf and math.hypot(eta - m_eta, (phi - m_phi + math.pi) % (2 * math.pi) - math.pi) < 0.2
        for m_eta, m_phi, pf in zip(rows["Muon_eta"][i], rows["Muon_phi"][i],
                                    rows["Muon_isPFcand"][i], strict=True)
    )  # fmt: skip


@pytest.mark.parametrize("lazy", [False, True])
def test_the_jet_veto_row_vetoes_events_with_a_corrected_jet_in_the_map(example, lazy):
    """2022 ttbar: the cutflow row after met_filters counts the events with no selected jet
    in a vetoed cell, the selection on the corrected (JEC, JER) jets with the jet ID
    recomputed (loops: tests/jet_reference.py, the recipe, the map jet by jet)."""
    from tests import jet_reference
    from tests.test_jetquality import _loop_id

    dataset = "TTto2L2Nu_2022"
    files = preprocess.preprocess(example, dataset)["files"]
    result = run(example, dataset, "nominal", files, lazy=lazy,
                 **({"scheduler": "sync"} if lazy else {}))  # fmt: skip
    path = example["datasets"][dataset]["files"][0]
    jets = example["eras"]["2022"]["jets"]
    with uproot.open(path) as f:
        arrays = f["Events"].arrays(jet_reference.branches(jets, False), library="np")
    rows = _jet_rows(path)
    flags = _branches(path, [f"Flag_{f}" for f in _flags(example, dataset)])
    veto_map = load(jets["veto_map"]["file"], jets["veto_map"]["name"])
    passing = 0
    for i in range(len(arrays["run"])):
        pts = jet_reference.corrected(arrays, i, jets, is_data=False)["pt"]
        vetoed = False
        for j, pt in enumerate(pts):
            jet = {k: rows[f"Jet_{k}"][i][j] for k in ("eta", "phi", "jetId", "neHEF",
                                                       "neEmEF", "chEmEF", "muEF")}  # fmt: skip
            cell = veto_map.evaluate("jetvetomap", max(min(jet["eta"], 5.19), -5.19),
                                     max(min(jet["phi"], 3.1415), -3.1415)) > 0  # fmt: skip
            selected = (pt > 15 and _loop_id(jet) & 2 and jet["chEmEF"] + jet["neEmEF"] < 0.9
                        and not _pf_muon_near(rows, i, jet["eta"], jet["phi"]))  # fmt: skip
            vetoed |= bool(cell and selected)
        passing += all(v[i] for v in flags.values()) and not vetoed
    for region in example["regions"]:
        flow = result.cutflow(region)
        assert flow["cuts"][:4] == ["initial", "met_filters", "jet_veto", "hem_veto"]
        assert flow["events"][2] == passing < flow["events"][1], region
        assert flow["events"][3] == flow["events"][2]  # no HEM veto in 2022


@pytest.mark.parametrize("dataset", ["SingleMuon_2018", "DYJetsToLL_M50_2018"])
def test_the_hem_veto_row_of_2018(example, dataset):
    """No jet veto map in 2018: the row passes every event; the HEM veto: data of run 315267
    (before the failure) all pass; MC events with a HEM object (one in the sample) go in the
    affected share, by their draw."""
    from brewflow.draws import event_uniforms
    from tests import jet_reference

    files = preprocess.preprocess(example, dataset)["files"]
    result = run(example, dataset, "nominal", files, lazy=False)
    path = example["datasets"][dataset]["files"][0]
    events = eager_events(path)
    if example["datasets"][dataset]["is_data"]:
        vetoed = [False] * len(events)
    else:
        jets = example["eras"]["2018"]["jets"]
        with uproot.open(path) as f:
            arrays = f["Events"].arrays(jet_reference.branches(jets, False), library="np")
        rows = _jet_rows(path)
        draws = event_uniforms(events, salt=0x4E3).tolist()

        def inside(eta: float, phi: float) -> bool:
            return -3.2 < eta < -1.3 and -1.57 < phi < -0.87

        vetoed = []
        for i, draw in enumerate(draws):
            pts = jet_reference.corrected(arrays, i, jets, is_data=False)["pt"]
            jet = any(
                pt > 30 and jid & 2 and inside(eta, phi)
                for pt, eta, phi, jid in zip(
                    pts, rows["Jet_eta"][i], rows["Jet_phi"][i], rows["Jet_jetId"][i], strict=True
                )
            )
            electron = any(pt > 10 and inside(eta, phi) for pt, eta, phi in zip(
                rows["Electron_pt"][i], rows["Electron_eta"][i], rows["Electron_phi"][i],
                strict=True))  # fmt: skip
            vetoed.append(draw < 0.648 and (jet or electron))
        assert sum(vetoed) == 1  # the sample's one event with a HEM object, drawn affected
    flow = result.cutflow("dilepton")
    assert flow["events"][2] == flow["events"][1]  # jet_veto: no map in 2018
    assert flow["events"][3] == flow["events"][2] - sum(
        v for i, v in enumerate(vetoed) if _passes_filters(example, dataset, path, i)
    )


def _passes_filters(config: dict, dataset: str, path: str, i: int) -> bool:
    flags = _branches(path, [f"Flag_{f}" for f in _flags(config, dataset)])
    return all(v[i] for v in flags.values())


def test_a_veto_map_in_jet_mode_removes_the_jets_in_its_cells(example):
    """The 2018 UL map (tests/data/payloads) in jet mode: the analysis sees the corrected jets
    outside the map's cells, no cut is made; against the map evaluated jet by jet."""
    config = copy.deepcopy(example)
    config["eras"]["2018"]["jets"]["veto_map"] = {
        "file": "tests/data/payloads/JME/2018_UL/jetvetomaps.json.gz",
        "name": "Summer19UL18_V1", "map": "jetvetomap_hem1516", "mode": "jet",
    }  # fmt: skip
    dataset = "DYJetsToLL_M50_2018"
    path = config["datasets"][dataset]["files"][0]
    seen = {}

    def count_jets(events, context):
        seen["jets"] = [len(jets) for jets in events.Jet.pt.tolist()]
        return _trivial(events, context)

    events = correctors(config, dataset).apply(eager_events(path))
    output = with_blocks(config, dataset, count_jets)(events, Context(dataset, False))
    veto_map = load(config["eras"]["2018"]["jets"]["veto_map"]["file"], "Summer19UL18_V1")
    rows = _jet_rows(path)
    expected = [
        sum(veto_map.evaluate("jetvetomap_hem1516", eta, phi) == 0
            for eta, phi in zip(rows["Jet_eta"][i], rows["Jet_phi"][i], strict=True))
        for i in range(len(rows["Jet_eta"]))
    ]  # fmt: skip
    assert seen["jets"] == expected
    assert sum(expected) < sum(len(r) for r in rows["Jet_eta"])  # some jets were in the map
    assert "jet_veto" in output.selection  # the 2022 map still vetoes events: the cut exists
    assert ak.all(output.selection.all("jet_veto"))  # and passes every 2018 event


def test_the_l1_prefiring_weight_and_its_missing_branch(example):
    config = copy.deepcopy(example)
    config["eras"]["2018"]["l1_prefiring"] = True
    dataset = "DYJetsToLL_M50_2018"
    path = config["datasets"][dataset]["files"][0]
    events = eager_events(path)
    with pytest.raises(InputError, match=r"l1_prefiring needs the branch L1PreFiringWeight_Nom, "
                       "which the file lacks"):  # fmt: skip
        with_blocks(config, dataset, _trivial, path)(events, Context(dataset, False))
    # a file of UL NanoAOD's layout: the three branches added to the real events
    values = {"Nom": 1 - events.event % 7 / 100, "Up": 1 - events.event % 7 / 200,
              "Dn": 1 - events.event % 7 / 50}  # fmt: skip
    written = ak.with_field(events, ak.zip(values), "L1PreFiringWeight")
    output = with_blocks(config, dataset, _trivial, path)(written, Context(dataset, False))
    assert "l1_prefiring" in output.weights.names
    gen = events.genWeight.tolist()
    for modifier, branch in ((None, "Nom"), ("l1_prefiringUp", "Up"), ("l1_prefiringDown", "Dn")):
        expected = [g * w for g, w in zip(gen, values[branch].tolist(), strict=True)]
        assert output.weights.weight(modifier).tolist() == pytest.approx(expected, rel=1e-12)
    data = "SingleMuon_2018"
    output = with_blocks(config, data, _trivial)(eager_events(
        config["datasets"][data]["files"][0]), Context(data, True))  # fmt: skip
    assert output.weights.names == []  # data: no prefiring weight


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["eras"]["2022"]["jets"].pop("veto_map"),
         "the cut 'jet_veto' needs jets.veto_map"),
        (lambda c: c["eras"]["2018"].pop("hem_veto"), "the cut 'hem_veto' needs hem_veto"),
        (lambda c: [r["cuts"].remove("hem_veto") for r in c["regions"].values()],
         "config key 'hem_veto': it makes the cut 'hem_veto', which no region lists"),
        (lambda c: [r["cuts"].remove("jet_veto") for r in c["regions"].values()],
         "config key 'jets.veto_map': it makes the cut 'jet_veto', which no region lists"),
    ],
)  # fmt: skip
def test_a_veto_cut_and_its_block_come_together(example, edit, message):
    from brewflow.config.blocks import check_blocks

    config = copy.deepcopy(example)
    edit(config)
    with pytest.raises(ConfigError, match=message):
        check_blocks(config)


@pytest.mark.parametrize("dataset", ["SingleMuon_2018", "DYJetsToLL_M50_2018", "TTto2L2Nu_2022"])
def test_every_era_has_the_veto_cuts_in_the_jobs_own_view(example, dataset):
    """Regression: an analyze job sees only its own era; the 2018 jobs lacked the cut jet_veto
    (a 2022 block) and the run stopped at its check ("the analysis defines no cut")."""
    from brewflow.config.specs import job_spec

    view = job_spec("analyze", example, code=False, dataset=dataset).config()
    files = preprocess.preprocess(example, dataset)["files"]
    flow = run(view, dataset, "nominal", files, lazy=False).cutflow("dilepton")
    assert flow["cuts"][:4] == ["initial", "met_filters", "jet_veto", "hem_veto"]


def test_2022_data_get_the_ecal_bad_calib_patch_in_the_met_filters(example):
    """A 2022 data dataset (the Run 3 events as data of run 363000, inside the runs whose flag
    is wrong): the cut met_filters is the flags and JetMET's veto; MC gets the flags alone."""
    from brewflow.metfilters import ecal_bad_calib_pass
    from tests.test_metfilters import _ecal_loop

    config = copy.deepcopy(example)
    path = config["datasets"]["TTto2L2Nu_2022"]["files"][0]
    config["datasets"]["Muon_2022"] = {"files": [path], "era": "2022", "is_data": True}
    events = eager_events(path)
    as_data = ak.with_field(events, ak.full_like(events.run, 363000), "run")
    # one event written with a jet the veto catches (the sample has none)
    jets = events.Jet
    hit = ak.local_index(jets.pt) == 0
    given = ak.with_field(as_data, ak.zip({**{f: jets[f] for f in jets.fields},
        "pt": ak.where(hit, 80.0, jets.pt), "eta": ak.where(hit, -0.3, jets.eta),
        "phi": ak.where(hit, -1.95, jets.phi), "neEmEF": ak.where(hit, 0.95, jets.neEmEF)},
        with_name="Jet"), "Jet")  # fmt: skip
    met = ak.zip({"pt": ak.full_like(events.PuppiMET.pt, 150.0), "phi": ak.full_like(
        events.PuppiMET.phi, 1.2)})  # fmt: skip
    given = ak.with_field(given, met, "PuppiMET")
    output = with_blocks(config, "Muon_2022", _trivial)(given, Context("Muon_2022", True))
    flags = met_filter_mask(given, RECOMMENDATIONS["run3_2022"].flags)
    rows = [[{f: j[f] for f in ("pt", "eta", "phi", "neEmEF", "chEmEF")} for j in e]
            for e in ak.to_list(given.Jet)]  # fmt: skip
    patch = _ecal_loop([363000] * len(rows), rows, [(150.0, 1.2)] * len(rows))
    expected = [f and p for f, p in zip(ak.to_list(flags), patch, strict=True)]
    assert ak.to_list(output.selection.all("met_filters")) == expected
    assert not all(patch)  # the written jet is caught
    # the veto reads NanoAOD's jets (the recipe's), not the corrected ones the analysis sees
    from brewflow.corrected import CorrectedEvents

    moved = CorrectedEvents(given, {"Jet": ak.with_field(given.Jet, given.Jet.pt * 0.1, "pt")})
    output = with_blocks(config, "Muon_2022", _trivial)(moved, Context("Muon_2022", True))
    assert ak.to_list(output.selection.all("met_filters")) == expected
    mc = with_blocks(config, "TTto2L2Nu_2022", _trivial)(given, Context("TTto2L2Nu_2022", False))
    assert ak.to_list(mc.selection.all("met_filters")) == ak.to_list(flags)
    assert ak.to_list(ecal_bad_calib_pass(events)) == [True] * len(events)  # MC runs: 1


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["systematics"]["qcd_scale"].update(of=["qcd_muR", "qcd_muR"]),
         "has non-unique elements"),
        (lambda c: c["eras"]["2018"].update(hem_veto={"mc_fracton": 0.5}),
         "'mc_fracton' was unexpected"),
        (lambda c: c["eras"]["2018"].update(hem_veto={"mc_fraction": 2}),
         "2 is greater than the maximum of 1"),
        (lambda c: c["eras"]["2022"]["jets"]["veto_map"].update(mode="jet"),
         "the veto maps here are in jet mode, which removes jets and makes no cut"),
    ],
)  # fmt: skip
def test_block_settings_a_careless_user_writes_are_named(example, edit, message):
    """Regressions (review): a repeated envelope member gave qcd_scaleDown = 0; bad HEM
    settings said only "not valid under any of the given schemas"; jet mode with the cut
    listed said no era had a map."""
    from brewflow.config import validate

    config = copy.deepcopy(example)
    edit(config)
    with pytest.raises(ConfigError, match=message):
        validate(config)


def test_blocks_switched_off_with_false(example):
    """hem_veto: false and l1_prefiring: false are valid and add nothing (an era's false
    overrides a top-level true); hem_veto: false was an internal TypeError."""
    from brewflow.config import validate

    config = copy.deepcopy(example)
    config["hem_veto"] = True
    config["eras"]["2018"]["hem_veto"] = False
    config["eras"]["2022"]["hem_veto"] = False
    config["eras"]["2018"]["l1_prefiring"] = False
    for region in config["regions"].values():
        region["cuts"].remove("hem_veto")
    validate(config)
    dataset = "DYJetsToLL_M50_2018"
    output = with_blocks(config, dataset, _trivial)(
        eager_events(config["datasets"][dataset]["files"][0]), Context(dataset, False)
    )
    assert "hem_veto" not in output.selection
    assert "l1_prefiring" not in output.weights.names


def test_payload_names_and_pdf_sets_fail_before_any_job(example, tmp_path):
    """Regressions (review): a veto map's type and a PDF set that is not the file's got past
    the checks before a run and failed in every analyze job ("unexpected" for the map)."""
    from brewflow.jobs.validation import check_analysis, check_payloads

    config = copy.deepcopy(example)
    config["eras"]["2022"]["jets"]["veto_map"]["map"] = "jetvetomapXX"
    with pytest.raises(ConfigError, match=r"eras\.2022\.jets.*type = 'jetvetomapXX' is not in "
                       r"the payload .*accepted: .*jetvetomap_hot"):  # fmt: skip
        check_payloads(config)
    config = copy.deepcopy(example)
    config["systematics"]["pdf_2018"]["set"] = 325300
    with pytest.raises(ConfigError, match=r"systematics\.pdf_2018\.set': 325300 .* stores LHA "
                       r"IDs 91400 - 91432"):  # fmt: skip
        check_analysis(config, record=None)


def _selected(events, context: Context) -> AnalysisOutput:
    """A trivial analysis naming its selected leptons (what lepton_sf weighs)."""
    output = _trivial(events, context)
    mu, el = events.Muon, events.Electron
    output.objects["Muon"] = mu[(mu.pt > 26) & (abs(mu.eta) < 2.4) & mu.tightId]
    output.objects["Electron"] = el[(el.pt > 10) & (abs(el.eta) < 2.5)]
    return output


def test_lepton_sf_blocks_weigh_the_selected_leptons(example):
    """The 2022 Run 3 muon ID (no year), electron ID and pT-split reco SFs (real payloads,
    tests/data/payloads) on the ttbar sample's selected leptons, and the 2018 IsoMu24 SF on the
    Drell-Yan muon that fired it: each weight against correctionlib lepton by lepton."""
    import correctionlib

    payloads = ROOT / "tests" / "data" / "payloads"
    config = copy.deepcopy(example)
    electron = str(payloads / "EGM" / "2022_Summer22" / "electron.json.gz")
    muon = str(payloads / "MUO" / "2022_Summer22" / "muon_Z.json.gz")
    config["eras"]["2022"]["lepton_sf"] = {
        "mu_id": {"file": muon, "name": "NUM_TightID_DEN_TrackerMuons", "collection": "Muon"},
        "el_id": {"file": electron, "name": "Electron-ID-SF", "collection": "Electron",
                  "year": "2022Re-recoBCD", "working_point": "Tight"},
        "el_reco": {"file": electron, "name": "Electron-ID-SF", "collection": "Electron",
                    "year": "2022Re-recoBCD", "kind": "reco"},
    }  # fmt: skip
    trigger = "../shared/data/corrections/2018_UL/muon_Z.json.gz"
    config["eras"]["2018"]["lepton_sf"] = {"mu_trigger": {
        "file": trigger, "name": "NUM_IsoMu24_DEN_CutBasedIdTight_and_PFIsoTight",
        "collection": "Muon", "kind": "trigger", "year": "2018_UL"}}  # fmt: skip
    dataset = "TTto2L2Nu_2022"
    events = eager_events(config["datasets"][dataset]["files"][0])
    output = with_blocks(config, dataset, _selected)(events, Context(dataset, False))
    selected = _selected(events, Context(dataset, False)).objects
    mu_c = correctionlib.CorrectionSet.from_file(muon)["NUM_TightID_DEN_TrackerMuons"]
    el_c = correctionlib.CorrectionSet.from_file(electron)["Electron-ID-SF"]

    def point(e) -> str:
        return "RecoBelow20" if e["pt"] < 20 else "Reco20to75" if e["pt"] < 75 else "RecoAbove75"

    def sc(e) -> float:
        return e["eta"] + e["deltaEtaSC"]

    factors = {  # weight: (nominal, up, down) per lepton, the collection
        "mu_id": ([lambda m, v=v: mu_c.evaluate(m["eta"], m["pt"], v)
                   for v in ("nominal", "systup", "systdown")], "Muon"),
        "el_id": ([lambda e, v=v: el_c.evaluate("2022Re-recoBCD", v, "Tight", sc(e), e["pt"])
                   for v in ("sf", "sfup", "sfdown")], "Electron"),
        "el_reco": ([lambda e, v=v: el_c.evaluate("2022Re-recoBCD", v, point(e), sc(e), e["pt"])
                     for v in ("sf", "sfup", "sfdown")], "Electron"),
    }  # fmt: skip
    nominal = np.asarray(output.weights.weight().tolist())
    for name, (per_lepton, collection) in factors.items():
        leptons = ak.to_list(selected[collection])
        for index, direction in ((1, "Up"), (2, "Down")):
            ratio = [
                math.prod(per_lepton[index](x) / per_lepton[0](x) for x in event)
                for event in leptons
            ]  # the variation replaces this weight only
            found = np.asarray(output.weights.weight(name + direction).tolist()) / nominal
            np.testing.assert_allclose(found, ratio, rtol=1e-9)
        assert output.weights.partial_weight(include=[name]).tolist() == pytest.approx(
            [math.prod(per_lepton[0](x) for x in event) for event in leptons], rel=1e-12
        )
    assert sum(len(e) for e in ak.to_list(selected["Electron"])) > 50
    dy = "DYJetsToLL_M50_2018"
    dy_events = eager_events(config["datasets"][dy]["files"][0])
    found = with_blocks(config, dy, _selected)(dy_events, Context(dy, False))
    assert "mu_trigger" in found.weights.names  # values: tests/test_leptonsf.py, same function
    with pytest.raises(ConfigError, match=r"lepton_sf\.mu_id': the analysis names no selected "
                       r"Muon \(AnalysisOutput\.objects"):  # fmt: skip
        with_blocks(config, dataset, _trivial)(events, Context(dataset, False))


def test_every_block_payload_is_an_input_of_the_jobs_that_read_it(example):
    """Regression (review): the Rochester, muon, electron, veto-map and MET-xy payloads were no
    inputs of the analyze rules: editing one reran nothing."""
    from brewflow.config import payload_files

    full = load_config(ROOT / "config" / "examples" / "cms_multi_era.yaml")
    eras = full["eras"]
    assert {eras["2018"]["muons"]["rochester"]["file"], eras["2018"]["jets"]["met_xy"]["file"],
            eras["2018"]["lepton_sf"]["muon_trigger"]["file"]} <= set(
        payload_files(full, "DYJetsToLL_M50_2018"))  # fmt: skip
    assert {eras["2022"]["jets"]["veto_map"]["file"],
            eras["2022"]["electrons"]["scale_smearing"]["file"],
            eras["2022"]["muons"]["scale_resolution"]["file"],
            eras["2022"]["lepton_sf"]["muon_id"]["file"]} <= set(
        payload_files(full, "TTto2L2Nu_2022"))  # fmt: skip


def test_muon_payload_mistakes_fail_before_any_job(example):
    """Regressions (review): muon_scale on a payload without rho_stat failed in every job as
    "unexpected"; scale_resolution and rochester together gave raw schema text."""
    from brewflow.config import validate
    from brewflow.jobs.validation import check_payloads

    config = copy.deepcopy(example)
    config["systematics"]["muon_scale"]["datasets"] = ["TTto2L2Nu_2022"]
    with pytest.raises(ConfigError, match=r"systematics\.muon_scale': the muon_scale variation "
                       r"needs m_mc's 'rho_stat'"):  # fmt: skip
        check_payloads(config)
    config = copy.deepcopy(example)
    config["eras"]["2018"]["muons"]["scale_resolution"] = {"file": "x.json"}
    with pytest.raises(ConfigError, match=r"eras\.2018\.muons': give scale_resolution \(Run 3\) "
                       r"or rochester \(Run 2\), not both"):  # fmt: skip
        validate(config)


def test_a_skim_job_runs_the_blocks_in_its_own_view(example):
    """Regression: a skim job's view holds no systematics (nominal objects only); the blocks
    asked it for the pdf ones and every skim of the two-era workflow failed (KeyError)."""
    from brewflow.config import validate
    from brewflow.config.specs import job_spec

    config = copy.deepcopy(example)
    config["skims"] = {"muons": {"region": "zmumu"}}
    config = validate(config)
    dataset = "DYJetsToLL_M50_2018"
    view = job_spec("skim", config, code=False, skim="muons", dataset=dataset).config()
    events = eager_events(config["datasets"][dataset]["files"][0])
    output = with_blocks(view, dataset, _trivial)(events, Context(dataset, False))
    assert "met_filters" in output.selection
