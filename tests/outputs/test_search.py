"""A search: one workspace per signal hypothesis (the others left out, the blinded bins the
background-only Asimov), limits equal to pyhf's own, the cross-section limits and the Brazil
plot."""

from __future__ import annotations

import json

import numpy as np
import pyhf
import pytest

from brewflow.outputs import search
from brewflow.outputs.fit_inputs import fit_channels_of
from tests.helpers import make_result

BACKGROUND = np.array([20.0, 20.0, 20.0])  # per bin of x in [0, 3)
PEAKS = {"s1": 0, "s2": 1, "s3": 2}  # each hypothesis: 8 events in one bin
DATA = [22, 18, 25]


def _weighted(process: str, per_bin: np.ndarray, entries: int = 400, *, is_data=False):
    """A result of ``process`` with ``per_bin`` weighted events in x's bins, ``entries`` MC
    entries each (small weights: a few per cent MC statistics)."""
    x = np.repeat([0.5, 1.5, 2.5], entries)
    w = np.repeat(np.asarray(per_bin, float) / entries, entries)
    return make_result(process, "nominal", x, w, process=process, is_data=is_data)


def _config(blind: list[float] | None = None) -> dict:
    histogram = {"variable": "x", "edges": [0.0, 1.0, 2.0, 3.0], "label": "m [GeV]"}
    if blind:
        histogram["blind"] = blind
    datasets = {"b": {"process": "b", "is_data": False, "xsec": 10.0, "label": "B"},
                "d": {"process": "data", "is_data": True}}  # fmt: skip
    for n, (process, xsec) in enumerate({"s1": 2.0, "s2": 1.0, "s3": 0.5}.items()):
        datasets[process] = {"process": process, "is_data": False, "xsec": xsec, "mass": n}
    return {
        "regions": {"r": {"cuts": ["c1"]}},
        "histograms": {"x": histogram},
        "datasets": datasets,
        "searches": {"z": {"histogram": "x", "label": "Z'",
                           "signals": {"s1": 100.0, "s2": 110.0, "s3": 120.0}}},
        "plots": {"formats": ["png"], "label": "Test"},
        "luminosity": 1000.0,
    }  # fmt: skip


@pytest.fixture
def inputs() -> list:
    out = [_weighted("b", BACKGROUND)]
    for process, peak in PEAKS.items():
        out.append(_weighted(process, np.eye(3)[peak] * 8.0))
    x = np.repeat([0.5, 1.5, 2.5], DATA)
    out.append(make_result("d", "nominal", x, np.ones(len(x)), process="data", is_data=True))
    return out


def test_each_workspace_holds_its_hypothesis_only(inputs):
    config = _config()
    for point in search.search_points(config, "z"):
        spec = search.point_workspace(config, inputs, "z", point)
        samples = [s["name"] for s in spec["channels"][0]["samples"]]
        assert samples == [point.process, "b"]
        assert spec["observations"] == [{"name": "r", "data": [22.0, 18.0, 25.0]}]
    # and the other fits never see a hypothesis
    names = {p.process for c in fit_channels_of(config, inputs, "x") for p in c.mc}
    assert names == {"b"}


def test_blinded_bins_hold_the_background_only_asimov(inputs):
    """The window's bin is the background's prediction, never the data (18) and never a
    hypothesis (s2 peaks there)."""
    config = _config(blind=[1.0, 2.0])
    point = search.search_points(config, "z")[1]
    spec = search.point_workspace(config, inputs, "z", point)
    np.testing.assert_allclose(spec["observations"][0]["data"], [22.0, 20.0, 25.0])


def _pyhf_limits(spec: dict) -> tuple[float, list[float]]:
    workspace = pyhf.Workspace(spec)
    model = workspace.model()
    data = workspace.data(model)
    observed, expected = pyhf.infer.intervals.upper_limits.upper_limit(data, model, level=0.05)
    return float(observed), [float(x) for x in np.ravel(expected)]  # -2, -1, median, +1, +2


def test_limits_equal_pyhf_and_convert_by_the_cross_section(inputs, tmp_path):
    config = _config()
    table = search.search_job(config, "z", inputs, tmp_path)
    assert [p["mass"] for p in table["points"]] == [100.0, 110.0, 120.0]
    for row in table["points"]:
        spec = json.loads((tmp_path / f"{row['process']}.pyhf.json").read_text())
        observed, band = _pyhf_limits(spec)
        assert row["observed"] == pytest.approx(observed, rel=2e-3)
        ours = row["expected"]
        np.testing.assert_allclose(
            [ours["-2"], ours["-1"], ours["median"], ours["+1"], ours["+2"]], band, rtol=2e-3
        )
        xsec = config["datasets"][row["process"]]["xsec"]
        assert row["xsec_observed"] == pytest.approx(row["observed"] * xsec, rel=1e-12)
        assert row["xsec_expected"]["median"] == pytest.approx(ours["median"] * xsec, rel=1e-12)
    text = (tmp_path / "limits.md").read_text()
    assert "blinded" not in text.split("<!--")[0].lower()
    assert (tmp_path / "limits.png").stat().st_size > 0
    assert "-0" not in (tmp_path / "limits.tex").read_text().replace("% brewflow", "")


def test_a_blinded_search_reports_no_observed_limit(inputs, tmp_path):
    config = _config(blind=[1.0, 2.0])
    table = search.search_job(config, "z", inputs, tmp_path)
    assert table["blinded"] == ["r"]
    for row in table["points"]:
        assert row["observed"] is None
        assert row["xsec_observed"] is None
        assert row["mu"] is None
        assert row["expected"]["median"] > 0
    assert "no observed limit" in (tmp_path / "limits.md").read_text()


@pytest.mark.mpl_image_compare
def test_brazil_plot(inputs, tmp_path):
    config = _config()
    table = search.search_job(config, "z", inputs, tmp_path)
    return search.brazil_plot(table, label="Z'", xlabel="m [GeV]", rlabel="1 fb$^{-1}$",
                              cms="Test")  # fmt: skip


def test_hypotheses_are_never_stacked_nor_in_the_total_mc(inputs, tmp_path):
    """A search's signals are lines over the stack (the stack's top is the background) and
    columns of their own in the cutflow, not in its total MC."""
    import pandas as pd

    from brewflow.outputs.plots import data_mc_figure
    from brewflow.outputs.tables import TOTAL_MC, write_tables
    from tests.outputs.overlap import overlaps

    config = _config()
    background = [p for p in inputs if p.process in ("b", "data")]
    signals = [p for p in inputs if p.process in PEAKS]
    fig = data_mc_figure(background, "x", "r", styles={}, luminosity=1000.0, signals=signals)
    ax = fig.axes[0]
    stack = [p for p in ax.patches if p.get_label() == "b"]
    assert len(stack) == 1  # the stack: the background alone
    np.testing.assert_allclose(stack[0].get_data().values, BACKGROUND)
    lines = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"s1", "s2", "s3"} <= lines
    assert not overlaps(ax)
    csv, md, _ = write_tables(inputs, inputs, "r", tmp_path / "r", config=config)
    tidy = pd.read_csv(csv)
    total = tidy[tidy.name == TOTAL_MC].sort_values("step").sumw.to_numpy()
    np.testing.assert_allclose(total, [BACKGROUND.sum(), BACKGROUND[1:].sum()])
    assert "s2" in md.read_text().split("## Events")[0]


def test_a_point_whose_signal_is_not_in_the_channels_fails_alone(inputs, tmp_path):
    """A hypothesis with no event in the search's channels is a failed point, named; the
    others are limited; a search whose every point failed still writes its plot."""
    config = _config()
    empty = _weighted("s2", np.zeros(3))
    others = [p for p in inputs if p.process != "s2"]
    table = search.search_job(config, "z", [*others, empty], tmp_path)
    failed = {p["process"]: p["failed"] for p in table["points"]}
    assert "expects no event" in failed["s2"]
    assert failed["s1"] is None
    assert failed["s3"] is None
    assert "mass 110: the signal expects no event" in (tmp_path / "limits.md").read_text()
    config["searches"]["z"]["signals"] = {"s2": 110.0}
    table = search.search_job(config, "z", [*others, empty], tmp_path / "none")
    assert table["points"][0]["expected"] is None
    assert (tmp_path / "none" / "limits.png").stat().st_size > 0
