from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brewflow.outputs.tables import cutflow_frame, pdg_round, write_tables
from brewflow.results.arithmetic import scale
from tests.helpers import make_result


def test_cutflow_frame_numbers_and_efficiencies():
    mc = scale(make_result("a", "nominal", [0.5, 1.5, 2.5, 2.5], [1.0, 2.0, 3.0, -1.0]), 0.5)
    frame = cutflow_frame([mc], "r", "dataset")
    assert frame["cut"].tolist() == ["initial", "c1"]
    assert frame["events"].tolist() == [4, 3]
    np.testing.assert_allclose(frame["sumw"], [2.5, 2.0])
    np.testing.assert_allclose(frame["sumw_err"], [0.5 * np.sqrt(15), 0.5 * np.sqrt(14)])
    np.testing.assert_allclose(frame["cum_eff"], [1.0, 0.8])
    np.testing.assert_allclose(frame["events_eff"], [1.0, 0.75])


def test_write_tables_csv_markdown_latex(tmp_path):
    data = make_result(
        "d", "nominal", [1.5, 2.5, 0.5], [1.0, 1.0, 1.0], process="data", is_data=True
    )
    mc = make_result("m", "nominal", [1.5, 0.5], [2.0, 2.0], process="mc")
    paths = write_tables([data, mc], [data, mc], "r", tmp_path / "r")
    assert [p.name for p in paths] == ["r.csv", "r.md", "r.tex"]
    tidy = pd.read_csv(tmp_path / "r.csv")
    assert set(tidy["level"]) == {"process", "total", "dataset"}
    row = tidy[(tidy.level == "process") & (tidy.name == "mc") & (tidy.cut == "c1")]
    assert row["sumw"].item() == 2.0
    markdown = (tmp_path / "r.md").read_text()
    assert "| c1" in markdown
    assert "2.0 ± 2.0 (50.0%)" in markdown
    latex = (tmp_path / "r.tex").read_text()
    assert "\\begin{tabular}" in latex
    assert "tab:cf_r" in latex


def test_latex_tables_escape_percent_and_underscore(tmp_path):
    """Regression: pandas' to_latex left ``%`` (every efficiency, "(50.0%)") and ``_`` (cut
    and region names such as ``two_muons``, ``ttbar_emu``) unescaped: the rest of each row was
    a LaTeX comment and the document did not compile."""
    import re

    mc = make_result("m", "nominal", [1.5, 0.5], [2.0, 2.0], process="mc_sample")
    mc.cutflows = {"r": ["two_muons"]}
    write_tables([mc], [mc], "r", tmp_path / "r_x")
    latex = (tmp_path / "r_x.tex").read_text()
    body = "\n".join(  # comment and label lines may hold both
        line for line in latex.splitlines() if not line.startswith(("% ", "\\label"))
    )
    assert not re.findall(r"(?<!\\)[%_]", body), body
    assert r"two\_muons" in body
    assert r"2.0 $\pm$ 2.0 (50.0\%)" in body
    assert r"mc\_sample" in body


@pytest.mark.parametrize(
    ("value", "uncertainty", "expected"),
    [
        # the PDG's examples (Review of Particle Physics, Introduction, "Rounding")
        (0.827, 0.119, ("0.83", "0.12")),  # 119: between 100 and 354, two digits
        (0.827, 0.367, ("0.8", "0.4")),  # 367: between 355 and 949, one digit
        # the edges of the three ranges: 354 two digits, 355 one, 949 one, 950 up to 1000
        (1.2345, 0.354, ("1.23", "0.35")),
        (1.2345, 0.355, ("1.2", "0.4")),
        (1.2345, 0.949, ("1.2", "0.9")),
        (1.2345, 0.950, ("1.2", "1.0")),
        (14.674, 0.0999, ("14.67", "0.10")),
        (1.2345, 0.1, ("1.23", "0.10")),  # 100: two digits, a trailing zero kept
        # the cells: "19.2 ± 7.3" (730: one digit), "0.5 ± 0.0" (the error shown)
        (19.2, 7.3, ("19", "7")),
        (0.5, 0.04, ("0.50", "0.04")),
        # large and small numbers stay in fixed notation; no "-0"
        (123456.7, 3400.0, ("123500", "3400")),
        (0.0001234, 0.0000456, ("0.00012", "0.00005")),
        (-0.001, 0.3, ("0.00", "0.30")),
        (-2.25, 0.5, ("-2.3", "0.5")),  # halves away from zero
        (7.0, 0.0, ("7", "0")),  # no uncertainty: the value as given
    ],
)
def test_pdg_rounding(value, uncertainty, expected):
    assert pdg_round(value, uncertainty) == expected


def test_pdg_rounding_refuses_what_it_cannot_round():
    for value, uncertainty in ((1.0, -0.1), (float("nan"), 0.1), (1.0, float("inf"))):
        with pytest.raises(ValueError, match="cannot round"):
            pdg_round(value, uncertainty)


def _data(name, passing, failing, read, certified=None):
    """A data result of ``passing`` events over the cut and ``failing`` below it, read from
    ``read`` events of which those in certified lumi blocks are the cutflow's initial."""
    x = [1.5] * passing + [0.5] * failing
    result = make_result(name, "nominal", x, [1.0] * len(x), process="data", is_data=True)
    result.meta["events"] = read
    if certified is not None:
        result.meta["events_certified"] = certified
    return result


@pytest.fixture
def region_results():
    """Two MC processes (a: 10000 failing events of weight 1 and 4 passing of weight 3.5;
    b: 2 passing of weight 3) and two data datasets of one process (25 + 100 events)."""
    a = make_result("a1", "nominal", [0.5] * 10000 + [1.5] * 4, [1.0] * 10000 + [3.5] * 4,
                    process="a")  # fmt: skip
    b = make_result("b1", "nominal", [1.5, 1.5], [3.0, 3.0], process="b")
    first = _data("d1", 20, 100, read=150, certified=120)
    second = _data("d2", 5, 0, read=5)  # lumi_mask: all, no certified count: all read
    data = _data("d1", 25, 100, read=155)
    data.dataset = None  # the process sum (a stack)
    return {"processes": [a, b, data], "datasets": [a, b, first, second]}


def _markdown_rows(text: str, section: int) -> dict[str, dict[str, str]]:
    """Row label -> column -> cell of a Markdown table of ``write_tables`` (0: per process)."""
    table = text.split("\n## ")[1 + section]
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in rows}


def test_tables_show_total_mc_data_over_mc_and_the_certified_luminosity(region_results, tmp_path):
    """Regression (issue 28): the tables had no total MC, no data/MC and no certified-luminosity
    row, and showed yields as "19.2 ± 7.3 (0.0%)": every cell now rounded by its uncertainty.
    The numbers below are computed by hand from the events of the fixture."""
    write_tables(region_results["processes"], region_results["datasets"], "r", tmp_path / "r")
    markdown = (tmp_path / "r.md").read_text()
    yields = _markdown_rows(markdown, 0)
    assert list(yields) == ["certified luminosity", "initial", "c1"]
    assert list(yields["c1"]) == ["a", "b", "total MC", "data", "data/MC"]  # MC, total, data
    # a: c1 = 4 x 3.5 = 14 +- sqrt(4 x 3.5^2) = 7 (one digit), of 10014: 0.140%
    assert yields["c1"]["a"] == "14 ± 7 (0.140%)"
    assert yields["initial"]["a"] == "10010 ± 100 (100%)"  # sqrt(10049) = 100.2: two digits
    assert yields["c1"]["b"] == "6 ± 4 (100%)"  # sqrt(18) = 4.24: one digit
    # total MC: 20 +- sqrt(49 + 18) = 8.2 (one digit); 20 / 10020 = 0.1996%
    assert yields["c1"]["total MC"] == "20 ± 8 (0.200%)"
    assert yields["c1"]["data"] == "25"
    # data/MC: 25 / 20 = 1.25 +- sqrt((5 / 20)^2 + (1.25 x sqrt(67) / 20)^2) = 0.57
    assert yields["c1"]["data/MC"] == "1.3 ± 0.6"
    assert yields["initial"]["data/MC"] == "0.0125 ± 0.0011"  # 125 / 10020, 0.00114
    # data read 150 + 5 events, certified 120 + 5 (the second: certified as a whole)
    assert yields["certified luminosity"] == {"a": "", "b": "", "total MC": "",
                                              "data": "125 of 155 read", "data/MC": ""}  # fmt: skip
    raw = _markdown_rows(markdown, 1)
    assert raw["certified luminosity"] == {"a1": "", "b1": "", "d1": "120 of 150 read",
                                           "d2": "5 of 5 read"}  # fmt: skip
    assert raw["c1"] == {"a1": "4", "b1": "2", "d1": "20", "d2": "5"}
    tidy = pd.read_csv(tmp_path / "r.csv")
    total = tidy[tidy.level == "total"]
    assert total["name"].unique().tolist() == ["total MC"]
    np.testing.assert_allclose(total["sumw"], [10020.0, 20.0])
    np.testing.assert_allclose(total["sumw_err"], [np.sqrt(10000 + 49 + 18), np.sqrt(67)])
    np.testing.assert_allclose(total["cum_eff"], [1.0, 20 / 10020])
    data_rows = tidy[(tidy.level == "dataset") & tidy.is_data]
    assert data_rows.groupby("name").events_certified.first().to_dict() == {"d1": 120, "d2": 5}
    assert data_rows.groupby("name").events_read.first().to_dict() == {"d1": 150, "d2": 5}
    assert tidy[~tidy.is_data].events_certified.isna().all()
    latex = (tmp_path / "r.tex").read_text()
    assert r"1.3 $\pm$ 0.6" in latex
    assert "125 of 155 read" in latex


@pytest.mark.parametrize("blinding", ["region", "window"])
def test_blinded_tables_have_no_data_nor_data_over_mc(region_results, tmp_path, blinding):
    """A blinded region, or one with a blinded window, has no data cutflow: no data column,
    no data/MC, no certified-luminosity row (the total MC stays), as the title says."""
    x = {"variable": "x", "bins": 3, "start": 0.0, "stop": 3.0}
    config = {
        "regions": {"r": {"cuts": ["c1"], "blind": blinding == "region"}},
        "histograms": {"x": {**x, "blind": [0.0, 1.0]} if blinding == "window" else x},
    }
    write_tables(region_results["processes"], region_results["datasets"], "r", tmp_path / "r",
                 config=config)  # fmt: skip
    markdown = (tmp_path / "r.md").read_text()
    assert "(data blinded" in markdown.splitlines()[0]
    yields, raw = _markdown_rows(markdown, 0), _markdown_rows(markdown, 1)
    assert list(yields) == ["initial", "c1"]
    assert list(yields["c1"]) == ["a", "b", "total MC"]
    assert list(raw["c1"]) == ["a1", "b1"]
    tidy = pd.read_csv(tmp_path / "r.csv")
    assert not tidy.is_data.any()


def test_pdg_rounding_of_a_value_far_larger_than_its_error():
    """Regression (issue 28 review): 1e25 +- 0.01 raised decimal.InvalidOperation (the
    context's 28 digits); the value is written to the error's decimal place."""
    value, error = pdg_round(1e25, 0.01)
    assert error == "0.010"
    assert value == "10000000000000000000000000.000"  # 1e25 as written (its repr)
    assert float(value) == 1e25
