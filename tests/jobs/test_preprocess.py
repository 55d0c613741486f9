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


# --- issue 27.2: the per-file record cache is a hint, verified against the file --------------

SIZE = 60_000  # bytes: every file image below, padded (ROOT ignores bytes past its fEND)


def _weights(n: int) -> np.ndarray:
    return np.linspace(0.5, 1.5, n, dtype=np.float32)


def _image(folder, n: int) -> bytes:
    """A MC file of ``n`` events with genWeight ``_weights(n)``, padded to SIZE bytes."""
    path = folder / f"image-{n}.root"
    with uproot.recreate(path) as f:
        f.mktree("Events", {"genWeight": np.float32}).extend({"genWeight": _weights(n)})
    data = path.read_bytes()
    assert len(data) < SIZE
    return data + b"\0" * (SIZE - len(data))


def _mc_config(demo_set, path) -> dict:
    import copy

    config = copy.deepcopy(demo_set["config"])
    config["datasets"]["dy"]["files"] = [str(path)]
    return validate(config)


def _only_entry(folder):
    (entry,) = folder.glob("*.json")
    return entry


@pytest.mark.parametrize(("first", "second"), [(200, 400), (400, 200)])
def test_a_file_rewritten_in_place_with_its_mtime_set_back_is_inspected_again(
    first, second, tmp_path, demo_set
):
    """Regression (issue 27.2): the record cached by (path, size, mtime) was reused for a file
    rewritten in place with its mtime set back: the inventory had the old entries."""
    import os
    import time

    path = tmp_path / "mc.root"
    path.write_bytes(_image(tmp_path, first))
    config = _mc_config(demo_set, path)
    assert preprocess(config, "dy", cache=tmp_path / "cache")["entries"] == first
    before = os.stat(path)
    time.sleep(0.05)  # past the kernel's timestamp granularity
    with open(path, "r+b") as handle:
        handle.write(_image(tmp_path, second))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns)  # fmt: skip
    inventory = preprocess(config, "dy", cache=tmp_path / "cache")
    assert inventory["entries"] == second
    assert inventory["files"][0]["chunks"] == [[0, second]]
    assert inventory["sumw"] == pytest.approx(float(_weights(second).astype(np.float64).sum()))


def _halve(record: dict) -> None:
    record["entries"] //= 2


def _halve_consistently(record: dict) -> None:
    record["entries"] //= 2
    record["chunks"] = [[0, record["entries"]]]


def _other_uuid(record: dict) -> None:
    record["uuid"] = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("edit", "fix_checksum"),
    [(_halve, False), (_halve_consistently, False), (_halve, True), (_other_uuid, True)],
)
def test_a_record_edited_by_hand_is_a_miss(edit, fix_checksum, tmp_path, demo_set, monkeypatch):
    """Regression (issue 27.2): a cached record edited by hand (entries halved) was trusted. A
    broken checksum, or a record that contradicts itself or its file's header, is a miss."""
    from brewflow.jobs import preprocess as P
    from tests.helpers import forge_cache_entry

    path = tmp_path / "mc.root"
    path.write_bytes(_image(tmp_path, 400))
    config = _mc_config(demo_set, path)
    first = preprocess(config, "dy", cache=tmp_path / "cache")
    forge_cache_entry(_only_entry(tmp_path / "cache"), edit, fix_checksum=fix_checksum)
    calls = []
    inspect = P.inspect_file
    monkeypatch.setattr(P, "inspect_file", lambda *a, **k: calls.append(a) or inspect(*a, **k))
    again = preprocess(config, "dy", cache=tmp_path / "cache")
    assert len(calls) == 1  # inspected again
    assert again["files"] == first["files"]
    assert again["entries"] == 400
    assert preprocess(config, "dy", cache=tmp_path / "cache")["files"] == first["files"]
    assert len(calls) == 1  # written again: reused


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_a_forged_record_is_refused_by_the_analyze_preflight_then_dropped(
    policy, tmp_path, demo_set, monkeypatch
):
    """A record forged consistently, checksum recomputed, passes every check the cache can
    make; the analyze job's preflight opens the file and finds its real entries: a named
    error (or a skip), and the record is dropped, so preprocessing again reads the file."""
    from brewflow.jobs import recordcache
    from brewflow.jobs.reading import ReadPlan, preflight
    from tests.helpers import forge_cache_entry

    monkeypatch.setattr(recordcache, "CACHE", tmp_path / "cache")
    path = tmp_path / "mc.root"
    path.write_bytes(_image(tmp_path, 400))
    config = _mc_config(demo_set, path)
    config["datasets"]["dy"]["on_bad_file"] = policy
    preprocess(config, "dy", cache=recordcache.CACHE)
    forge_cache_entry(_only_entry(recordcache.CACHE), _halve_consistently, fix_checksum=True)
    forged = preprocess(config, "dy", cache=recordcache.CACHE)["files"]
    assert forged[0]["entries"] == 200  # trusted: nothing in the cache contradicts it
    plan = ReadPlan(config, "dy", forged)
    says = "400 entries, 200 when it was preprocessed: the file changed"
    if policy == "fail":
        with pytest.raises(InputError, match=f"file '{path}': {says}.*--forcerun preprocess"):
            preflight(plan, forged)
    else:
        preflight(plan, forged)
        assert [s["path"] for s in plan.skipped] == [str(path)]
        assert says in plan.skipped[0]["reason"]
    assert not list(recordcache.CACHE.glob("*.json"))  # dropped
    assert preprocess(config, "dy", cache=recordcache.CACHE)["entries"] == 400


def test_a_chunk_of_a_changed_file_skips_the_whole_file(tmp_path, demo_set):
    """Under on_bad_file: skip, a chunk whose file has other entries than the inventory skips
    all the file's chunks (none of them is what was preprocessed); under fail, it is raised."""
    from brewflow.jobs.reading import ReadPlan
    from brewflow.nanoevents.reader import ChunkReadError, FileChangedError

    config = validate(demo_set["config"])
    files = preprocess(config, "dy")["files"]
    path = files[0]["path"]
    error = FileChangedError(f"file {path!r}, tree 'Events': has 1 entries, ...", path, 0, 500)
    with pytest.raises(ChunkReadError, match="has 1 entries"):
        ReadPlan(config, "dy", files).bad(error, path, (0, 500))
    config["datasets"]["dy"]["on_bad_file"] = "skip"
    plan = ReadPlan(config, "dy", files)
    assert len(plan.steps[path]) > 1
    expected = [(a, b) for a, b in plan.steps[path]]
    plan.bad(error, path, (0, 500))
    assert plan.steps[path] == []
    assert [(s["start"], s["stop"]) for s in plan.skipped] == expected


# --- issue 27.1: a data file of another era ----------------------------------------------------

REAL_2017_JSON = "lumi/Cert_294927-306462_13TeV_EOY2017ReReco_Collisions17_JSON.txt"


def _data_file(path, runs) -> str:
    """A data file whose events have the given ``runs`` (several clusters)."""
    runs = np.asarray(runs, dtype=np.uint32)
    with uproot.recreate(path) as f:
        f.mktree("Events", {"run": np.uint32, "luminosityBlock": np.uint32})
        for start in range(0, len(runs), 3):
            part = runs[start : start + 3]
            f["Events"].extend({"run": part, "luminosityBlock": np.ones(len(part), np.uint32)})
    return str(path)


def _data_config(demo_set, files, golden, **settings) -> dict:
    import copy

    config = copy.deepcopy(demo_set["config"])
    config["datasets"]["data"].update(files=[str(f) for f in files], lumi_mask=str(golden),
                                      **settings)  # fmt: skip
    return validate(config)


def test_data_runs_are_recorded_and_a_file_of_another_era_is_refused(tmp_path, demo_set):
    """Regression (issue 27.1): a 2017 data file in a 2018 dataset was accepted, and its events
    all dropped by the golden JSON without a word."""
    import json

    golden = tmp_path / "golden.json"
    golden.write_text(json.dumps({"315267": [[1, 100]], "320000": [[1, 5]]}))
    runs_2017 = [297050, 297050, 297051, 297100, 297101, 306460, 297050]
    other_era = _data_file(tmp_path / "run2017.root", runs_2017)
    good = _data_file(tmp_path / "run2018.root", [315267, 297050, 315267, 400000])
    empty = _data_file(tmp_path / "empty.root", [])
    inventory = preprocess(_data_config(demo_set, [good, empty], golden), "data")
    assert [f["runs"] for f in inventory["files"]] == [[297050, 315267, 400000], []]
    assert inventory["entries"] == 4  # one certified run is enough; an empty file is fine
    message = (
        rf"dataset 'data', file '{other_era}': runs 297050-306460 \(5 runs\), golden JSON "
        rf"'{golden}' certifies runs 315267-320000: is the dataset in the right era"
    )
    with pytest.raises(InputError, match=message + r".*on_bad_file: skip"):
        preprocess(_data_config(demo_set, [good, other_era], golden), "data")
    skipping = _data_config(demo_set, [good, other_era], golden, on_bad_file="skip")
    inventory = preprocess(skipping, "data", cache=tmp_path / "cache")
    assert [f["path"] for f in inventory["files"]] == [good]
    assert [s["path"] for s in inventory["skipped"]] == [other_era]
    assert "is the dataset in the right era" in inventory["skipped"][0]["reason"]
    again = preprocess(skipping, "data", cache=tmp_path / "cache")  # checked on cached records too
    assert again["skipped"] == inventory["skipped"]


def test_real_2018_data_against_the_real_2017_golden_json_is_refused(
    shared_data, demo_set, tmp_path
):
    import json

    path = shared_data / "nanoaod" / "nano_dimuon.root"
    golden = shared_data / REAL_2017_JSON
    runs = sorted({int(r) for r in uproot.open(path)["Events"]["run"].array(library="np")})
    certified = sorted(int(r) for r in json.loads(golden.read_text()))
    assert runs == [315267]
    assert not set(runs) & set(certified)
    message = (
        rf"file '{path}': run {runs[0]}, golden JSON '{golden}' certifies runs "
        rf"{certified[0]}-{certified[-1]}: is the dataset in the right era"
    )
    with pytest.raises(InputError, match=message):
        preprocess(_data_config(demo_set, [path], golden), "data")
    of_2017 = _data_file(tmp_path / "run2017.root", [297050, 297050])
    skipping = _data_config(demo_set, [of_2017, path], golden, on_bad_file="skip")
    inventory = preprocess(skipping, "data")
    assert [(f["path"], f["runs"]) for f in inventory["files"]] == [(of_2017, [297050])]
    assert [s["path"] for s in inventory["skipped"]] == [str(path)]


@pytest.mark.parametrize(("edit", "fix_checksum"), [(_halve, False), (_other_uuid, True)])
def test_a_remote_record_is_verified_against_its_replicas_header(
    edit, fix_checksum, xrootd, shared_data, tmp_path, monkeypatch
):
    """The remote inventory's cache (issue 27.2): a record edited by hand, or whose UUID is
    not the one the replica's header has now, is inspected again."""
    from brewflow.jobs import preprocess as P
    from brewflow.locations import RemoteSettings
    from tests.helpers import LFNS, forge_cache_entry

    url = xrootd.url(LFNS["nano_dy.root"], "a")
    local = uproot.open(shared_data / "nanoaod" / "nano_dy.root")
    options = {"is_data": False, "dataset": "dy", "step_size": 15, "cache": tmp_path / "cache",
               "replicas": [url], "remote": RemoteSettings(timeout=5, retries=0)}  # fmt: skip
    first = P._cached_inspect(url, "Events", **options)
    assert (first["entries"], first["uuid"]) == (local["Events"].num_entries, str(local.file.uuid))
    forge_cache_entry(_only_entry(tmp_path / "cache"), edit, fix_checksum=fix_checksum)
    calls = []
    inspect = P.inspect_file
    monkeypatch.setattr(P, "inspect_file", lambda *a, **k: calls.append(a) or inspect(*a, **k))
    assert P._cached_inspect(url, "Events", **options) == first
    assert len(calls) == 1
    assert P._cached_inspect(url, "Events", **options) == first
    assert len(calls) == 1  # written again, then reused
