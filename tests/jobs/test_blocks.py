"""The CMS blocks the runner applies (brewflow.jobs.blocks) through the analyze job, on the
real samples of config/examples/cms_multi_era.yaml (2018 pre-UL Drell-Yan and SingleMuon data,
2022 NanoAOD v12 ttbar): the MET filters' cutflow row and the theory weights' variations equal
an explicit loop over the branches read with uproot; conflicts and missing branches named."""

from __future__ import annotations

import copy
import math

import pytest
import uproot

from brewflow.analysis import AnalysisOutput, Context
from brewflow.config import ConfigError, load_config, met_filters_of, systematics_for
from brewflow.errors import InputError
from brewflow.jobs import preprocess
from brewflow.jobs.analyze import run
from brewflow.jobs.blocks import with_blocks
from brewflow.metfilters import RECOMMENDATIONS
from brewflow.nanoevents.reader import eager_events
from brewflow.selection import Selection
from brewflow.weights import Weights
from tests.helpers import ROOT


@pytest.fixture
def example(shared_data, monkeypatch) -> dict:
    monkeypatch.chdir(ROOT)  # its paths are relative to the repository (../shared/data)
    return load_config(ROOT / "config" / "examples" / "cms_multi_era.yaml")


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
