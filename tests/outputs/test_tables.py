from __future__ import annotations

import numpy as np
import pandas as pd

from brewflow.outputs.tables import cutflow_frame, write_tables
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
    assert set(tidy["level"]) == {"process", "dataset"}
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
