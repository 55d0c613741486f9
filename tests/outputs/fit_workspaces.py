"""Small pyhf workspaces the fit's tests share (tests/outputs/test_fit*.py): a two-channel
model with observations (SPEC), the review's failing cases of issue 27 (NEGATIVE, DEMO_2018)
and a model with a sensible signal-to-background ratio observing its own Asimov dataset
(sensible_spec)."""

from __future__ import annotations

import copy

import numpy as np

__all__ = ["DEMO_2018", "NEGATIVE", "SPEC", "one_bin", "sensible_spec"]

SPEC = {
    "channels": [
        {"name": "sr", "samples": [
            {"name": "sig", "data": [5.0, 10.0, 4.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "staterror_sr", "type": "staterror", "data": [0.5, 0.8, 0.4]}]},
            {"name": "bkg", "data": [50.0, 40.0, 30.0], "modifiers": [
                {"name": "jes", "type": "histosys",
                 "data": {"hi_data": [52.0, 41.0, 29.0], "lo_data": [48.0, 39.0, 31.0]}},
                {"name": "lumi", "type": "normsys", "data": {"hi": 1.025, "lo": 0.975}},
                {"name": "staterror_sr", "type": "staterror", "data": [2.0, 2.0, 1.5]}]}]},
        {"name": "cr", "samples": [
            {"name": "sig", "data": [1.0, 2.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "bkg", "data": [100.0, 80.0], "modifiers": [
                {"name": "jes", "type": "histosys",
                 "data": {"hi_data": [104.0, 82.0], "lo_data": [96.0, 78.0]}}]}]},
    ],
    "observations": [{"name": "sr", "data": [60.0, 52.0, 33.0]},
                     {"name": "cr", "data": [99.0, 85.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}  # fmt: skip


# Issue 27, case 1: the demo's channels generated with 4,000 events per dataset (one era, the
# "jes" systematic): a negative-weight Drell-Yan bin that "jes" drives further negative. The
# impacts' refits failed (the likelihood of a negative yield is not defined).
NEGATIVE = {
    "channels": [
        {"name": "zmumu", "samples": [
            {"name": "top", "data": [3.06, 7.28, 4.45], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "staterror_zmumu", "type": "staterror", "data": [0.65, 1.0, 0.84]},
                {"name": "jes", "type": "histosys",
                 "data": {"hi_data": [2.87, 7.04, 5.05], "lo_data": [3.38, 7.25, 4.01]}}]},
            {"name": "dy", "data": [5127.36, 171.28, -2.716], "modifiers": [
                {"name": "staterror_zmumu", "type": "staterror", "data": [280.4, 66.56, 29.0]},
                {"name": "jes", "type": "histosys", "data": {
                    "hi_data": [5140.4, 180.0, -10.72], "lo_data": [5108.2, 191.2, -15.97]}}]},
            {"name": "diboson", "data": [1.98, 0.133, 0.0498], "modifiers": [
                {"name": "staterror_zmumu", "type": "staterror", "data": [0.2, 0.053, 0.037]},
                {"name": "jes", "type": "histosys",
                 "data": {"hi_data": [1.97, 0.149, 0.0508], "lo_data": [1.97, 0.131, 0.0488]}}]}]},
        {"name": "emu", "samples": [
            {"name": "top", "data": [0.0, 52.84, 30.99], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "staterror_emu", "type": "staterror", "data": [0.0, 2.92, 2.19]},
                {"name": "jes", "type": "histosys",
                 "data": {"hi_data": [0.0, 52.78, 33.28], "lo_data": [0.0, 52.82, 28.75]}}]},
            {"name": "diboson", "data": [0.0, 0.112, 0.049], "modifiers": [
                {"name": "staterror_emu", "type": "staterror", "data": [0.0, 0.040, 0.029]},
                {"name": "jes", "type": "histosys",
                 "data": {"hi_data": [0.0, 0.113, 0.0505], "lo_data": [0.0, 0.0868, 0.0484]}}]}]},
    ],
    "observations": [{"name": "zmumu", "data": [5068.0, 194.0, 24.0]},
                     {"name": "emu", "data": [0.0, 71.0, 36.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}  # fmt: skip

# Issue 27, case 2: the demo model (2018 era: three systematics) with a sensible S/B: the ttbar
# signal x0.1, the small diboson background x100 (_sensible), fitted on its Asimov dataset of
# mu = 1.5. MIGRAD's first settings miss the minimum of some impacts' refits.
DEMO_2018 = {
    "channels": [
        {"name": "zmumu", "samples": [
            {"name": "top", "data": [4.966, 13.353, 8.031], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "pileup", "type": "histosys",
                 "data": {"hi_data": [4.868, 13.366, 8.072], "lo_data": [5.049, 13.337, 8.002]}},
                {"name": "ps_fsr", "type": "histosys",
                 "data": {"hi_data": [4.717, 12.600, 7.612], "lo_data": [5.214, 14.106, 8.451]}}]},
            {"name": "dy", "data": [8453.14, 299.26, 7.634], "modifiers": [
                {"name": "ps_isr", "type": "histosys", "data": {
                    "hi_data": [8329.77, 321.64, 8.672], "lo_data": [8576.51, 276.88, 6.595]}}]},
            {"name": "diboson", "data": [3.1206, 0.28390, 0.05397], "modifiers": []}]},
        {"name": "emu", "samples": [
            {"name": "top", "data": [0.0, 93.123, 52.585], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "ps_isr", "type": "histosys",
                 "data": {"hi_data": [0.0, 92.752, 55.813], "lo_data": [0.0, 93.495, 49.356]}}]},
            {"name": "diboson", "data": [0.0, 0.26909, 0.048602], "modifiers": [
                {"name": "ps_isr", "type": "histosys", "data": {
                    "hi_data": [0.0, 0.29574, 0.055812], "lo_data": [0.0, 0.24244, 0.041392]}}]}]},
    ],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}  # fmt: skip


def sensible_spec(mu: float = 1.5) -> dict:
    """DEMO_2018 with the signal x0.1 and the diboson background x100, observing its Asimov
    dataset of signal strength ``mu`` (the sum of the nominal templates, summed here)."""
    spec = copy.deepcopy(DEMO_2018)
    spec["observations"] = []
    for channel in spec["channels"]:
        total = np.zeros(3)
        for sample in channel["samples"]:
            factor = {"top": 0.1, "diboson": 100.0}.get(sample["name"], 1.0)
            sample["data"] = [factor * x for x in sample["data"]]
            for modifier in sample["modifiers"]:
                if modifier["type"] == "histosys":
                    modifier["data"] = {k: [factor * x for x in v]
                                        for k, v in modifier["data"].items()}  # fmt: skip
            total += np.asarray(sample["data"]) * (mu if sample["name"] == "top" else 1.0)
        spec["observations"].append({"name": channel["name"], "data": total.tolist()})
    return spec


def one_bin(n: float, b: float, s: float) -> dict:
    """One bin observing ``n`` events, a background ``b`` and a signal ``s`` scaled by mu; no
    nuisance parameter (the likelihood is one Poisson term, its statistics analytic)."""
    return {
        "channels": [{"name": "c", "samples": [
            {"name": "sig", "data": [s], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "bkg", "data": [b], "modifiers": []}]}],
        "observations": [{"name": "c", "data": [n]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }  # fmt: skip
