"""Golden-JSON masks against an explicit loop over the certified ranges."""

from __future__ import annotations

import json

import awkward as ak
import dask_awkward as dak
import numpy as np
import pytest

from brewflow.lumimask import LumiMask
from brewflow.nanoevents.reader import eager_events, lazy_events

GOLDEN = "Cert_294927-306462_13TeV_EOY2017ReReco_Collisions17_JSON.txt"


@pytest.fixture(scope="module")
def golden(shared_data) -> dict:
    path = shared_data / "lumi" / GOLDEN
    return {"path": path, "json": json.loads(path.read_text()), "mask": LumiMask(path)}


def _loop(certified: dict, run: int, lumi: int) -> bool:
    return any(lo <= lumi <= hi for lo, hi in certified.get(str(run), []))


def test_real_golden_json_against_a_loop(golden):
    rng = np.random.default_rng(5)
    runs = np.array([int(r) for r in golden["json"]])
    run = np.concatenate([rng.choice(runs, 4000), rng.integers(294000, 307000, 1000)])
    lumi = rng.integers(0, 1500, len(run))
    expected = [_loop(golden["json"], r, lu) for r, lu in zip(run, lumi, strict=True)]
    assert 0.1 < np.mean(expected) < 0.9  # both outcomes are exercised
    np.testing.assert_array_equal(golden["mask"](run, lumi), expected)
    lazy = golden["mask"](dak.from_awkward(ak.Array(run), npartitions=3),
                          dak.from_awkward(ak.Array(lumi), npartitions=3))  # fmt: skip
    np.testing.assert_array_equal(ak.to_numpy(lazy.compute()), expected)


def test_range_edges_are_inclusive(golden):
    run, (first, last) = (
        next(iter(golden["json"].items())),
        golden["json"][next(iter(golden["json"]))][0],
    )
    run = int(run[0])
    got = golden["mask"](np.array([run] * 4), np.array([first - 1, first, last, last + 1]))
    assert got.tolist() == [False, True, True, False]


def test_events_read_only_run_and_lumi(demo_set, tmp_path):
    path = demo_set["config"]["datasets"]["data"]["files"][0]
    eager = eager_events(path)
    runs, lumis = ak.to_numpy(eager.run), ak.to_numpy(eager.luminosityBlock)
    certificate = {str(runs[0]): [[int(lumis.min()), int(np.median(lumis))]]}
    (tmp_path / "golden.json").write_text(json.dumps(certificate))
    mask = LumiMask(tmp_path / "golden.json")
    lazy = mask.events(lazy_events([path], step_size=1000))
    (columns,) = dak.necessary_columns(lazy).values()
    assert set(columns) == {"run", "luminosityBlock"}
    expected = [_loop(certificate, r, lu) for r, lu in zip(runs, lumis, strict=True)]
    assert ak.to_list(lazy.compute()) == expected
    assert ak.to_list(mask.events(eager)) == expected
    assert 0 < sum(expected) < len(expected)


def test_clear_errors(shared_data, tmp_path, golden):
    events = eager_events(str(shared_data / "nanoaod" / "missing_luminosityBlock.root"))
    with pytest.raises(KeyError, match=r"needs the branch.*luminosityBlock"):
        golden["mask"].events(events)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"cannot read golden JSON .*bad\.json"):
        LumiMask(tmp_path / "bad.json")


BAD_GOLDEN = {
    "truncated": ('{"315267": [[1, 10], [20', r"cannot read golden JSON .*truncated or not JSON"),
    "reversed": ('{"315267": [[5, 1]]}', r"run '315267': range \[5, 1\] is reversed"),
    "empty": ("{}", "certifies no lumi block"),
    "not_a_run": ('{"Run2018A": [[1, 2]]}', r"run 'Run2018A': not a run number"),
    "not_a_range": ('{"315267": [[1, 2, 3]]}', r"\[1, 2, 3\] is not a lumi range"),
    "zero_block": ('{"315267": [[0, 2]]}', r"\[0, 2\] is not a lumi range"),
}


@pytest.mark.parametrize("case", list(BAD_GOLDEN))
def test_bad_golden_json_is_named_before_any_job(case, tmp_path, demo_set):
    """Regression (issue 16.4): a truncated golden JSON was reported as a problem of the first
    data file (so `on_bad_file: skip` skipped every good file); a reversed range certified
    nothing, silently. Both are refused by validation, naming the key and the file."""
    import copy

    from brewflow.config import ConfigError, validate
    from brewflow.lumimask import LumiMaskError

    text, message = BAD_GOLDEN[case]
    path = tmp_path / "golden.json"
    path.write_text(text)
    with pytest.raises(LumiMaskError, match=message):
        LumiMask(path)
    config = copy.deepcopy(demo_set["config"])
    data = config["datasets"]["data"]
    data.pop("generator")
    data["lumi_mask"] = str(path)
    with pytest.raises(ConfigError, match=rf"'datasets\.data\.lumi_mask': .*{message}"):
        validate(config)
