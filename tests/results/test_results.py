from __future__ import annotations

import json

import numpy as np
import pytest

from brewflow.results.arithmetic import combine_process, merge_systematics, scale
from brewflow.results.ledger import add_chunks, event_ledger
from brewflow.results.model import load, save
from tests.helpers import make_result as _result


def test_save_load_round_trip_is_exact(tmp_path):
    r = _result("d", "nominal", [0.5, 1.5, 2.5], [0.1, 0.2, 0.30000000000000004])
    save(r, tmp_path / "r.json")
    back = load(tmp_path / "r.json")
    assert back.dataset == "d"
    assert back.cutflows == {"r": ["c1"]}
    for name in r.histograms:
        np.testing.assert_array_equal(
            back.histograms[name].view(flow=True), r.histograms[name].view(flow=True)
        )
    text = (tmp_path / "r.json").read_text()
    assert "pickle" not in text
    assert json.loads(text)["format"] == "brewflow-result"
    save(back, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == text  # deterministic bytes


def test_load_refuses_foreign_files(tmp_path):
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a brewflow result"):
        load(tmp_path / "x.json")
    with pytest.raises(ValueError, match="cannot read"):
        load(tmp_path / "missing.json")


def test_merge_scale_and_cutflow():
    nominal = _result("d", "nominal", [0.5, 1.5, 2.5], [1.0, 2.0, 3.0])
    up = _result("d", "sUp", [0.5, 1.5, 2.5], [1.5, 2.5, 3.5])
    merged = merge_systematics([up, nominal])
    assert merged.systematics == ["nominal", "sUp"]
    scaled = scale(merged, 2.0, xsec=1.0)
    assert scaled.meta["scale_factor"] == 2.0
    h = scaled.histograms["x"][{"region": "r", "systematic": "sUp"}]
    np.testing.assert_allclose(h.values(), [3.0, 5.0, 7.0])
    np.testing.assert_allclose(h.variances(), [4 * 1.5**2, 4 * 2.5**2, 4 * 3.5**2])
    flow = scaled.cutflow("r", "nominal")
    assert flow["cuts"] == ["initial", "c1"]
    assert flow["events"] == [3, 2]  # counts are not scaled
    assert flow["sumw"] == [12.0, 10.0]


def test_stack_uses_nominal_where_a_dataset_has_no_variation():
    a = merge_systematics(
        [_result("a", "nominal", [0.5], [1.0]), _result("a", "sUp", [0.5], [2.0])]
    )
    b = _result("b", "nominal", [1.5], [5.0])
    total = combine_process([a, b], "p")
    assert total.systematics == ["nominal", "sUp"]
    np.testing.assert_allclose(
        total.histograms["x"][{"region": "r", "systematic": "sUp"}].values(), [2.0, 5.0, 0.0]
    )
    np.testing.assert_allclose(
        total.histograms["x"][{"region": "r", "systematic": "nominal"}].values(), [1.0, 5.0, 0.0]
    )
    assert total.meta["datasets"] == ["a", "b"]


def test_stack_refuses_mixing_data_and_mc():
    with pytest.raises(ValueError, match="mixes data and MC"):
        combine_process(
            [_result("a", "nominal", [1], [1]), _result("b", "nominal", [1], [1], is_data=True)],
            "p",
        )


def _part(x, w, chunks):
    r = _result("d", "nominal", x, w)
    r.meta.update({"events": sum(b - a for s in chunks.values() for a, b in s), "chunks": chunks})
    return r


def test_chunk_groups_add_exactly_and_never_twice():
    from brewflow.results.ledger import check_complete

    first = _part([0.5, 1.5], [1.0, 2.0], {"f.root": [[0, 10]]})
    second = _part([1.5, 2.5], [0.25, 3.0], {"f.root": [[10, 15]], "g.root": [[0, 5]]})
    total = add_chunks([first, second])
    h = total.histograms["x"][{"region": "r", "systematic": "nominal"}]
    np.testing.assert_array_equal(h.values(), [1.0, 2.25, 3.0])
    np.testing.assert_array_equal(h.variances(), [1.0, 4.0 + 0.0625, 9.0])
    assert total.cutflow("r")["events"] == [4, 3]  # integer counts add
    assert total.meta["events"] == 20
    assert total.meta["chunks"] == {"f.root": [[0, 10], [10, 15]], "g.root": [[0, 5]]}
    files = [{"path": "f.root", "entries": 15}, {"path": "g.root", "entries": 5}]
    inventory = {"is_data": True, "files": files}
    check_complete(total, inventory)
    with pytest.raises(ValueError, match=r"'f.root' entries \[10, 15\) were not processed"):
        check_complete(first, {"is_data": True, "files": files[:1]})
    overlapping = _part([0.5], [1.0], {"f.root": [[5, 12]]})
    with pytest.raises(ValueError, match=r"'f.root' entries \[5, 12\) are in both a and c"):
        add_chunks([first, second, overlapping], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"'g\.root' is not in the dataset's inventory"):
        check_complete(total, {"is_data": True, "files": files[:1]})


def test_ledger_accounts_for_every_event_read_or_skipped():
    """A skipped chunk is recorded with its reason; the sums of genWeight give the fraction;
    an event neither read nor skipped, or both, is an error."""
    from brewflow.results.ledger import describe

    read = _part([0.5], [1.0], {"f.root": [[0, 10]], "g.root": [[0, 5]]})
    read.meta["sumw_read"] = 30.0
    skipped = _part([], [], {"f.root": []})
    skipped.meta["skipped"] = [{"path": "f.root", "start": 10, "stop": 15, "reason": "damaged"}]
    skipped.meta["sumw_read"] = 0.0
    total = add_chunks([read, skipped], ["a", "b"])
    files = [{"path": "f.root", "entries": 15}, {"path": "g.root", "entries": 5}]
    inventory = {"is_data": False, "sumw": 40.0, "files": files, "skipped": []}
    book = event_ledger(total, inventory)
    assert not book["complete"]
    assert book["files"] == {"expected": 2, "read": 1, "partly_read": 1, "skipped": 0}
    assert book["chunks"] == {"expected": 3, "read": 2, "skipped": 1}
    assert book["events"] == {"expected": 20, "read": 15, "skipped": 5}
    assert book["sumw"] == {"all": 40.0, "read": 30.0}
    assert book["fraction"] == 0.75
    assert book["skipped"] == skipped.meta["skipped"]
    assert describe(book) == (
        "1/2 files read, 1 partly, 15/20 events, 75.0% of the sum of genWeight"
    )
    # a file unreadable at preprocessing: events unknown, counted as an average file
    unreadable = {**inventory, "skipped": [{"path": "h.root", "reason": "truncated"}]}
    assert event_ledger(total, unreadable)["fraction"] == pytest.approx(0.75 * 2 / 3)
    with pytest.raises(ValueError, match=r"'f.root' entries \[10, 15\) were not processed"):
        event_ledger(read, inventory)  # the skipped chunk is not in this result at all
    twice = _part([], [], {"f.root": [[10, 15]]})
    with pytest.raises(ValueError, match=r"\[10, 15\) are in both b \(skipped\) and c"):
        add_chunks([read, skipped, twice], ["a", "b", "c"])


def test_partial_note_names_each_partial_dataset():
    from brewflow.results.ledger import partial_note

    a, b = _result("a", "nominal", [0.5], [1.0]), _result("b", "nominal", [0.5], [1.0])
    assert partial_note([a, b]) == ""
    a.meta["fraction"] = 0.931
    assert partial_note([a, b]) == "partial input (allow_partial): a 93.1%"


def test_checksum_detects_truncated_and_altered_files(tmp_path):
    from brewflow.results.documents import DamagedFileError

    path = tmp_path / "r.json"
    save(_result("d", "nominal", [0.5, 1.5], [1.0, 2.0]), path)
    text = path.read_text()
    assert json.loads(text)["checksum"].startswith("sha256:")  # still plain JSON
    assert load(path).histograms["x"].sum().value == 3.0
    path.write_text(text.replace('"version": 2', '"version": 2 '))  # same JSON, other bytes
    with pytest.raises(DamagedFileError, match="checksum mismatch"):
        load(path)
    path.write_text(text[:-50])
    with pytest.raises(DamagedFileError, match=r"r\.json' is damaged \(truncated or altered"):
        load(path)


def test_sweep_removes_only_temporary_files(tmp_path):
    from brewflow.files import atomic_write, sweep_temporary

    atomic_write(tmp_path / "merge" / "dy.json", "{}\n")
    stale = [tmp_path / "merge" / ".dy.json.abc123.tmp", tmp_path / "plots" / ".mll.tmp.png"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    killed_skim = tmp_path / "skim" / "zmumu" / ".dy.tmp"  # regression (issue 16.12)
    killed_skim.mkdir(parents=True)
    (killed_skim / "part0.parquet").write_text("half")
    (killed_skim / ".part1.parquet.x.tmp").write_text("half")
    assert sorted(sweep_temporary(tmp_path)) == sorted([*stale, killed_skim])
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["dy.json"]
    assert not killed_skim.exists()


def test_non_finite_bins_and_scale_factors_are_refused(tmp_path):
    """Regression (issue 16.2): NaN bins or a NaN/inf scale factor were written with exit 0."""
    from brewflow.results.documents import NonFiniteError

    good = _result("dy", "nominal", [0.5, 1.5], [1.0, 2.0])
    for factor in (np.nan, np.inf):
        with pytest.raises(NonFiniteError, match=r"dataset 'dy': scale factor (nan|inf)"):
            scale(good, factor, xsec=1.0)
    bad = _result("dy", "nominal", [0.5, 1.5], [1.0, np.nan])
    target = tmp_path / "dy.json"
    with pytest.raises(
        NonFiniteError, match=r"histogram 'x' \(region 'r', systematic 'nominal'\) has 1 non"
    ):
        save(bad, target)
    assert not target.exists()  # nothing that looks complete
    good.meta["sumw"] = float("nan")
    with pytest.raises(NonFiniteError, match="not written: a number in it is NaN"):
        save(good, target)
    assert not target.exists()


def test_one_file_in_two_datasets_of_a_process_is_refused():
    """Regression (issue 16.3): a copy of one file (same ROOT UUID, another name) in two
    datasets of one process doubled its events in the stack."""
    from brewflow.nanoevents.inputs import InputError

    a = _result("dy_a", "nominal", [0.5], [1.0])
    b = _result("dy_b", "nominal", [1.5], [1.0])
    a.meta["provenance"] = {"inputs": {"a/x.root": {"size": 1, "uuid": "u-1"}}}
    b.meta["provenance"] = {"inputs": {"b/y.root": {"size": 1, "uuid": "u-2"}}}
    assert combine_process([a, b], "dy").histograms["x"].sum().value == 2.0
    b.meta["provenance"]["inputs"]["copy/x.root"] = {"size": 1, "uuid": "u-1"}
    with pytest.raises(
        InputError, match=r"dataset 'dy_b' reads 'copy/x\.root' and dataset 'dy_a' reads 'a/x"
    ):
        combine_process([a, b], "dy")


def test_a_loaded_result_gives_its_cutflow_without_building_histograms(tmp_path):
    """A table job reads the cutflows from the file's JSON (no histogram is built, ``hist`` is
    not needed): the same numbers as from the built histograms."""
    from brewflow.results.model import CUTFLOW

    rng = np.random.default_rng(3)
    x, w = rng.uniform(0, 3, 500), rng.normal(1.0, 0.3, 500)
    merged = merge_systematics(
        [_result("d", s, x, w * k) for s, k in (("nominal", 1.0), ("sUp", 1.1))]
    )
    save(merged, tmp_path / "r.json")
    lazy, built = load(tmp_path / "r.json"), load(tmp_path / "r.json")
    built.histograms[CUTFLOW]
    assert lazy.histograms.encoded(CUTFLOW) is not None
    assert lazy.systematics == built.systematics == ["nominal", "sUp"]
    for systematic in ("nominal", "sUp"):
        assert lazy.cutflow("r", systematic) == built.cutflow("r", systematic)
    assert lazy.histograms.encoded(CUTFLOW) is not None  # still not built
    assert lazy.cutflow("r")["events"][0] == 500


def test_a_complete_ledger_verifies_the_inventory_sum_of_weights():
    """Regression (issue 27.2): a preprocess record is a hint: one forged with a wrong sum of
    genWeight (and a valid checksum) would normalise the dataset wrongly. When every event
    was read, the sum of genWeight of the events read (computed from the files) must equal
    the inventory's."""
    from brewflow.errors import InputError

    read = _part([0.5], [1.0], {"f.root": [[0, 15]]})
    read.meta["sumw_read"] = 40.0
    files = [{"path": "f.root", "entries": 15}]
    inventory = {"is_data": False, "sumw": 40.0 * (1 + 1e-12), "files": files, "skipped": []}
    assert event_ledger(read, inventory)["sumw"]["read"] == 40.0  # summation order: fine
    with pytest.raises(InputError, match=r"sum of genWeight of the events read \(40\) is not"):
        event_ledger(read, {**inventory, "sumw": 20.0})
