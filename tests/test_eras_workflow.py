"""Two eras, a blinded region and the fit, through one Snakemake run: each era normalised with
its own luminosity and corrections, uncorrelated nuisances varying their era only, blinded data
in no output, and the fit recovering the signal strength injected into the pseudo-data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from brewflow.config import for_dataset, validate
from brewflow.results.model import load
from tests import reference
from tests.helpers import ERAS, INJECTED, era_config

pytestmark = pytest.mark.slow


@pytest.fixture
def run(eras_run: dict) -> dict:
    """The session's eras run (tests/conftest.py: the report's tests read it too)."""
    return eras_run


def _genweight(workdir: Path, files: list[str]) -> float:
    return float(sum(uproot.open(workdir / f)["Events"]["genWeight"].array(library="np")
                     .astype(np.float64).sum() for f in files))  # fmt: skip


def test_each_era_is_normalised_with_its_luminosity(run):
    workdir, config = run["workdir"], run["config"]
    for name, spec in config["datasets"].items():
        scaled = load(workdir / "results" / "scale" / f"{name}.json")
        assert scaled.meta["era"] == spec["era"]
        if spec["is_data"]:
            continue
        expected = spec["xsec"] * ERAS[spec["era"]] / _genweight(workdir, spec["files"])
        assert scaled.meta["scale_factor"] == pytest.approx(expected, rel=1e-12)


def test_histograms_use_the_era_corrections(run):
    """dy_2017 against an eager computation with 2017's pileup payload (not 2018's)."""
    workdir, config = run["workdir"], run["config"]
    view = for_dataset(config, "dy_2017")
    assert view["corrections"]["pileup"]["file"].endswith("demo_2017.json.gz")
    events = reference.dataset_events(view, "dy_2017", workdir)
    merged = load(workdir / "results" / "merge" / "dy_2017.json")
    cuts = config["regions"]["zmumu"]["cuts"]
    edges = np.linspace(50, 150, 41)
    values, variances = reference.histogram(events, "mll", cuts, edges, "nominal")
    got = merged.project("mll", "zmumu")
    np.testing.assert_allclose(got.values(), values, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.variances(), variances, rtol=1e-9, atol=1e-9)


def test_combination_sums_eras_and_uncorrelated_nuisances_vary_their_era(run):
    workdir = run["workdir"]
    combined = load(workdir / "results" / "stack" / "dy.json")
    eras = {e: load(workdir / "results" / "eras" / e / "stack" / "dy.json") for e in ERAS}
    assert "lumi_2017Up" in eras["2017"].systematics
    assert "lumi_2018Up" not in eras["2017"].systematics
    assert "jesUp" in eras["2017"].systematics  # correlated: one nuisance
    total = sum(e.project("met", "zmumu").values() for e in eras.values())
    np.testing.assert_allclose(combined.project("met", "zmumu").values(), total, rtol=1e-12)
    for era in ERAS:
        for syst in (f"lumi_{era}Up", f"pileup_{era}Down"):
            shift = combined.project("met", "zmumu", syst).values() - total
            own = eras[era].project("met", "zmumu", syst).values()
            own = own - eras[era].project("met", "zmumu").values()
            np.testing.assert_allclose(shift, own, rtol=1e-9, atol=1e-9)  # the other era: 0
    card = (workdir / "results" / "shapes" / "nj.txt").read_text().splitlines()
    lumi = next(line for line in card if line.startswith("lumi_2017 shape"))
    bins = next(line for line in card if line.startswith("bin ") and "dy" not in line)
    assert bins.split()[1:] == ["ttbar_emu_2017", "ttbar_emu_2018"]
    assert lumi.split()[2:] == ["1", "1", "-", "-"]  # top, dy in 2017; nothing in 2018


def test_blinded_data_reaches_no_output(run):
    workdir, config = run["workdir"], run["config"]
    for name in ("data", "data_2017"):
        merged = load(workdir / "results" / "merge" / f"{name}.json")
        for histogram in ("nj_blind", "_cutflow", "_cutflow_events"):
            h = merged.histograms[histogram][{"region": "ttbar_blind"}]
            assert not np.any(h.values(flow=True)), (name, histogram)  # never filled
        # the m_ll window: no data event inside it in any zmumu output
        events = [e for e in reference.dataset_events(config, name, workdir)
                  if all(e["cuts"][c] for c in config["regions"]["zmumu"]["cuts"])]  # fmt: skip
        outside = [e for e in events if not 85 <= e["mll"] < 95]
        assert len(outside) < len(events)  # the window held data
        assert not any(merged.cutflow("zmumu")["events"])  # a window: no data cutflow
        met = merged.project("met", "zmumu").values(flow=True)
        assert met.sum() == len(outside)
    table = (workdir / "results" / "cutflow" / "ttbar_blind.md").read_text()
    assert "data" not in table.split("## Events per dataset")[1]
    assert "Data blinded" not in table  # a table says it in its title
    assert "(data blinded)" in table
    assert "data" in (workdir / "results" / "cutflow" / "ttbar_emu.csv").read_text()
    workspace = json.loads((workdir / "results" / "shapes" / "nj_blind.pyhf.json").read_text())
    for channel, observed in zip(workspace["channels"], workspace["observations"], strict=True):
        mc = np.sum([s["data"] for s in channel["samples"]], axis=0)
        np.testing.assert_allclose(observed["data"], mc, rtol=1e-12)  # the Asimov
    blind_fit = json.loads((workdir / "results" / "fit" / "nj_blind" / "fit.json").read_text())
    assert blind_fit["blinded_channels"] == ["ttbar_blind_2017", "ttbar_blind_2018"]
    assert abs(blind_fit["mu"] - 1.0) < 1e-6
    data_counts = {str(int(load(workdir / "results" / "merge" / f"{n}.json")
                           .project("nj", "ttbar_emu").values().sum()))
                   for n in ("data", "data_2017")}  # fmt: skip
    for page in (workdir / "results" / "summary").glob("*.html"):
        text = page.read_text()
        assert "ttbar_blind" not in text or all(f">{c}<" not in text for c in data_counts)


def test_fit_recovers_the_injected_signal_strength(run):
    workdir = run["workdir"]
    result = json.loads((workdir / "results" / "fit" / "nj" / "fit.json").read_text())
    assert result["data"] == "observed"
    assert result["channels"] == ["ttbar_emu_2017", "ttbar_emu_2018"]
    assert abs(result["mu"] - INJECTED) < 2 * result["mu_error"]
    assert result["mu_error"] < 0.5
    plots = ("pulls.png", "impacts.png", "postfit/ttbar_emu_2017.png", "prefit/ttbar_emu_2018.png")
    for name in plots:
        assert (workdir / "results" / "fit" / "nj" / name).stat().st_size > 1000
    for era in ERAS:
        assert (workdir / "results" / "eras" / era / "plots" / "zmumu" / "mll.png").is_file()
        assert (workdir / "results" / "eras" / era / "cutflow" / "zmumu.md").is_file()


def test_config_is_valid():
    validate(era_config())


WINDOW = (85.0, 95.0)  # the blinded m_ll window of zmumu (era_config)

OUTPUT_KINDS = {  # every file a run writes, by kind; a new kind fails the test until checked
    "input": r"results/generated/.*",
    "inventory": r"results/preprocess/[^/]+\.json",
    "result": r"results/(analyze|merge|scale|stack|eras/[^/]+/stack)/.*\.json",
    "table": r"results/(eras/[^/]+/)?cutflow/[^/]+\.(csv|md|tex)",
    "plot": r"results/(eras/[^/]+/)?plots/.*\.(png|pdf)",
    "drawn": r"results/(eras/[^/]+/)?plots/[^/]+/[^/]+\.json",
    "hepdata": r"results/hepdata(/[^/]+\.(yaml|png)|\.tar\.gz)",
    "shapes": r"results/shapes/[^/]+\.(root|txt|pyhf\.json)",
    "fit": r"results/fit/.*\.(json|md|tex|png|pdf)",
    "search": r"results/search/zp/[^/]+\.(json|md|tex|png)",
    "skim": r"results/skim/[^/]+/[^/]+/(part-\d+\.(parquet|root)|skim\.json|"
    r"\.snakemake_timestamp)",
    "report": r"results/summary/[^/]+\.html",
    "log": r"logs/.*\.log",
}


def _kind(relative: str) -> str:
    found = [k for k, pattern in OUTPUT_KINDS.items() if re.fullmatch(pattern, relative)]
    assert len(found) == 1, f"{relative}: output kind {found or 'unknown'}; add it and a check"
    return found[0]


def _admitted(config: dict, events: list[dict], region: str) -> list[dict]:
    """The certified data events (the reference reads only those) a region may show: none
    of a blinded region, none with m_ll in the window in zmumu."""
    if config["regions"][region].get("blind"):
        return []
    if region == "zmumu":
        return [e for e in events if e["mll"] is None or not WINDOW[0] <= e["mll"] < WINDOW[1]]
    return events


def test_no_output_holds_a_data_event_it_must_not(run):
    """Issue 27.1: every file of the run, by kind: the data events outside the golden JSON,
    in a blinded region or inside a blinded window are in no histogram, no cutflow row, no
    table, no skim (parquet or ROOT), no fit input or fit, no report page; a file of a kind
    the test does not know fails it."""
    import awkward as ak
    import pandas as pd

    from brewflow.results.documents import read_document

    workdir, config = run["workdir"], run["config"]
    files = sorted(p for folder in ("results", "logs") for p in (workdir / folder).rglob("*")
                   if p.is_file() and p.name != "README.md")  # fmt: skip
    kinds: dict[str, list[Path]] = {}
    for path in files:
        kinds.setdefault(_kind(str(path.relative_to(workdir))), []).append(path)
    assert set(kinds) == set(OUTPUT_KINDS)  # the run wrote every kind
    data = {n: reference.dataset_events(config, n, workdir)
            for n, d in config["datasets"].items() if d["is_data"]}  # fmt: skip
    golden = {n: json.loads((workdir / config["datasets"][n]["lumi_mask"]).read_text())
              for n in data}  # fmt: skip
    for path in kinds["result"]:  # every histogram and cutflow holding data
        result = load(path)
        if not result.is_data:
            continue
        names = [result.dataset] if result.dataset in data else list(data)
        if "/eras/" in str(path):
            era = path.parts[-3]
            names = [n for n in names if config["datasets"][n]["era"] == era]
        for region in config["regions"]:
            admitted = [e for n in names for e in _admitted(config, data[n], region)]
            cuts = config["regions"][region]["cuts"]
            flow = result.cutflow(region)
            rows = 0 if region == "zmumu" else len(admitted)  # a window: no data cutflow
            assert flow["events"][0] == rows, (path, region)
            passing = [e for e in admitted if all(e["cuts"][c] for c in cuts)]
            if region != "zmumu":
                assert flow["events"][-1] == len(passing), (path, region)
            met = config["histograms"]["met"]
            if "met" in result.histograms and region in (met.get("regions") or [region]):
                assert result.project("met", region).values(flow=True).sum() == len(passing)
    for path in kinds["skim"]:
        if path.name != "skim.json":
            continue
        ledger = read_document(path)
        name, region = ledger["dataset"], ledger["region"]
        if name not in data:
            continue
        parts = [path.parent / p["file"] for p in ledger["parts"]]
        read = [ak.from_parquet(p) if p.suffix == ".parquet" else _root_events(p) for p in parts]
        events = ak.concatenate([r for r in read if len(r)]) if any(len(r) for r in read) else []
        cuts = config["regions"][region]["cuts"]
        expected = [e for e in _admitted(config, data[name], region)
                    if all(e["cuts"][c] for c in cuts)]  # fmt: skip
        assert ledger["events"] == len(events) == len(expected), path
        for run_, lumi in zip(ak.to_list(events["run"]) if len(events) else [],
                              ak.to_list(events["luminosityBlock"]) if len(events) else [],
                              strict=True):  # fmt: skip
            assert any(a <= lumi <= b for a, b in golden[name].get(str(run_), [])), path
        if "mll" in ledger["variables"] and len(events):
            mll = ak.to_numpy(events["mll"])
            assert not ((mll >= WINDOW[0]) & (mll < WINDOW[1])).any(), path
    for path in kinds["table"]:
        if path.suffix != ".csv":
            continue
        tidy = pd.read_csv(path)
        region = path.stem
        rows = tidy[(tidy.level == "dataset") & tidy.is_data]
        if config["regions"][region].get("blind") or region == "zmumu":  # zmumu: a window
            assert rows.empty, path
            continue
        era = path.parts[-3] if "/eras/" in str(path) else None
        for name, found in rows.groupby("name"):
            if era is not None:
                assert config["datasets"][name]["era"] == era
            admitted = _admitted(config, data[name], region)
            assert int(found[found.step == 0].events.iloc[0]) == len(admitted), (path, name)
    for path in kinds["shapes"]:
        if path.name.endswith(".pyhf.json"):
            workspace = json.loads(path.read_text())
            for channel, observed in zip(workspace["channels"], workspace["observations"],
                                         strict=True):  # fmt: skip
                if channel["name"].startswith("ttbar_blind"):
                    mc = np.sum([s["data"] for s in channel["samples"]], axis=0)
                    np.testing.assert_allclose(observed["data"], mc, rtol=1e-12)
    for path in kinds["search"]:  # the window's bins: the backgrounds' sum, never the data
        if path.name.endswith(".pyhf.json"):
            workspace = json.loads(path.read_text())
            edges = np.linspace(50, 150, 41)
            inside = (edges[:-1] < WINDOW[1]) & (edges[1:] > WINDOW[0])
            for channel, observed in zip(workspace["channels"], workspace["observations"],
                                         strict=True):  # fmt: skip
                background = [s["data"] for s in channel["samples"] if s["name"] != "zprime"]
                mc = np.sum(background, axis=0)
                np.testing.assert_allclose(np.asarray(observed["data"])[inside], mc[inside],
                                           rtol=1e-12)  # fmt: skip
        if path.name == "limits.json":
            table = json.loads(path.read_text())
            assert table["blinded"]
            assert all(p["observed"] is None for p in table["points"])
    for path in kinds["drawn"]:  # what the plots draw (the record's source): no blinded data
        drawn = json.loads(path.read_text())["distribution"]
        if config["regions"][drawn["region"]].get("blind"):
            assert drawn["data"] is None, path
        if (drawn["region"], drawn["histogram"]) == ("zmumu", "mll") and drawn["data"]:
            edges = np.asarray(drawn["edges"])
            inside = (edges[:-1] < WINDOW[1]) & (edges[1:] > WINDOW[0])
            assert all(v is None for v in np.asarray(drawn["events"], dtype=object)[inside])
    record = workdir / "results" / "hepdata"
    tables = [p for p in kinds["hepdata"] if p.suffix == ".yaml" and p.name != "submission.yaml"]
    for path in tables:
        table = yaml.safe_load(path.read_text())
        names = [v["header"]["name"] for v in table["dependent_variables"]]
        if "ttbar_blind" in path.stem or path.stem.startswith("cutflow_zmumu"):
            assert "Data" not in names, path  # a blinded region; a window: no data cutflow
        if path.stem in ("pre-fit_yields_nj_blind", "post-fit_yields_nj_blind"):
            column = next(v for v in table["dependent_variables"]
                        if "data" in v["header"]["name"].lower())  # fmt: skip
            assert column["header"]["name"] == "Asimov data" or all(
                v == {"value": "-"} for v in column["values"]), path  # fmt: skip
        if path.stem.startswith("mll_in_zmumu"):
            bins = table["independent_variables"][0]["values"]
            column = next(v for v in table["dependent_variables"] if v["header"]["name"] == "Data")
            for b, value in zip(bins, column["values"], strict=True):
                inside = b["low"] < WINDOW[1] and b["high"] > WINDOW[0]
                assert (value == {"value": "-"}) == inside, (path, b)
    assert record.is_dir()
    for path in kinds["fit"]:
        if path.name == "fit.json" and path.parent.name == "nj_blind":
            assert json.loads(path.read_text())["data"] in ("observed", "asimov")
            assert abs(json.loads(path.read_text())["mu"] - 1.0) < 1e-6  # the Asimov alone
    blind_counts = {str(len([e for e in data[n] if all(e["cuts"][c] for c in
                     config["regions"]["ttbar_blind"]["cuts"])])) for n in data}  # fmt: skip
    for path in [*kinds["report"], *kinds["log"]]:
        text = path.read_text(errors="replace")
        if "skim/blind/data" in str(path):
            assert re.search(r": 0 of \d+ events", text), path  # the skim kept none
        if path.suffix == ".html":
            assert all(f">{c}<" not in text for c in blind_counts if c != "0"), path


def _root_events(path: Path):
    import uproot

    with uproot.open(path) as f:
        return f["Events"].arrays(["run", "luminosityBlock", "mll"])


def _record_table(workdir: Path, stem: str) -> dict:
    return yaml.safe_load((workdir / "results" / "hepdata" / f"{stem}.yaml").read_text())


def _recorded(table: dict, name: str) -> list:
    column = next(v for v in table["dependent_variables"] if v["header"]["name"] == name)
    return [v["value"] for v in column["values"]]


def _recorded_error(table: dict, name: str, label: str) -> list:
    column = next(v for v in table["dependent_variables"] if v["header"]["name"] == name)
    return [
        next((e.get("symerror") for e in v.get("errors", []) if e["label"] == label), 0.0)
        for v in column["values"]
    ]  # none where every error is 0 (hepdata_lib)


def test_the_hepdata_record_is_valid_and_holds_the_numbers_drawn(run, tmp_path):
    """Issue 32: the record passes hepdata-validator (folder and archive), has a table per
    figure and table, and its numbers equal an independent computation on the stacks, the
    cutflow CSV, fit.json and limits.json; it is rebuilt byte for byte."""
    import os
    import subprocess

    import pandas as pd

    from brewflow.config import hypotheses
    from brewflow.config.records import record_tables
    from brewflow.outputs.hepdata import validate_record

    workdir, config = run["workdir"], run["config"]
    record = workdir / "results" / "hepdata"
    assert validate_record(record) == []
    assert validate_record(workdir / "results" / "hepdata.tar.gz") == []
    submission = list(yaml.safe_load_all((record / "submission.yaml").read_text()))
    assert len(submission) - 1 == len(record_tables(config))
    assert "Made by brewflow" in submission[0]["comment"]
    located = {d["name"]: d["location"] for d in submission[1:]}
    assert located["mll in zmumu"] == "Figure 1"
    assert located["Limits zp"] == "Figure 2"
    assert located["met in zmumu (2017)"] == "results/eras/2017/plots/zmumu/met"

    # a data/MC plot: the stacks' histograms, summed here (met: variable bins, per GeV)
    stacks = [load(p) for p in sorted((workdir / "results" / "stack").glob("*.json"))]
    apart = hypotheses(config)
    table = _record_table(workdir, "met_in_zmumu")
    bins = table["independent_variables"][0]["values"]
    edges = np.array([b["low"] for b in bins] + [bins[-1]["high"]])
    units = table["dependent_variables"][0]["header"]["units"]
    widths = np.diff(edges) if units == "events / GeV" else np.ones(len(bins))
    data = sum(s.project("met", "zmumu").values() for s in stacks if s.is_data)
    mc = [s for s in stacks if not s.is_data and s.process not in apart]
    total = sum(s.project("met", "zmumu").values() for s in mc)
    stat = np.sqrt(sum(s.project("met", "zmumu").variances() for s in mc))
    np.testing.assert_allclose(_recorded(table, "Data"), data / widths, rtol=1e-7)
    np.testing.assert_allclose(_recorded(table, "Total prediction"), total / widths, rtol=1e-7)
    np.testing.assert_allclose(_recorded_error(table, "Total prediction", "stat"),
                               stat / widths, rtol=1e-7)  # fmt: skip
    assert (record / "met_in_zmumu.png").read_bytes() == (
        workdir / "results" / "plots" / "zmumu" / "met.png").read_bytes()  # fmt: skip

    # a cutflow: the CSV's yields and events
    tidy = pd.read_csv(workdir / "results" / "eras" / "2018" / "cutflow" / "ttbar_emu.csv")
    table = _record_table(workdir, "cutflow_ttbar_emu_(2018)")
    top = tidy[(tidy.level == "process") & (tidy.name == "top")].sort_values("step")
    label = config["datasets"]["ttbar"].get("label", "top")
    np.testing.assert_allclose(_recorded(table, label), top.sumw, rtol=1e-7)
    observed = tidy[(tidy.level == "process") & tidy.is_data].sort_values("step")
    assert _recorded(table, "Data") == [int(e) for e in observed.events]

    # the fit's tables: fit.json
    fit = json.loads((workdir / "results" / "fit" / "nj" / "fit.json").read_text())
    table = _record_table(workdir, "fit_results_nj")
    values = _recorded(table, "Value")
    expected = [fit["mu"], fit["mu"], fit["mu"], fit["significance"]["observed"],
                fit["significance"]["expected"], fit["upper_limit"]["observed"]]  # fmt: skip
    for value, number in zip(values, expected, strict=False):  # none: "-" (not computed)
        assert value == ("-" if number is None else pytest.approx(number, rel=1e-7))
    table = _record_table(workdir, "post-fit_yields_nj")
    channels = [v["value"] for v in table["independent_variables"][0]["values"]]
    np.testing.assert_allclose(_recorded(table, "Total (signal + background)"),
                               [fit["yields"][c]["postfit"]["total"]["sum"] for c in channels],
                               rtol=1e-7)  # fmt: skip
    table = _record_table(workdir, "impacts_nj")
    names = [v["value"] for v in table["independent_variables"][0]["values"]]
    assert names == [i["name"] for i in fit["impacts"]]
    np.testing.assert_allclose(_recorded(table, "$\\Delta\\hat{\\mu}$, +1 sigma post-fit"),
                               [i["postfit_up"] for i in fit["impacts"]], rtol=1e-7)  # fmt: skip

    # the search's limits against mass: limits.json (blinded: no observed limit)
    limits = json.loads((workdir / "results" / "search" / "zp" / "limits.json").read_text())
    table = _record_table(workdir, "limits_zp")
    assert [v["value"] for v in table["independent_variables"][0]["values"]] == [
        p["mass"] for p in limits["points"]]  # fmt: skip
    np.testing.assert_allclose(
        _recorded(table, "expected upper limit on $\\sigma$ (95% CL, median)"),
        [p["xsec_expected"]["median"] for p in limits["points"]],
        rtol=1e-7,
    )
    assert _recorded(table, "observed upper limit on $\\sigma$ (95% CL)") == ["-"]

    # rebuilt: the same bytes
    again = subprocess.run(
        ["brewflow", "hepdata", "--config", ".brewflow/config.json", "--output-dir",
         str(tmp_path / "again"), "--archive", str(tmp_path / "again.tar.gz")],
        cwd=workdir, capture_output=True, text=True, check=False, env=os.environ.copy(),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    first = {p.name: p.read_bytes() for p in record.iterdir()}
    assert first == {p.name: p.read_bytes() for p in (tmp_path / "again").iterdir()}
    assert (tmp_path / "again.tar.gz").read_bytes() == (
        workdir / "results" / "hepdata.tar.gz").read_bytes()  # fmt: skip


def test_the_record_applies_the_blinding_itself_and_names_a_bad_input(run, tmp_path):
    """Review of issue 32: the record's job blinds what the config blinds whatever its inputs
    hold (a region blinded after its plots were made: no data in its tables), and a corrupt
    input is one line naming the file, exit 2, the record in place untouched."""
    import os
    import subprocess

    workdir = run["workdir"]
    resolved = json.loads((workdir / ".brewflow" / "config.json").read_text())["config"]
    resolved["regions"]["zmumu"]["blind"] = True
    edited = tmp_path / "blinded.yaml"
    edited.write_text(yaml.safe_dump(resolved))

    def hepdata(config: Path, out: Path) -> subprocess.CompletedProcess:
        command = ["brewflow", "hepdata", "--config", str(config), "--output-dir", str(out)]
        return subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                              check=False, env=os.environ.copy())  # fmt: skip

    done = hepdata(edited, tmp_path / "blinded")
    assert done.returncode == 0, done.stderr
    for stem in ("met_in_zmumu", "met_in_zmumu_(2018)", "mll_in_zmumu", "cutflow_zmumu"):
        table = yaml.safe_load((tmp_path / "blinded" / f"{stem}.yaml").read_text())
        assert "Data" not in [v["header"]["name"] for v in table["dependent_variables"]], stem
    for change, named in (  # what the record cannot take out: refused, naming the output
        (("regions", "ttbar_emu", "blind", True), "the fit of 'nj' saw the data of channel"),
        (("histograms", "mll", "blind", [80, 100]), "'plots/zmumu/met' was drawn with its data "
                                                      "leaving out mll in [85, 95)"),
    ):  # fmt: skip
        changed = json.loads((workdir / ".brewflow" / "config.json").read_text())["config"]
        section, name, key, value = change
        changed[section][name][key] = value
        (tmp_path / "changed.yaml").write_text(yaml.safe_dump(changed))
        done = hepdata(tmp_path / "changed.yaml", tmp_path / "changed")
        assert done.returncode == 2, done.stderr
        assert named in done.stderr
    drawn = workdir / "results" / "plots" / "zmumu" / "met.json"
    kept = drawn.read_bytes()
    try:
        drawn.write_bytes(kept[:300])  # a killed writer's half file
        done = hepdata(workdir / ".brewflow" / "config.json", tmp_path / "blinded")
    finally:
        drawn.write_bytes(kept)
    assert done.returncode == 2
    assert "results/plots/zmumu/met.json" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / "blinded" / "cutflow_zmumu.yaml").is_file()  # the record before: kept
