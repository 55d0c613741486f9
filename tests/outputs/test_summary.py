"""The report's systematics page names each systematic's nuisances (one per era where
uncorrelated)."""

from __future__ import annotations

from brewflow.config import load_config
from brewflow.outputs.summary import systematics_frame
from tests.helpers import DEMO_CONFIG


def test_systematics_page_lists_the_nuisances_per_era():
    frame = systematics_frame(load_config(DEMO_CONFIG)).set_index("systematic")
    assert frame.loc["lumi", "nuisances"] == "lumi_2018, lumi_2017"
    assert frame.loc["jes", "nuisances"] == "jes"
    assert frame.loc["ps_fsr", "datasets"] == "ttbar, ttbar_2017"  # the process top
    assert frame.loc["ps_fsr", "nuisances"] == "ps_fsr"
