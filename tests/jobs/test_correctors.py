"""The object correctors of an era (brewflow.jobs.correctors) through the analyze job: the
multi-era example's 2022 ttbar with jets (JEC, JER, PuppiMET), electrons (EGM's 2022 scale and
smearing payload) and muons (MUO's scale and resolution): the lepton corrections change what the
analysis sees, and their variations stacked lazily with the jet ones fill the same bins as one
eager run per variation."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from brewflow.config import ConfigError, load_config, validate
from brewflow.jobs import preprocess
from brewflow.jobs.analyze import run
from tests.helpers import ROOT

PAYLOAD = "tests/data/payloads/EGM/2022_Summer22/electronSS.json.gz"
MUONS = "tests/data/payloads/MUO/2022_Summer22/muon_scalesmearing_schemaV2.json.gz"
DATASET = "TTto2L2Nu_2022"


@pytest.fixture
def config(shared_data, monkeypatch) -> dict:
    monkeypatch.chdir(ROOT)
    config = load_config(ROOT / "config" / "examples" / "cms_multi_era.yaml")
    config["eras"]["2022"]["electrons"] = {"scale_smearing": {"file": PAYLOAD}}
    config["eras"]["2022"]["muons"] = {"scale_resolution": {"file": MUONS}}
    config["systematics"] |= {
        "electron_scale": {"type": "electron_scale", "datasets": [DATASET]},
        "electron_smearing": {"type": "electron_smearing", "datasets": [DATASET]},
        "muon_resolution": {"type": "muon_resolution", "datasets": [DATASET]},
    }
    config["histograms"]["lead_lepton_pt"] = {"variable": "lead_lepton_pt", "bins": 400,
                                              "start": 0, "stop": 200}  # fmt: skip
    config["regions"]["leptons"] = {"cuts": ["met_filters"]}  # the leading lepton: often an
    # electron (the sample has no event with two selected leptons)
    config["stack_object_variations"] = 2
    return config


def test_electron_variations_stacked_equal_one_run_each(config):
    files = preprocess.preprocess(config, DATASET)["files"]
    wanted = ["nominal", "jesUp", "electron_scaleUp", "electron_scaleDown",
              "electron_smearingUp", "electron_smearingDown", "muon_resolutionUp"]  # fmt: skip
    stacked = run(config, DATASET, wanted, files, lazy=True, scheduler="sync")
    h = stacked.histograms["lead_lepton_pt"]
    for systematic in wanted:
        alone = run(config, DATASET, systematic, files, lazy=False).histograms["lead_lepton_pt"]
        cut = {"region": "leptons", "systematic": systematic}
        np.testing.assert_allclose(h[cut].values(), alone[cut].values(), rtol=1e-9)
    found = {s: h[{"region": "leptons", "systematic": s}].values() for s in wanted}
    assert found["nominal"].sum() > 0
    del config["eras"]["2022"]["electrons"]  # the leptons as NanoAOD has them: not smeared
    del config["eras"]["2022"]["muons"]
    config["systematics"] = {k: v for k, v in config["systematics"].items()
                             if not k.startswith(("electron_", "muon_"))}  # fmt: skip
    raw = run(config, DATASET, "nominal", files, lazy=False).histograms["lead_lepton_pt"]
    assert not np.array_equal(
        found["nominal"], raw[{"region": "leptons", "systematic": "nominal"}].values()
    )
    # (the scale's 0.1% and err_rho's 0.006% move no electron across a 0.5 GeV bin edge here;
    # they are tested electron by electron in tests/test_egamma.py)


def test_electron_variations_need_the_block(config):
    raw = copy.deepcopy(config)
    del raw["eras"]["2022"]["electrons"]
    with pytest.raises(ConfigError, match=r"varies electrons; configure 'eras\.2022\.electrons'"):
        validate(raw)
