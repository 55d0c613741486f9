from __future__ import annotations

import numpy as np
import pytest
import uproot

from brewflow.config import validate
from brewflow.jobs.preprocess import InputError, inspect_file, preprocess


def test_entries_and_sum_of_weights(demo_set):
    config = validate(demo_set["config"])
    inventory = preprocess(config, "dy")
    files = config["datasets"]["dy"]["files"]
    assert [f["path"] for f in inventory["files"]] == files
    weights = np.concatenate(
        [uproot.open(f)["Events"]["genWeight"].array(library="np") for f in files]
    ).astype(np.float64)
    assert inventory["entries"] == len(weights)
    assert inventory["sumw"] == pytest.approx(weights.sum(), rel=1e-12)
    assert all(len(f["uuid"]) == 36 for f in inventory["files"])
    assert "sumw" not in preprocess(config, "data")


def test_bad_inputs_are_named(tmp_path, demo_set):
    junk = tmp_path / "junk.root"
    junk.write_bytes(b"not a root file")
    with pytest.raises(
        InputError, match=r"dataset 'x', file '.*junk\.root': not a readable ROOT file"
    ):
        inspect_file(str(junk), "Events", is_data=True, dataset="x")
    data_file = demo_set["config"]["datasets"]["data"]["files"][0]
    with pytest.raises(InputError, match="no tree 'Tree'"):
        inspect_file(data_file, "Tree", is_data=True, dataset="x")
    with pytest.raises(InputError, match=r"without a 'genWeight'.*is_data: true"):
        inspect_file(data_file, "Events", is_data=False, dataset="x")


def test_chunks_follow_cluster_boundaries():

    from brewflow.jobs.preprocess import chunks

    clusters = [0, 10, 20, 30, 45, 50, 100, 101]
    split = [[50, 66], [66, 83], [83, 100]]  # the 50-entry cluster in 3 even parts
    assert chunks(clusters, 20) == [[0, 20], [20, 45], [45, 50], *split, [100, 101]]
    assert chunks(clusters, 1000) == [[0, 101]]
    quarters = [[50 + 50 * i // 4, 50 + 50 * (i + 1) // 4] for i in range(4)]
    assert chunks(clusters, 15) == [[0, 20], [20, 45], [45, 50], *quarters, [100, 101]]
    assert chunks([0, 1500], 700) == [[0, 500], [500, 1000], [1000, 1500]]  # split evenly
    assert chunks([0, 0], 10) == []  # an empty tree has no chunk
    cuts = [c for chunk in chunks(clusters, 7) for c in chunk]
    assert set(clusters) <= set(cuts)  # never across a cluster boundary


def test_inventory_records_cluster_aligned_chunks(tmp_path):
    import itertools

    import uproot

    from brewflow.demo.generate import generate_mc
    from brewflow.jobs.preprocess import inspect_file

    path = str(tmp_path / "three_clusters.root")
    generate_mc("ttbar", [path], 25_000, seed=3)  # clusters [0, 10000, 20000, 25000]
    record = inspect_file(path, "Events", is_data=False, dataset="ttbar", step_size=15_000)
    boundaries = set(uproot.open(path)["Events"].common_entry_offsets())
    assert len(boundaries) == 4
    assert record["chunks"] == [[0, 20_000], [20_000, 25_000]]
    assert record["chunk_size"] == 15_000
    assert record["chunks"][0][0] == 0
    assert record["chunks"][-1][1] == record["entries"]
    for (a, b), (c, _) in itertools.pairwise(record["chunks"]):
        assert b == c
        assert b in boundaries
        assert b - a >= 15_000


def test_groups_hold_every_chunk_once_in_order():
    from brewflow.results.inventory import group_chunks

    files = [
        {"path": "a.root", "entries": 25, "chunks": [[0, 10], [10, 20], [20, 25]]},
        {"path": "empty.root", "entries": 0, "chunks": []},
        {"path": "b.root", "entries": 7, "chunks": [[0, 7]]},
    ]
    flat = [("a.root", 0, 10), ("a.root", 10, 20), ("a.root", 20, 25), ("empty.root", 0, 0),
            ("b.root", 0, 7)]  # fmt: skip
    for size, expected in [(None, 1), (1, 4), (15, 2), (21, 2), (1000, 1)]:
        parts = group_chunks(files, size)
        assert len(parts) == expected
        assert [(f["path"], a, b) for g in parts for f in g for a, b in f["chunks"]] == flat
        events = [sum(b - a for f in g for a, b in f["chunks"]) for g in parts]
        assert all(n >= (size or 0) for n in events[:-1])  # only the last may be smaller
    assert group_chunks(files, 15)[1][0]["entries"] == 25  # records keep the file's facts


def test_inventory_is_cached_per_file_until_the_file_changes(tmp_path, demo_set, monkeypatch):
    import os

    from brewflow.jobs import preprocess as P

    config = validate(demo_set["config"])
    first = P.preprocess(config, "dy", cache=tmp_path / "cache")
    calls = []
    monkeypatch.setattr(P, "inspect_file", lambda path, *a, **k: calls.append(path) or {})
    assert P.preprocess(config, "dy", cache=tmp_path / "cache") == first
    assert calls == []  # every file reused
    changed = config["datasets"]["dy"]["files"][1]
    os.utime(changed, ns=(0, os.stat(changed).st_mtime_ns + 1))
    with pytest.raises(KeyError):  # the changed file was inspected again (by the stub)
        P.preprocess(config, "dy", cache=tmp_path / "cache")
    assert calls == [changed]


def _with_weights(path, weights) -> str:
    """A MC file of ``len(weights)`` events whose genWeight is ``weights`` (several clusters)."""
    with uproot.recreate(path) as f:
        f.mktree("Events", {"genWeight": np.float32})
        for start in range(0, len(weights), 4):
            f["Events"].extend({"genWeight": np.asarray(weights[start : start + 4], np.float32)})
    return str(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_genweight_names_file_and_entries(bad, tmp_path, demo_set):
    """Regression (issue 16.2): a NaN genWeight made every MC histogram NaN, an infinite one
    the scale factor 0 (the dataset vanished), exit code 0 both times."""
    weights = [1.0] * 10
    weights[5] = weights[7] = bad
    path = _with_weights(tmp_path / "bad.root", weights)
    with pytest.raises(
        InputError,
        match=rf"dataset 'dy', file '.*bad\.root': genWeight is {bad} at 2 entries in "
        r"entries \[5, 8\) \(first: entry 5\)",
    ):
        inspect_file(path, "Events", is_data=False, dataset="dy")
    config = validate(demo_set["config"])
    config["datasets"]["dy"]["files"] = [*config["datasets"]["dy"]["files"], path]
    with pytest.raises(InputError, match=r"bad\.root': genWeight is .*on_bad_file: skip"):
        preprocess(config, "dy")
    config["datasets"]["dy"]["on_bad_file"] = "skip"  # skipped and recorded, never summed
    inventory = preprocess(config, "dy")
    assert [s["path"] for s in inventory["skipped"]] == [path]
    assert "genWeight is" in inventory["skipped"][0]["reason"]
    assert np.isfinite(inventory["sumw"])
    assert inventory["sumw"] == pytest.approx(sum(f["sumw"] for f in inventory["files"]))
