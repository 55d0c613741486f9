"""The bad-input matrix: every bad input gets one clear message naming the file, dataset or
config key (no traceback unless --debug), no output that looks complete, and with
``on_bad_file: skip`` a ledger that accounts for every event."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from brewflow.cli import main
from brewflow.config import ConfigError, load_config, validate
from brewflow.jobs.analyze import run
from brewflow.nanoevents.inputs import InputError
from brewflow.results.model import load

pytestmark = pytest.mark.usefixtures("shared_data")


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run ``brewflow argv`` in-process: (exit code, stderr)."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def refused(ran: tuple[int, str], pattern: str) -> str:
    """Assert a command exited with 2 and a message matching ``pattern``; the message."""
    code, err = ran
    assert code == 2, err
    assert re.search(pattern, err, re.S), err
    return err


# --- bad files, made from the real samples --------------------------------------------------


def truncated(shared: Path, out: Path) -> Path:
    data = (shared / "nanoaod" / "nano_dy.root").read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


def not_root(shared: Path, out: Path) -> Path:
    out.write_text("run,lumi,event\n1,2,3\n")
    return out


def no_events(shared: Path, out: Path) -> Path:
    with uproot.recreate(out) as f:
        f["Runs"] = {"run": np.array([1], dtype=np.uint32)}
    return out


def another_file(source: Path, out: Path) -> Path:
    """A byte copy of ``source`` under a new ROOT UUID: another file with the same events (a
    plain copy is refused as the same file listed twice)."""
    import uuid

    data = source.read_bytes()
    old = uproot.open(source).file.uuid.bytes
    out.write_bytes(data.replace(old, uuid.uuid5(uuid.NAMESPACE_URL, str(out)).bytes))
    return out


def damaged_basket(shared: Path, out: Path) -> Path:
    """nano_dy.root with the Muon_pt basket's compressed bytes flipped: opens, genWeight
    reads, the muons of its one chunk cannot be decompressed."""
    data = bytearray(another_file(shared / "nanoaod" / "nano_dy.root", out).read_bytes())
    with uproot.open(shared / "nanoaod" / "nano_dy.root") as f:
        seek = int(f["Events"]["Muon_pt"].member("fBasketSeek")[0])
    for i in range(seek + 100, seek + 140):
        data[i] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def missing_branch(shared: Path, out: Path) -> Path:
    shutil.copy(shared / "nanoaod" / "missing_luminosityBlock.root", out)
    return out


BAD_FILES = {  # maker, the stage that detects it, what the message says
    "truncated": (truncated, "preprocess", "not a readable ROOT file"),
    "not_root": (not_root, "preprocess", "not a readable ROOT file"),
    "no_events": (no_events, "preprocess", r"no tree 'Events' \(it has: Runs\)"),
    "damaged_basket": (damaged_basket, "analyze", r"entries \[0, 40\).*decompress"),
    "missing_branch": (missing_branch, "analyze", "no branch.*luminosityBlock"),
}


@pytest.fixture
def real(demo_set, shared_data, tmp_path, monkeypatch):
    """A config on real NanoAOD (demo analysis and payloads, no systematics): MC ``dy`` and
    SingleMuon data ``data`` with a golden JSON certifying their lumi blocks. ``make(**kw)``
    writes it with ``bad`` (a file) added to a dataset and returns the path."""
    monkeypatch.chdir(tmp_path)
    nanoaod = shared_data / "nanoaod"
    golden = tmp_path / "golden.json"
    golden.write_text('{"315267": [[1, 1000]], "1": [[1, 100000]]}')

    def make(bad: Path | None = None, dataset: str = "dy", **settings) -> Path:
        datasets = {
            "dy": {"files": [str(nanoaod / "nano_dy.root")], "xsec": 6077.2},
            "data": {
                "files": [str(nanoaod / "nano_dimuon.root")],
                "is_data": True,
                "lumi_mask": str(golden),
            },
        }
        if bad is not None:
            datasets[dataset]["files"].append(str(bad))
        for key in ("on_bad_file", "allow_partial"):
            if key in settings:
                datasets[dataset][key] = settings.pop(key)
        config = {**demo_set["config"], "datasets": datasets, "systematics": {}, **settings}
        config.pop("shapes")  # its signal, ttbar, is not among these datasets
        config["retries"] = {"read": 1, "backoff": 0.0}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(validate(config)))
        return path

    return make


def _chain(capsys, config: Path, dataset: str, stop: str | None = None) -> dict[str, tuple]:
    """preprocess, analyze, merge and scale of one dataset (up to a failing stage)."""
    steps = {
        "preprocess": ["preprocess", "--output", "pre.json"],
        "analyze": ["analyze", "--preprocess", "pre.json", "--output", "an.json"],
        "merge": ["merge", "--inputs", "an.json", "--preprocess", "pre.json", "--output", "m.json"],
        "scale": ["scale", "--input", "m.json", "--preprocess", "pre.json", "--output", "s.json"],
    }
    out = {}
    for name, argv in steps.items():
        extra = [] if name == "merge" else ["--config", config]
        extra += ["--dataset", dataset] if name in ("preprocess", "analyze", "scale") else []
        out[name] = cli(capsys, *argv[:1], *extra, *argv[1:])
        if out[name][0] != 0:
            break
    return out


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_file_fails_its_job_naming_it(kind, real, shared_data, tmp_path, capsys):
    maker, stage, message = BAD_FILES[kind]
    dataset = "data" if kind == "missing_branch" else "dy"
    bad = maker(shared_data, tmp_path / f"{kind}.root")
    ran = _chain(capsys, real(bad, dataset), dataset)
    code, err = ran[stage]
    assert list(ran)[-1] == stage, ran
    refused((code, err), rf"dataset {dataset!r}, file '.*{bad.name}'.*{message}")
    assert "on_bad_file: skip" in err  # says what to do
    assert not Path({"preprocess": "pre.json", "analyze": "an.json"}[stage]).exists()


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_skipped_bad_file_is_in_the_ledger_and_blocks_normalisation(
    kind, real, shared_data, tmp_path, capsys
):
    """``on_bad_file: skip``: the job goes on without the file (or its damaged chunk), the
    histograms equal an eager run on the good files alone, the ledger names what was skipped,
    and scale refuses until ``allow_partial`` is set; then MC is normalised by the sum of
    genWeight of the events read."""
    maker, _, message = BAD_FILES[kind]
    dataset = "data" if kind == "missing_branch" else "dy"
    bad = maker(shared_data, tmp_path / f"{kind}.root")
    config = real(bad, dataset, on_bad_file="skip")
    ran = _chain(capsys, config, dataset)
    code, err = ran["scale"]
    assert code == 2
    assert f"dataset {dataset!r} is incomplete" in err
    assert "allow_partial" in err
    assert not Path("s.json").exists()
    merged = load("m.json")
    book = merged.meta["ledger"]
    assert not book["complete"]
    assert [s["path"] for s in book["skipped"]] == [str(bad)]
    assert re.search(message, book["skipped"][0]["reason"])
    good = Path(load_config(config)["datasets"][dataset]["files"][0])
    assert book["events"]["read"] == 40
    assert book["files"]["read"] == 1
    assert book["files"]["expected"] == 2
    assert book["files"]["skipped"] == 1
    # the histograms are exactly those of the good file alone (independent eager run)
    settings = load_config(config)
    with uproot.open(good) as f:
        entries = f["Events"].num_entries
        if dataset == "dy":
            weights = f["Events"]["genWeight"].array(library="np").astype(np.float64)
    record = {"path": str(good), "tree": "Events", "entries": entries}
    reference = run(settings, dataset, "nominal", [record], lazy=False)
    for name, h in reference.histograms.items():
        assert np.array_equal(h.view(flow=True), merged.histograms[name].view(flow=True)), name
    # allow_partial: normalised by what was read, and labelled
    config = real(bad, dataset, on_bad_file="skip", allow_partial=True)
    assert cli(capsys, "scale", "--config", config, "--dataset", dataset, "--input", "m.json",
               "--preprocess", "pre.json", "--output", "s.json")[0] == 0  # fmt: skip
    scaled = load("s.json")
    assert 0 < scaled.meta["fraction"] < 1
    if dataset == "dy":
        xsec, lumi = settings["datasets"]["dy"]["xsec"], settings["luminosity"]
        assert scaled.meta["scale_factor"] == pytest.approx(xsec * lumi / weights.sum(), 1e-12)
    assert (
        cli(capsys, "stack", "--process", dataset, "--inputs", "s.json", "--output", "p.json")[0]
        == 0
    )
    assert load("p.json").meta["partial"] == {dataset: scaled.meta["fraction"]}
    code, _ = cli(capsys, "cutflow", "--region", "zmumu", "--processes", "p.json",
                  "--datasets", "s.json", "--output-stem", "cutflow")  # fmt: skip
    assert code == 0
    assert f"partial input (allow_partial): {dataset}" in Path("cutflow.md").read_text()
    assert "fraction_read" in Path("cutflow.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("change", ["deleted", "overwritten", "replaced"])
@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_file_changed_between_preprocess_and_analyze(change, policy, real, shared_data,
                                                     tmp_path, capsys):  # fmt: skip
    extra = tmp_path / "extra.root"
    another_file(shared_data / "nanoaod" / "nano_dy.root", extra)
    config = real(extra, on_bad_file=policy)
    assert cli(capsys, "preprocess", "--config", config, "--dataset", "dy", "--output",
               "pre.json")[0] == 0  # fmt: skip
    if change == "deleted":
        extra.unlink()
    elif change == "overwritten":
        extra.write_bytes(b"\0" * 4096)
    else:  # another valid file with another number of events
        shutil.copy(shared_data / "nanoaod" / "nano_dy_empty.root", extra)
    code, err = cli(capsys, "analyze", "--config", config, "--dataset", "dy", "--preprocess",
                    "pre.json", "--output", "an.json")  # fmt: skip
    expected = {
        "deleted": "",
        "overwritten": "not a readable ROOT file",
        "replaced": "ROOT file UUID",  # another file: refused before its entries
    }[change]
    if change == "deleted":  # a listed file must exist, whatever the policy: config error
        refused((code, err), re.escape(f"'datasets.dy.files': file {str(extra)!r} does not exist"))
    elif policy == "fail":
        refused((code, err), re.escape(f"file {str(extra)!r}: {expected}"))
        assert not Path("an.json").exists()
    else:
        assert code == 0
        result = load("an.json")
        assert result.meta["events"] == 40
        assert result.meta["skipped"][0]["path"] == str(extra)
        assert expected in result.meta["skipped"][0]["reason"]


def test_empty_file_is_processed_with_zero_events(real, shared_data, capsys):
    config = real()
    settings = load_config(config)
    settings["datasets"]["dy"]["files"] = [str(shared_data / "nanoaod" / "nano_dy_empty.root")]
    Path("empty.yaml").write_text(yaml.safe_dump(settings))
    ran = _chain(capsys, Path("empty.yaml"), "dy")
    assert all(code == 0 for code, _ in ran.values()), ran
    scaled = load("s.json")
    assert scaled.meta["events"] == 0
    assert scaled.meta["ledger"]["complete"]
    assert scaled.cutflow("zmumu")["events"] == [0] * (
        len(settings["regions"]["zmumu"]["cuts"]) + 1
    )


def test_zero_events_after_selection_is_not_an_error(real, tmp_path, capsys):
    """A golden JSON with the data's run (315267) but not its lumi block (205): every event
    read, none certified or selected. (Without the run at all, the file is of another era:
    refused at preprocess, tests/jobs/test_preprocess.py.)"""
    config = real()
    settings = load_config(config)
    (tmp_path / "golden.json").write_text('{"315267": [[1, 10]]}')
    ran = _chain(capsys, config, "data")
    assert all(code == 0 for code, _ in ran.values()), ran
    scaled = load("s.json")
    assert scaled.meta["events"] == 40
    assert scaled.meta["events_certified"] == 0
    for name in settings["histograms"]:
        assert scaled.histograms[name].sum(flow=True).value == 0


# --- configuration: fail before any job runs -----------------------------------------------


def _base(real) -> dict:
    return yaml.safe_load(real().read_text())


CONFIG_CASES = {
    "glob_matches_nothing": (
        lambda c: c["datasets"]["dy"].update(files=["/nowhere/*.root"]),
        r"datasets\.dy\.files.*glob '/nowhere/\*\.root' matches no file",
    ),
    "unknown_key": (lambda c: c.update(lumi=1.0), r"Additional properties.*'lumi'"),
    "wrong_type": (
        lambda c: c.update(luminosity="59.8 fb-1"),
        r"config key 'luminosity': '59.8 fb-1' is not of type 'number'",
    ),
    "wrong_units": (
        lambda c: c["datasets"]["dy"].update(xsec=-6077.2),
        r"config key 'datasets\.dy\.xsec': -6077\.2 is less than or equal to the minimum",
    ),
    "mc_without_xsec": (
        lambda c: c["datasets"]["dy"].pop("xsec"),
        r"'datasets\.dy'.*'xsec' is a required property.*cross section in pb",
    ),
    "missing_payload": (
        lambda c: c["corrections"]["pileup"].update(file="nowhere.json.gz"),
        r"config key 'corrections\.pileup\.file': file 'nowhere\.json\.gz' does not exist",
    ),
    "bad_policy": (
        lambda c: c.update(on_bad_file="ignore"),
        r"config key 'on_bad_file': 'ignore' is not one of \['fail', 'skip'\]",
    ),
    "name_escapes_results": (
        lambda c: c["datasets"].update({"../../etc": c["datasets"].pop("dy")}),
        r"'\.\./\.\./etc' does not match",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_errors_name_the_key(case, real, capsys):
    mutate, message = CONFIG_CASES[case]
    config = _base(real)
    mutate(config)
    Path("bad.yaml").write_text(yaml.safe_dump(config))
    code, err = cli(capsys, "validate", "bad.yaml")
    refused((code, err), message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("datasets:\n  dy: {files: [a.root]\n", r"'bad\.yaml' is not valid YAML.*line 3"),
        ("datasets:\n  dy: {xsec: 1}\n  dy: {xsec: 2}\n", r"bad\.yaml:3: duplicate key 'dy'"),
        ("- just\n- a list\n", "must hold a mapping"),
    ],
    ids=["malformed_yaml", "duplicate_dataset", "not_a_mapping"],
)
def test_yaml_errors_name_the_file_and_line(text, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text(text)
    code, err = cli(capsys, "validate", "bad.yaml")
    refused((code, err), message)


# --- command line and intermediates --------------------------------------------------------


def _preprocessed(real, capsys, **settings) -> Path:
    config = real(**settings)
    assert cli(capsys, "preprocess", "--config", config, "--dataset", "dy", "--output",
               "pre.json")[0] == 0  # fmt: skip
    return config


def test_unknown_dataset_or_systematic_on_the_command_line(real, capsys):
    config = _preprocessed(real, capsys)
    code, err = cli(capsys, "analyze", "--config", config, "--dataset", "ttbar",
                    "--preprocess", "pre.json", "--output", "an.json")  # fmt: skip
    assert code == 2
    assert "unknown dataset 'ttbar'; config has: data, dy" in err
    code, err = cli(capsys, "analyze", "--config", config, "--dataset", "dy", "--systematic",
                    "jesUp", "--preprocess", "pre.json", "--output", "an.json")  # fmt: skip
    assert code == 2
    assert "systematic 'jesUp' does not apply to dataset 'dy' (it has: nominal)" in err


@pytest.mark.parametrize("payload", ["unknown_name", "not_json"])
def test_bad_correction_payload_or_name(payload, real, tmp_path, capsys):
    config = yaml.safe_load(_preprocessed(real, capsys).read_text())
    if payload == "unknown_name":
        config["corrections"]["pileup"]["name"] = "no_such_correction"
        message = r"no correction 'no_such_correction' in '.*demo\.json\.gz'.*; available: "
    else:
        (tmp_path / "bad.json").write_text('{"schema_version": 2, "corrections": [')
        config["corrections"]["pileup"]["file"] = str(tmp_path / "bad.json")
        message = r"cannot read correction payload '.*bad\.json'"
    Path("bad.yaml").write_text(yaml.safe_dump(config))
    code, err = cli(capsys, "analyze", "--config", "bad.yaml", "--dataset", "dy",
                    "--preprocess", "pre.json", "--output", "an.json")  # fmt: skip
    refused((code, err), message)


def test_non_writable_output_is_named(real, capsys):
    config = _preprocessed(real, capsys)
    Path("results").write_text("a file where a folder should be\n")
    code, err = cli(capsys, "analyze", "--config", config, "--dataset", "dy",
                    "--preprocess", "pre.json", "--output", "results/an.json")  # fmt: skip
    refused((code, err), "cannot access 'results'.*writable")


@pytest.mark.parametrize("damage", ["truncated", "altered", "foreign"])
@pytest.mark.parametrize("command", ["merge", "scale", "stack", "cutflow", "plot"])
def test_damaged_intermediate_is_detected_never_summed(command, damage, real, capsys):
    """A truncated, edited or foreign result file stops the next stage with its name."""
    config = _preprocessed(real, capsys)
    ran = _chain(capsys, config, "dy")
    assert ran["scale"][0] == 0
    target = {"merge": "an.json", "scale": "m.json"}.get(command, "s.json")
    text = Path(target).read_text()
    if damage == "truncated":
        Path(target).write_text(text[: len(text) // 2])
    elif damage == "altered":  # one digit of a bin content changed: still valid JSON
        i = text.index('"values"')
        j = next(k for k in range(i, len(text)) if text[k] in "123456789")
        Path(target).write_text(text[:j] + str(int(text[j]) % 9 + 1) + text[j + 1 :])
    else:
        Path(target).write_text(json.dumps({"format": "something else"}))
    argv = {
        "merge": ["merge", "--inputs", target, "--output", "out.json"],
        "scale": ["scale", "--config", config, "--dataset", "dy", "--input", target,
                  "--preprocess", "pre.json", "--output", "out.json"],
        "stack": ["stack", "--process", "dy", "--inputs", target, "--output", "out.json"],
        "cutflow": ["cutflow", "--region", "zmumu", "--processes", target, "--datasets", target,
                    "--output-stem", "out"],
        "plot": ["plot", "--config", config, "--region", "zmumu", "--inputs", target,
                 "--output-dir", "plots"],
    }[command]  # fmt: skip
    code, err = cli(capsys, *argv)
    refused((code, err), f"{target}.* is damaged|{target}.* is not a brewflow result")
    assert not any(Path().glob("out*"))
    assert not Path("plots").exists()


def test_damaged_inventory_is_detected(real, capsys):
    config = _preprocessed(real, capsys)
    text = Path("pre.json").read_text()
    Path("pre.json").write_text(text.replace('"entries": 40', '"entries": 41', 1))
    code, err = cli(capsys, "analyze", "--config", config, "--dataset", "dy",
                    "--preprocess", "pre.json", "--output", "an.json")  # fmt: skip
    refused((code, err), "brewflow inventory 'pre.json' is damaged")


# --- brewflow adl --------------------------------------------------------------------------


def _without_met(shared: Path, out: Path) -> Path:
    """Jets, muons and electrons of nano_dy.root, no MET: a file the ADL queries cannot use."""
    import awkward as ak

    with uproot.open(shared / "nanoaod" / "nano_dy.root") as f:
        tree = f["Events"]
        collections = {}
        for name in ("Jet", "Muon", "Electron"):
            arrays = tree.arrays(filter_name=f"{name}_*", how=dict)
            collections[name] = ak.zip({k[len(name) + 1 :]: v for k, v in arrays.items()})
    with uproot.recreate(out) as f:
        f.mktree("Events", {k: v.type for k, v in collections.items()}).extend(collections)
    return out


@pytest.mark.parametrize("kind", ["truncated", "not_root", "no_events", "no_met_first",
                                  "no_met_second"])  # fmt: skip
def test_adl_on_bad_files_exits_with_one_line(kind, shared_data, tmp_path, capsys):
    good = str(shared_data / "nanoaod" / "nano_dy.root")
    if kind.startswith("no_met"):
        bad = _without_met(shared_data, tmp_path / "no_met.root")
        files = [bad, good] if kind == "no_met_first" else [good, bad]
        message = r"no_met\.root.*(MET|lacks a branch)"
    else:
        bad = globals()[kind](shared_data, tmp_path / f"{kind}.root")
        files = [good, bad]
        message = {"no_events": "no tree 'Events'"}.get(kind, "not a readable ROOT file")
    code, err = cli(capsys, "adl", *files, "--output", tmp_path / "adl.json")
    refused((code, err), message)
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "adl.json").exists()
    with pytest.raises(InputError):  # --debug: the exception itself, for a traceback
        main(["--debug", "adl", *map(str, files), "--output", str(tmp_path / "adl.json")])


def test_adl_on_the_empty_file_succeeds(shared_data, tmp_path, capsys):
    out = tmp_path / "adl.json"
    code, _ = cli(capsys, "adl", shared_data / "nanoaod" / "nano_dy_empty.root", "--output", out)
    assert code == 0
    assert json.loads(out.read_text())["events"] == 0


def test_unexpected_errors_are_one_line_without_debug(tmp_path, capsys, monkeypatch):
    import brewflow.adl

    monkeypatch.setattr(brewflow.adl, "run", lambda *a, **k: 1 / 0)
    (tmp_path / "x.root").write_bytes(b"")
    code, err = cli(capsys, "adl", tmp_path / "x.root", "--output", tmp_path / "o.json")
    assert code == 1
    assert "ZeroDivisionError" in err
    assert "--debug" in err


def test_config_error_class_is_raised_for_the_library_user(real):
    """The library raises the same errors the command line prints (here for a bad key)."""
    config = _base(real)
    config["stepsize"] = 10
    with pytest.raises(ConfigError, match="stepsize"):
        validate(config)


def test_adl_refuses_runaway_combinatorics_naming_the_file(shared_data, tmp_path, capsys,
                                                           monkeypatch):  # fmt: skip
    """An event with more trijets than the bound: one line naming the file and the bound."""
    from brewflow import kinematics

    monkeypatch.setattr(kinematics, "MAX_COMBINATIONS", 10)  # real events with 6+ jets exceed it
    good = str(shared_data / "nanoaod" / "nano_dy.root")
    code, err = cli(capsys, "adl", good, "--scheduler", "sync", "--output", tmp_path / "a.json")
    refused((code, err), rf"file '{good}': event \d+ of a chunk has \d+ objects: C\(\d+, 3\)")
    assert "MAX_COMBINATIONS (10)" in err
    assert not (tmp_path / "a.json").exists()


def _raising(error: BaseException):
    def run(*args, **kwargs):
        raise error

    return run


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (  # a disk fills while writing: the error carries no path
            OSError(28, "No space left on device"),
            r"cannot write '.*o\.json': no space left on the device; free some space",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            r"network error '.*o\.json': .*Connection refused; check that the server is up",
        ),
        ("model", r"error: model 'bdt\.ubj' expects 6 features, got 5$"),
        ("scheduler", r"cannot connect to the dask scheduler 'tcp://127\.0\.0\.1:1'"),
    ],
    ids=["disk_full", "connection", "model_error", "scheduler_unreachable"],
)
def test_error_messages_name_what_failed(error, message, tmp_path, capsys, monkeypatch):
    """Regression (issue 16.13): a full disk gave no path, an unreachable scheduler advice
    about disk space, a model error exit 1 as "unexpected"."""
    import brewflow.adl
    from brewflow.inference import ModelError
    from brewflow.jobs.execution import SchedulerError

    if error == "model":
        error = ModelError("model 'bdt.ubj' expects 6 features, got 5")
    elif error == "scheduler":
        error = SchedulerError(
            "cannot connect to the dask scheduler 'tcp://127.0.0.1:1' (config key 'scheduler' "
            "or $BREWFLOW_SCHEDULER): timed out; is `brewflow cluster` still running?"
        )
    monkeypatch.setattr(brewflow.adl, "run", _raising(error))
    (tmp_path / "x.root").write_bytes(b"")
    err = refused(cli(capsys, "adl", tmp_path / "x.root", "--output", tmp_path / "o.json"),
                  message)  # fmt: skip
    assert "disk" not in err or "space" in message
    assert len(err.strip().splitlines()) == 1


def test_unreachable_scheduler_is_a_scheduler_error(monkeypatch):
    from brewflow.jobs import execution
    from brewflow.jobs.execution import SchedulerError, connect

    monkeypatch.setattr(execution, "CONNECT_TIMEOUT", "2s")
    refused = pytest.raises(SchedulerError, match=r"dask scheduler 'tcp://127\.0\.0\.1:9'")
    with refused, connect("tcp://127.0.0.1:9", workers=1):
        pass


def test_every_user_facing_error_is_a_brewflow_error():
    from brewflow.config import ConfigError
    from brewflow.corrections import CorrectionError
    from brewflow.errors import BrewflowError
    from brewflow.histograms import FillLengthError
    from brewflow.inference import ModelError
    from brewflow.jobs.execution import SchedulerError
    from brewflow.kinematics import CombinatoricsError
    from brewflow.lumimask import LumiMaskError
    from brewflow.nanoevents.reader import ChunkReadError
    from brewflow.results.documents import DamagedFileError, NonFiniteError

    classes = [ConfigError, CorrectionError, SchedulerError, FillLengthError, ModelError,
               CombinatoricsError, LumiMaskError, ChunkReadError, DamagedFileError,
               NonFiniteError, InputError]  # fmt: skip
    assert all(issubclass(c, BrewflowError) for c in classes)
