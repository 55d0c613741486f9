from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from brewflow.outputs.plots import data_mc, lumi_text
from tests.helpers import make_result


def test_lumi_text():
    assert lumi_text(10.0) == "10 pb$^{-1}$"
    assert lumi_text(59830.0) == "59.8 fb$^{-1}$"


@pytest.mark.parametrize("log_y", [False, True])
def test_data_mc_writes_valid_png_and_pdf(tmp_path, log_y):
    data = make_result(
        "d", "nominal", [0.5, 1.5, 1.5, 2.5], [1, 1, 1, 1], process="data", is_data=True
    )
    mc1 = make_result("a", "nominal", [0.5, 1.5, 2.5], [1.0, 1.5, 0.5], process="a")
    mc2 = make_result("b", "nominal", [1.5], [0.7], process="b")
    outputs = [tmp_path / "x.png", tmp_path / "x.pdf"]
    data_mc(
        [data, mc1, mc2],
        "x",
        "r",
        outputs,
        styles={"a": {"label": "A", "color": "red"}},
        luminosity=10.0,
        log_y=log_y,
    )
    image = matplotlib.image.imread(outputs[0])
    assert image.shape[0] > 500
    assert image.shape[1] > 500
    assert image.std() > 0.01  # not blank
    assert outputs[1].read_bytes().startswith(b"%PDF")
    assert not list(tmp_path.glob(".*tmp*"))  # no leftovers of the atomic write


def test_plots_are_byte_reproducible(tmp_path):
    mc = make_result("a", "nominal", [0.5, 1.5], [1.0, 1.0], process="a")
    for name in ("one", "two"):
        data_mc(
            [mc],
            "x",
            "r",
            [tmp_path / f"{name}.pdf", tmp_path / f"{name}.png"],
            styles={},
            luminosity=1.0,
        )
    assert (tmp_path / "one.pdf").read_bytes() == (tmp_path / "two.pdf").read_bytes()
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "two.png").read_bytes()


def test_uncertainty_band_adds_envelopes_in_quadrature_with_stat():
    from brewflow.outputs.distribution import uncertainty_band
    from brewflow.results.arithmetic import merge_systematics

    # process a: nominal x=0.5 (w 2), aUp w 3 (shift +1), aDown w 2.5 (shift +0.5: same side)
    a = merge_systematics([
        make_result("a", "nominal", [0.5], [2.0], process="a"),
        make_result("a", "sUp", [0.5], [3.0], process="a"),
        make_result("a", "sDown", [0.5], [2.5], process="a"),
    ])  # fmt: skip
    # process b has no variation s: its nominal is used for sUp/sDown; t moves b in bin 2
    b = merge_systematics([
        make_result("b", "nominal", [1.5], [4.0], process="b"),
        make_result("b", "tUp", [1.5], [5.0], process="b"),
        make_result("b", "tDown", [1.5], [2.0], process="b"),
    ])  # fmt: skip
    data = make_result("d", "nominal", [0.5], [1.0], process="data", is_data=True)
    total, down, up = uncertainty_band([a, b, data], "x", "r")
    np.testing.assert_allclose(total, [2.0, 4.0, 0.0])
    stat2 = np.array([4.0, 16.0, 0.0])
    np.testing.assert_allclose(up, np.sqrt(stat2 + np.array([1.0, 1.0, 0.0]) ** 2))  # s: +1; t: +1
    np.testing.assert_allclose(down, np.sqrt(stat2 + np.array([0.0, 2.0, 0.0]) ** 2))  # t: -2


def test_lumi_label_sums_eras_per_energy():
    from brewflow.outputs.plots import lumi_label

    eras = {
        "2016": {"luminosity": 36310.0, "energy": 13},
        "2017": {"luminosity": 41480.0, "energy": 13},
        "2018": {"luminosity": 59830.0, "energy": 13},
        "2022": {"luminosity": 34700.0, "energy": 13.6},
    }
    config = {"eras": eras}
    assert lumi_label(config, "2017") == "41.5 fb$^{-1}$ (13 TeV)"
    assert lumi_label({"eras": {k: eras[k] for k in ("2016", "2017", "2018")}}) == (
        "138 fb$^{-1}$ (13 TeV)"
    )
    assert lumi_label(config) == "138 fb$^{-1}$ (13 TeV) + 34.7 fb$^{-1}$ (13.6 TeV)"
    assert lumi_label({"luminosity": 10.0, "energy": 13}) == "10 pb$^{-1}$ (13 TeV)"
