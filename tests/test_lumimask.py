"""Golden-JSON masks against an explicit loop over the certified ranges."""

from __future__ import annotations

import json

import awkward as ak
import dask_awkward as dak
import numpy as np
import pytest

from brewflow.lumimask import LumiMask
from brewflow.nanoevents import eager_events, lazy_events

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
