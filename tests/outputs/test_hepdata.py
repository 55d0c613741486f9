"""The HEPData record's tables (brewflow.outputs.hepdata_tables, .hepdata): the numbers a
figure draws, read back from its record and from the figure's artists, against an independent
computation on the same histograms (sums, sqrt of variances, chi2 quantiles); blinded data in
no table; every kind of table accepted by hepdata-validator; a record byte-reproducible."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import yaml
from hepdata_lib import Submission
from scipy.stats import chi2, norm

from brewflow.outputs import hepdata, hepdata_tables
from brewflow.outputs.distribution import Distribution, distribution
from brewflow.outputs.plots import draw
from brewflow.outputs.tables import write_tables
from tests.outputs.plot_inputs import EDGES, PROCESS_STYLES, demo_processes, process, shape

QUALIFIERS = [("SQRT(S)", 13000.0, "GeV"), ("LUMINOSITY", 59.8, "fb$^{-1}$")]
COMMON = {"description": "d", "location": "Figure 1", "keywords": {"cmenergies": [13000.0]},
          "qualifiers": QUALIFIERS}  # fmt: skip


def _written(table, folder: Path) -> dict:
    """The table as hepdata_lib writes it, read back."""
    table.write_yaml(str(folder))
    return yaml.safe_load((folder / f"{table.name.lower().replace(' ', '_')}.yaml").read_text())


def _column(document: dict, name: str) -> dict:
    return next(v for v in document["dependent_variables"] if v["header"]["name"] == name)


def _values(column: dict) -> list:
    return [v["value"] for v in column["values"]]


def _errors(column: dict, label: str) -> list:
    out = []
    for value in column["values"]:
        found = [e for e in value.get("errors", []) if e["label"] == label]
        if not found:
            out.append(None)
        elif "symerror" in found[0]:
            out.append(found[0]["symerror"])
        else:
            out.append((found[0]["asymerror"]["minus"], found[0]["asymerror"]["plus"]))
    return out


def test_a_distribution_survives_its_json():
    processes = demo_processes(EDGES["met"], "left")
    dist = distribution(processes, "x", "r", styles=PROCESS_STYLES, window=(20.0, 40.0))
    again = Distribution.from_json(copy.deepcopy(dist.to_json()))
    for key, value in vars(dist).items():
        other = getattr(again, key)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, other)
        elif key in ("stacked", "signals"):
            assert [(c.process, c.label) for c in value] == [(c.process, c.label) for c in other]
            for a, b in zip(value, other, strict=True):
                np.testing.assert_array_equal(a.values, b.values)
        else:
            assert value == other, key


def test_the_record_holds_the_numbers_the_figure_draws(tmp_path):
    """Variable bins (drawn per GeV): the record's data, processes and total equal what the
    figure's artists hold and an independent computation on the histograms."""
    edges = EDGES["met"]
    processes = demo_processes(edges, "left", seed=3)
    widths = np.diff(edges)
    dist = distribution(processes, "x", "r", styles=PROCESS_STYLES, xlabel="MET [GeV]")
    fig = draw(dist)
    document = _written(hepdata_tables.distribution_table(dist, "met in r", **COMMON), tmp_path)
    assert document["independent_variables"][0]["header"] == {"name": "MET", "units": "GeV"}
    assert [(b["low"], b["high"]) for b in document["independent_variables"][0]["values"]] == [
        (float(a), float(b)) for a, b in itertools.pairwise(edges)
    ]
    mc = [p for p in processes if not p.is_data]
    data = next(p for p in processes if p.is_data).project("x", "r").values()
    total = sum(p.project("x", "r").values() for p in mc)
    stat = np.sqrt(sum(p.project("x", "r").variances() for p in mc))
    recorded = _column(document, "Data")
    assert recorded["header"]["units"] == "events / GeV"
    np.testing.assert_allclose(_values(recorded), data / widths, rtol=1e-7)
    low, high = chi2.ppf(norm.cdf(-1), 2 * data) / 2, chi2.ppf(norm.cdf(1), 2 * data + 2) / 2
    low = np.where(data == 0, 0.0, low)
    intervals = np.array(_errors(recorded, hepdata_tables.GARWOOD))
    np.testing.assert_allclose(intervals[:, 0], (low - data) / widths, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(intervals[:, 1], (high - data) / widths, rtol=1e-6)
    prediction = _column(document, "Total prediction")
    np.testing.assert_allclose(_values(prediction), total / widths, rtol=1e-7)
    np.testing.assert_allclose(_errors(prediction, "stat"), stat / widths, rtol=1e-7)
    for p in mc:
        label = PROCESS_STYLES[p.process]["label"]
        np.testing.assert_allclose(_values(_column(document, label)),
                                   p.project("x", "r").values() / widths, rtol=1e-7)  # fmt: skip
    ax = fig.axes[0]  # the figure: the stack's top and the data points it draws
    labels = {c.label for c in dist.stacked}
    top = max((a for a in ax.patches if a.get_label() in labels),
              key=lambda a: float(np.nansum(a.get_data()[0])))  # fmt: skip
    np.testing.assert_allclose(_values(prediction), top.get_data()[0], rtol=1e-7)
    points = next(c for c in ax.containers if c.get_label() == "Data")
    x, y = points.lines[0].get_data()  # the bins with a marker: those with events
    shown = data > 0
    np.testing.assert_allclose(x, ((edges[:-1] + edges[1:]) / 2)[shown])
    np.testing.assert_allclose(np.asarray(_values(recorded))[shown], y, rtol=1e-7)
    plt.close(fig)


def test_systematic_uncertainties_are_apart_from_the_statistical_and_make_the_band(tmp_path):
    edges = EDGES["mass"]
    processes = demo_processes(edges, "z", seed=5)
    dist = distribution(processes, "x", "r", styles=PROCESS_STYLES)
    document = _written(hepdata_tables.distribution_table(dist, "mll in r", **COMMON), tmp_path)
    prediction = _column(document, "Total prediction")
    stat = np.array(_errors(prediction, "stat"), dtype=float)
    syst = np.array([(-e, e) if isinstance(e, float) else e  # a symmetric one: one number
                     for e in _errors(prediction, "syst")], dtype=float)  # fmt: skip
    band_down, band_up = dist.band
    np.testing.assert_allclose(np.hypot(stat, -syst[:, 0]), band_down, rtol=1e-6)
    np.testing.assert_allclose(np.hypot(stat, syst[:, 1]), band_up, rtol=1e-6)
    mc = [p for p in processes if not p.is_data]  # independently: the jes shifts of the sum
    nominal = sum(p.project("x", "r").values() for p in mc)
    shifts = {d: sum(p.project("x", "r", f"jes{d}" if f"jes{d}" in p.systematics else "nominal")
                     .values() for p in mc) - nominal for d in ("Up", "Down")}  # fmt: skip
    lumi = {d: sum(p.project("x", "r", f"lumi{d}" if f"lumi{d}" in p.systematics else "nominal")
                   .values() for p in mc) - nominal for d in ("Up", "Down")}  # fmt: skip
    up = np.sqrt(sum(np.maximum(np.maximum(s["Up"], s["Down"]), 0) ** 2 for s in (shifts, lumi)))
    np.testing.assert_allclose(syst[:, 1], up, rtol=1e-6, atol=1e-12)


def test_blinded_data_enter_no_table(tmp_path):
    """A blind region: no data column; a window: its bins '-' (no error), the rest shown; an
    empty bin where MC predicts nothing (not drawn): 0 with its Garwood interval."""
    edges = EDGES["mass"]
    processes = demo_processes(edges, "z", seed=2)
    blind = distribution(processes, "x", "r", styles=PROCESS_STYLES, blind=True)
    document = _written(hepdata_tables.distribution_table(blind, "blind", **COMMON), tmp_path)
    names = [v["header"]["name"] for v in document["dependent_variables"]]
    assert "Data" not in names
    assert "Total prediction" in names
    window = distribution(processes, "x", "r", styles=PROCESS_STYLES, window=(85.0, 95.0))
    document = _written(hepdata_tables.distribution_table(window, "window", **COMMON), tmp_path)
    data = _column(document, "Data")
    inside = (edges[:-1] < 95.0) & (edges[1:] > 85.0)
    counts = next(p for p in processes if p.is_data).project("x", "r").values()
    for value, hidden, count in zip(data["values"], inside, counts, strict=True):
        if hidden:
            assert value == {"value": "-"}
        else:
            assert value["value"] == count
    assert inside.sum() == 4


def _fit_document() -> dict:
    """A fit.json of two channels, one blinded (its data null), an impact whose refit failed."""
    channel = {"prefit": {}, "postfit": {}}
    for stage in channel:
        channel[stage] = {
            "sig": {"sum": 5.0, "error": 1.0}, "bkg": {"sum": 20.0, "error": 2.0},
            "background": {"sum": 20.0, "error": 2.0}, "total": {"sum": 25.0, "error": 2.2},
        }  # fmt: skip
    return {
        "channels": ["sr", "cr"], "signal": ["sig"], "data": "observed",
        "blinded_channels": ["cr"], "mu": 1.2, "mu_error": 0.3,
        "likelihood_scan": {"intervals": [{"level": 0.6827, "low": 0.95, "high": 1.55}]},
        "significance": {"observed": 4.0, "expected": 3.5},
        "upper_limit": {"level": 0.05, "observed": None, "expected": [0.4, 0.2, 0.3, 0.6, 0.8]},
        "normalisations": [{"name": "k", "value": 1.1, "error": 0.1}],
        "yields": {"sr": {**channel, "data": {"sum": 27.0}},
                   "cr": {**channel, "data": {"sum": None}}},
        "impacts": [{"name": "a", "postfit_up": 0.1, "postfit_down": -0.1, "prefit_up": 0.12,
                     "prefit_down": -0.11},
                    {"name": "b", "postfit_up": None, "postfit_down": None, "prefit_up": None,
                     "prefit_down": None, "failed": "refit"}],
        "pulls": [{"name": "a", "pull": 0.5, "constraint": 0.9},
                  {"name": "b", "pull": -0.1, "constraint": 0.8}],
    }  # fmt: skip


def _limits_document() -> dict:
    bands = {"median": 1.0, "-2": 0.5, "-1": 0.7, "+1": 1.4, "+2": 1.9}
    return {
        "level": 0.05, "blinded": True,
        "points": [
            {"mass": 110.0, "observed": None, "xsec_observed": None, "xsec": 2.0,
             "expected": bands, "xsec_expected": {k: 2 * v for k, v in bands.items()}},
            {"mass": 125.0, "observed": None, "xsec_observed": None, "xsec": 1.0,
             "expected": None, "xsec_expected": None, "failed": "no fit"},
        ],
    }  # fmt: skip


def _every_kind(tmp_path: Path) -> Submission:
    edges = EDGES["met"]
    processes = demo_processes(edges, "left", seed=4)
    submission = Submission()
    submission.comment = "A test record"
    for name, options in (("plot", {}), ("blind", {"blind": True}),
                          ("window", {"window": (20.0, 40.0)})):  # fmt: skip
        dist = distribution(processes, "x", "r", styles=PROCESS_STYLES, **options)
        submission.add_table(hepdata_tables.distribution_table(dist, name, **COMMON))
    stem = tmp_path / "cutflow"
    write_tables(processes, processes, "r", stem)
    import pandas as pd

    submission.add_table(
        hepdata_tables.cutflow_table(
            pd.read_csv(stem.with_suffix(".csv")), "cutflow", labels={}, hypotheses=[], **COMMON
        )
    )
    fit = _fit_document()
    submission.add_table(hepdata_tables.fit_results_table(fit, "results", **COMMON))
    for stage in ("prefit", "postfit"):
        submission.add_table(hepdata_tables.yields_table(fit, stage, stage, labels={}, **COMMON))
    submission.add_table(hepdata_tables.impacts_table(fit, "impacts", **COMMON))
    submission.add_table(hepdata_tables.pulls_table(fit, "pulls", **COMMON))
    submission.add_table(
        hepdata_tables.limits_table(
            _limits_document(), "limits", mass_label="$m$ [GeV]", signal="X", **COMMON
        )
    )
    return submission  # fmt: skip


def test_every_kind_of_table_passes_the_validator(tmp_path):
    submission = _every_kind(tmp_path)
    folder = tmp_path / "record"
    folder.mkdir()
    hepdata._write_files(submission, {}, folder)
    assert hepdata.validate_record(folder) == []
    impacts = yaml.safe_load((folder / "impacts.yaml").read_text())
    failed = _column(impacts, "$\\Delta\\hat{\\mu}$, +1 sigma post-fit")
    assert _values(failed) == [0.1, "-"]  # the failed refit: no number
    yields = yaml.safe_load((folder / "postfit.yaml").read_text())
    assert _values(_column(yields, "Data")) == [27, "-"]  # the blinded channel: none
    limits = yaml.safe_load((folder / "limits.yaml").read_text())
    assert _values(_column(limits, "observed upper limit on $\\sigma$ (95% CL)")) == ["-", "-"]
    expected = _column(limits, "expected upper limit on $\\sigma$ (95% CL, median)")
    assert _errors(expected, "1 sigma") == [(-0.6, 0.8), None]


def test_an_invalid_record_is_caught(tmp_path):
    """The check that guards the record: a table without its data file is refused."""
    submission = _every_kind(tmp_path)
    folder = tmp_path / "record"
    folder.mkdir()
    hepdata._write_files(submission, {}, folder)
    (folder / "limits.yaml").unlink()
    assert any("limits.yaml" in m for m in hepdata.validate_record(folder))


def test_thumbnails_and_archive_are_byte_reproducible(tmp_path):
    edges = EDGES["mass"]
    fig = draw(distribution(demo_processes(edges), "x", "r", styles=PROCESS_STYLES))
    image = tmp_path / "figure.png"
    fig.savefig(image, metadata={"Software": None}, dpi=100)
    plt.close(fig)
    made = []
    for attempt in ("a", "b"):
        folder = tmp_path / attempt
        folder.mkdir()
        hepdata._write_files(_every_kind(tmp_path), {"plot": str(image)}, folder)
        hepdata._archive(folder, tmp_path / f"{attempt}.tar.gz")
        made.append({p.name: p.read_bytes() for p in folder.iterdir()})
    assert made[0] == made[1]
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    from PIL import Image

    with Image.open(tmp_path / "a" / "thumb_plot.png") as thumb:
        assert max(thumb.size) <= max(hepdata.THUMBNAIL)
    assert (tmp_path / "a" / "plot.png").read_bytes() == image.read_bytes()


@pytest.mark.parametrize("edges", [EDGES["njets"], EDGES["eta"]])
def test_uniform_bins_are_recorded_per_bin(tmp_path, edges):
    counts = shape(edges, "flat", 100.0)
    processes = [process("mc", edges, counts), process("data", edges, np.round(counts),
                                                           is_data=True)]  # fmt: skip
    dist = distribution(processes, "x", "r", styles={})
    document = _written(hepdata_tables.distribution_table(dist, "t", **COMMON), tmp_path)
    np.testing.assert_allclose(_values(_column(document, "Total prediction")), counts, rtol=1e-7)
    assert _column(document, "Data")["header"]["units"] == dist.ytitle.replace("Events", "events")


def test_a_folder_that_is_not_a_record_is_never_replaced(tmp_path):
    from brewflow.errors import InputError

    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="no HEPData record"), hepdata._staging(folder):
        pass
    assert (folder / "notes.txt").read_text() == "mine"
    record = tmp_path / "record"
    for text in ("first", "second"):  # a record is replaced whole, nothing left beside it
        with hepdata._staging(record) as staging:
            (staging / "submission.yaml").write_text(text)
        assert (record / "submission.yaml").read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record", "results"]


def test_the_working_folder_and_an_archive_inside_the_record_are_refused(tmp_path, monkeypatch):
    from brewflow.errors import InputError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "submission.yaml").write_text("a record here")
    for folder in (tmp_path, tmp_path.parent):
        with pytest.raises(InputError, match="holds the working folder"), hepdata._staging(folder):
            pass
    assert (tmp_path / "submission.yaml").is_file()
    with pytest.raises(InputError, match="inside the record's folder"):
        hepdata.write_record({}, tmp_path / "record", tmp_path / "record" / "upload.tar.gz")
    with pytest.raises(InputError, match="inside the record's folder"):
        hepdata.write_record({}, tmp_path / "record.tar.gz", tmp_path / "record.tar.gz")
    with pytest.raises(InputError, match=r"name it <something>\.tar\.gz"):
        hepdata.write_record({}, tmp_path / "record", tmp_path / "config.json")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    for target in ("notes.txt", "link"):
        with (
            pytest.raises(InputError, match="a file or a link"),
            hepdata._staging(tmp_path / target),
        ):
            pass
    assert (tmp_path / "notes.txt").read_text() == "mine"
