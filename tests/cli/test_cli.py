from __future__ import annotations

import json

import numpy as np
import pytest

from brewflow.cli import main
from brewflow.results.model import load
from tests.helpers import DEMO_CONFIG


def test_validate_lists_datasets(capsys):
    assert main(["validate", str(DEMO_CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "ttbar" in out
    assert "88.29" in out
    assert "xsec [pb]" in out  # regression: "[pb]" was taken for a markup tag and dropped


def test_validate_counts_systematics_and_their_variations_apart(capsys):
    """Regression (issue 28): the "systematics" column counted the variations with the
    nominal (23, 25); it counts systematics now, the variations in their own column. The
    counts here come from the YAML by hand: a systematic applies to an MC dataset without a
    ``datasets`` list, or when the list names the dataset or its process."""
    import yaml

    raw = yaml.safe_load(DEMO_CONFIG.read_text())
    assert main(["validate", str(DEMO_CONFIG)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line.split() for line in lines if line.split()[:1] == ["dataset"])
    assert header[-2:] == ["systematics", "variations"]
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1]
            and line.split()[0] in raw["datasets"]}  # fmt: skip
    assert set(rows) == set(raw["datasets"])
    for name, spec in raw["datasets"].items():
        names = {name, spec.get("process", name)}
        applying = [s for s in raw["systematics"].values()
                    if "datasets" not in s or names & set(s["datasets"])]  # fmt: skip
        expected = 0 if spec.get("is_data") else len(applying)
        assert rows[name][-2:] == [str(expected), str(1 + 2 * expected)], name
    assert rows["ttbar_2017"][-2] == rows["ttbar"][-2] == "12"  # ps_fsr: the process top


def test_config_errors_exit_2_with_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO_CONFIG.read_text().replace("luminosity: 10.0", "luminosity: -1"))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "config key 'eras.2018.luminosity'" in err
    assert "Traceback" not in err


def test_unknown_dataset(demo_set, tmp_path, capsys):
    code = main(
        [
            "preprocess",
            "--config",
            str(demo_set["path"]),
            "--dataset",
            "nope",
            "--output",
            str(tmp_path / "p.json"),
        ]
    )
    assert code == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_stage_commands_chain(demo_set, tmp_path):
    config = str(demo_set["path"])
    pre = tmp_path / "ww.json"
    assert main(["preprocess", "--config", config, "--dataset", "ww", "--output", str(pre)]) == 0
    outputs = []
    for systematic in ("nominal", "pileupUp"):
        out = tmp_path / f"{systematic}.json"
        assert (
            main(
                [
                    "analyze",
                    "--config",
                    config,
                    "--dataset",
                    "ww",
                    "--systematic",
                    systematic,
                    "--preprocess",
                    str(pre),
                    "--output",
                    str(out),
                ]
            )
            == 0
        )
        outputs.append(str(out))
    merged = tmp_path / "merged.json"
    assert main(["merge", "--inputs", *outputs, "--output", str(merged)]) == 0
    scaled = tmp_path / "scaled.json"
    assert (
        main(
            [
                "scale",
                "--config",
                config,
                "--dataset",
                "ww",
                "--input",
                str(merged),
                "--preprocess",
                str(pre),
                "--output",
                str(scaled),
            ]
        )
        == 0
    )
    result = load(scaled)
    sumw = json.loads(pre.read_text())["sumw"]
    assert result.meta["scale_factor"] == pytest.approx(12.18 * 0.5 / sumw)
    assert result.systematics == ["nominal", "pileupUp"]


def test_all_systematics_outdir_equals_split_of_one_file(demo_set, tmp_path):
    """``analyze --all-systematics --outdir`` (the fused rule) writes one file per systematic,
    the same as ``analyze --output`` followed by ``split``."""
    config = str(demo_set["path"])
    pre = tmp_path / "ww.json"
    assert main(["preprocess", "--config", config, "--dataset", "ww", "--output", str(pre)]) == 0
    common = ["analyze", "--config", config, "--dataset", "ww", "--preprocess", str(pre)]
    assert main([*common, "--all-systematics", "--outdir", str(tmp_path / "fused")]) == 0
    assert main([*common, "--all-systematics", "--output", str(tmp_path / "all.json")]) == 0
    split = tmp_path / "split"
    assert main(["split", "--input", str(tmp_path / "all.json"), "--outdir", str(split)]) == 0
    names = sorted(p.name for p in (tmp_path / "fused").glob("*.json"))
    assert names == sorted(p.name for p in split.glob("*.json"))
    assert "jesUp.json" in names
    assert "btag_cferr1Down.json" in names
    for name in names:
        a, b = load(tmp_path / "fused" / name), load(split / name)
        assert a.systematics == b.systematics == [name.removesuffix(".json")]
        for key, h in a.histograms.items():
            np.testing.assert_array_equal(h.values(flow=True), b.histograms[key].values(flow=True))
    assert main(["split", "--input", str(tmp_path / "all.json"), "--outdir", str(split),
                 "--systematic", "nope"]) != 0  # fmt: skip


def test_the_log_of_a_command_holds_no_credential():
    """The handler the command logs through (a workflow job's log file) redacts every URL's
    credentials, in messages and tracebacks (brewflow.secrets)."""
    import io
    import logging

    from brewflow.cli import log_handler

    handler = log_handler()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(io.StringIO())
    try:
        raise OSError("[ERROR] root://user:SECRETTOKEN@h.example//x.root: no such file")
    except OSError as err:
        record = logging.LogRecord("brewflow.nanoevents.remote", logging.WARNING, __file__, 1,
                                   "%s: %s", ("https://h.example/x.root?authz=SECRETTOKEN", err),
                                   (OSError, err, err.__traceback__))  # fmt: skip
    handler.handle(record)
    text = handler.stream.getvalue()
    assert "SECRETTOKEN" not in text
    assert "https://h.example/x.root?authz=***: [ERROR] root://***@h.example//x.root" in text
    assert "Traceback" in text


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, tmp_path, capsys):
    """Ctrl-C in a command (here adl's computation) says so in one line, no traceback."""
    from brewflow import adl

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(adl, "run_files", interrupted)
    assert main(["adl", "--output", str(tmp_path / "adl.json"), "x.root"]) == 130
    assert capsys.readouterr().err == "brewflow adl: interrupted\n"


ANALYZE = ["analyze", "--config", "c", "--dataset", "d", "--preprocess", "p", "--output", "o"]
ADL = ["adl", "-o", "o.json", "f.root"]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        ([*ADL, "--step-size", "0"], "--step-size: 0 is not above 0"),
        ([*ADL, "--step-size", "-5"], "--step-size: -5 is not above 0"),
        ([*ADL, "--workers", "0"], "--workers: 0 is not above 0"),
        ([*ADL, "--step-size", "1e3"], "--step-size: '1e3' is not an integer"),
        ([*ANALYZE, "--threads", "-1"], "--threads: -1 is not above 0"),
        ([*ANALYZE, "--group", "-1"], "--group: -1 is below 0"),
        ([*ANALYZE, "--progress-interval", "nan"], "--progress-interval: nan is below 0"),
        ([*ANALYZE, "--progress-interval", "-1"], "--progress-interval: -1 is below 0"),
        (["generate", "--seed", "-3"], "--seed: -3 is below 0"),
        (["cluster", "local", "--jobs", "0"], "--jobs: 0 is not above 0"),
    ],
)
def test_counts_below_one_are_usage_errors(argv, said, capsys):
    """A count, step or interval of 0 or below (a step of -5 read no event and said 0
    events) is argparse's usage error naming the option: exit 2, no traceback."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert said in err
    assert "Traceback" not in err
