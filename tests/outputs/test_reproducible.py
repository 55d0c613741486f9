"""One build time for every date written into a file: SOURCE_DATE_EPOCH, else a fixed date."""

from __future__ import annotations

import datetime
import uuid

import numpy as np
import pytest
import uproot

from brewflow.outputs import plots
from brewflow.reproducible import build_time, fixed_root_clock
from tests.helpers import make_result


def test_build_time_follows_source_date_epoch(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert build_time() == datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert build_time() == datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH='yesterday'"):
        build_time()


def _write(path, stamp):
    path.parent.mkdir(exist_ok=True)
    with fixed_root_clock(), uproot.recreate(path, uuid_function=lambda: stamp) as f:
        f["h"] = np.histogram([1.0, 2.0, 2.5], bins=3, range=(0, 3))
        f.mktree("t", {"x": np.float32}).extend({"x": np.arange(5, dtype=np.float32)})


def test_root_files_written_twice_are_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    stamp = uuid.uuid5(uuid.NAMESPACE_URL, "test")
    first, second = tmp_path / "1" / "a.root", tmp_path / "2" / "a.root"
    _write(first, stamp)
    _write(second, stamp)
    assert first.read_bytes() == second.read_bytes()
    with uproot.open(first) as f:
        assert f["t"]["x"].array(library="np").tolist() == [0, 1, 2, 3, 4]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")  # another build time, other bytes
    _write(tmp_path / "3" / "a.root", stamp)
    assert (tmp_path / "3" / "a.root").read_bytes() != first.read_bytes()


def test_pdf_dates_follow_source_date_epoch(tmp_path, monkeypatch):
    mc = make_result("a", "nominal", [0.5, 1.5], [1.0, 1.0], process="a")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    plots.data_mc([mc], "x", "r", [tmp_path / "plain.pdf"], styles={}, luminosity=1.0)
    assert b"/CreationDate" not in (tmp_path / "plain.pdf").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    for name in ("a.pdf", "b.pdf"):
        plots.data_mc([mc], "x", "r", [tmp_path / name], styles={}, luminosity=1.0)
    assert b"/CreationDate (D:20231114221320Z)" in (tmp_path / "a.pdf").read_bytes()
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
