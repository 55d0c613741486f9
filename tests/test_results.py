from __future__ import annotations

import json

import numpy as np
import pytest

from brewflow.results import load, merge_systematics, save, scale, stack
from tests.conftest import make_result as _result


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
    total = stack([a, b], "p")
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
        stack(
            [_result("a", "nominal", [1], [1]), _result("b", "nominal", [1], [1], is_data=True)],
            "p",
        )


def _part(x, w, chunks):
    r = _result("d", "nominal", x, w)
    r.meta.update({"events": sum(b - a for s in chunks.values() for a, b in s), "chunks": chunks})
    return r


def test_chunk_groups_add_exactly_and_never_twice():
    from brewflow.results import add_chunks, check_complete

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
