from __future__ import annotations

import awkward as ak
import dask_awkward as dak
import numpy as np
import pytest
import uproot

from brewflow.nanoevents.reader import (
    eager_events,
    lazy_events,
    nanoaod_form,
    partition_sources,
)


def _columns(*arrays) -> set[str]:
    (columns,) = dak.necessary_columns(*arrays).values()
    return set(columns)


def test_form_groups_collections_singletons_and_triggers(demo_set):
    path = demo_set["config"]["datasets"]["dy"]["files"][0]
    events = eager_events(path)
    assert {"Muon", "Electron", "Jet", "MET", "HLT", "genWeight", "run", "PSWeight"} <= set(
        events.fields
    )
    assert "nMuon" not in events.fields  # the counter became the collection's offsets
    assert events.Muon.layout.content.parameter("__record__") == "Momentum4D"
    assert events.MET.layout.parameter("__record__") == "Momentum2D"
    assert set(events.Muon.fields) == {
        "pt",
        "eta",
        "phi",
        "mass",
        "charge",
        "tightId",
        "pfRelIso04_all",
    }


def test_values_equal_the_flat_branches(demo_set):
    path = demo_set["config"]["datasets"]["ttbar"]["files"][1]
    flat = uproot.open(path)["Events"].arrays(
        ["nJet", "Jet_pt", "Jet_btagDeepFlavB", "MET_pt", "HLT_IsoMu24", "PSWeight"]
    )
    events = eager_events(path)
    assert ak.to_list(ak.num(events.Jet)) == ak.to_list(flat.nJet)
    assert ak.to_list(events.Jet.pt) == ak.to_list(flat.Jet_pt)
    assert ak.to_list(events.Jet.btagDeepFlavB) == ak.to_list(flat.Jet_btagDeepFlavB)
    assert ak.to_list(events.MET.pt) == ak.to_list(flat.MET_pt)
    assert ak.to_list(events.HLT.IsoMu24) == ak.to_list(flat.HLT_IsoMu24)
    assert ak.to_list(events.PSWeight) == ak.to_list(flat.PSWeight)


def test_only_needed_columns_are_read(demo_set):
    path = demo_set["config"]["datasets"]["dy"]["files"][0]
    events = lazy_events([path], step_size=500)
    mu = events.Muon
    pairs = dak.combinations(mu[mu.pt > 20], 2, fields=["a", "b"])
    mass = (pairs.a + pairs.b).mass
    assert _columns(mass) == {"nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass"}
    assert _columns(dak.num(events.Jet)) == {"nJet"}
    assert _columns(events.HLT.IsoMu24) == {"HLT_IsoMu24"}


def test_lazy_equals_eager_and_a_loop(demo_set):
    path = demo_set["config"]["datasets"]["dy"]["files"][1]
    lazy = lazy_events({path: "Events"}, step_size=333)
    assert lazy.npartitions == 3
    eager = eager_events(path)

    def dimuon_mass(ev):
        mu = ev.Muon
        two = mu[ak.num(mu) >= 2] if not isinstance(mu, dak.Array) else mu[dak.num(mu) >= 2]
        return (two[:, 0] + two[:, 1]).mass

    lazy_mass = dimuon_mass(lazy).compute()
    eager_mass = dimuon_mass(eager)
    assert ak.to_list(lazy_mass) == ak.to_list(eager_mass)
    a = uproot.open(path)["Events"].arrays(
        ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass"], library="np"
    )
    loop = []
    for pt, eta, phi, m in zip(
        a["Muon_pt"], a["Muon_eta"], a["Muon_phi"], a["Muon_mass"], strict=True
    ):
        if len(pt) < 2:
            continue
        p = np.zeros(4)
        for k in (0, 1):
            px, py, pz = pt[k] * np.cos(phi[k]), pt[k] * np.sin(phi[k]), pt[k] * np.sinh(eta[k])
            p += [px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m[k] ** 2)]
        loop.append(np.sqrt(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2))
    np.testing.assert_allclose(ak.to_numpy(eager_mass), loop, rtol=1e-4)


def test_explicit_steps_cover_the_file(demo_set):
    path = demo_set["config"]["datasets"]["ww"]["files"][0]
    n = uproot.open(path)["Events"].num_entries
    events = lazy_events({path: "Events"}, steps={path: [(0, 100), (100, n)]})
    assert events.npartitions == 2
    assert ak.to_list(events.event.compute()) == ak.to_list(eager_events(path).event)


def test_form_of_real_run2_and_run3_nanoaod(shared_data):
    run2 = eager_events(str(shared_data / "nanoaod" / "nano_dy.root"))
    assert "fixedGridRhoFastjetAll" in run2.fields
    assert run2.Jet.layout.content.parameter("__record__") == "Momentum4D"
    assert "IsoMu24" in run2.HLT.fields
    run3 = eager_events(str(shared_data / "nanoaod" / "nano_tt_v12.root"))
    assert "fixedGridRhoFastjetAll" in run3.Rho.fields  # Rho_fixedGridRhoFastjetAll
    flat = uproot.open(shared_data / "nanoaod" / "nano_tt_v12.root")["Events"]
    assert ak.to_list(run3.Rho.fixedGridRhoFastjetAll) == ak.to_list(
        flat["Rho_fixedGridRhoFastjetAll"].array()
    )
    assert ak.to_list(run3.Jet.pt) == ak.to_list(flat["Jet_pt"].array())


def test_real_nanoaod_lazy_equals_eager(shared_data):
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    lazy = lazy_events([path], step_size=15)
    assert lazy.npartitions == 3
    jets = lazy.Jet[lazy.Jet.pt > 25]
    assert ak.to_list(jets.pt.compute()) == ak.to_list(
        eager_events(path).Jet.pt[eager_events(path).Jet.pt > 25]
    )


def test_empty_file_gives_empty_arrays(shared_data):
    path = str(shared_data / "nanoaod" / "nano_dy_empty.root")
    events = eager_events(path)
    assert len(events) == 0
    assert ak.to_list(events.Muon.pt) == []


def test_form_rejects_nothing_it_cannot_map():
    base = ak.forms.RecordForm(
        [
            ak.forms.NumpyForm("int32"),
            ak.forms.ListOffsetForm("i64", ak.forms.NumpyForm("float32")),
            ak.forms.NumpyForm("float32"),
            ak.forms.NumpyForm("float32"),
        ],
        ["nFoo", "Foo_x", "Bar_y", "plain"],
    )
    form = nanoaod_form(base)
    assert form.fields == ["plain", "Bar", "Foo"]
    assert form.content("Foo").form_key == "nFoo!counts"


def test_globs_expand_to_all_matching_files(demo_set):
    pattern = str(demo_set["directory"] / "ttbar" / "ttbar_*.root")
    events = lazy_events(pattern, step_size=10_000)
    files = demo_set["config"]["datasets"]["ttbar"]["files"]
    assert events.npartitions == len(files)
    expected = sum(uproot.open(f)["Events"].num_entries for f in files)
    assert len(events.event.compute()) == expected


def test_partitions_share_one_open_tree_and_tokens_are_cheap(demo_set, monkeypatch, tmp_path):
    import dask

    from brewflow.nanoevents import metadata, trees

    monkeypatch.setenv(metadata.CACHE_ENV, str(tmp_path / "cache"))  # never seen before
    path = demo_set["config"]["datasets"]["dy"]["files"][0]
    trees.clear()
    opened = []
    real_open = uproot.open

    def counted(*args, **options):  # the opens that parse a tree (not a header's identity)
        if isinstance(args[0], dict) or "custom_classes" in options:
            opened.append(options)
        return real_open(*args, **options)

    monkeypatch.setattr(uproot, "open", counted)
    events = lazy_events([path], step_size=200)
    assert len(opened) == 1  # the description: parsed once, then cached on disk
    assert events.npartitions > 3
    (pt,) = dask.compute(events.Muon.pt, scheduler="threads", num_workers=2)
    assert len(opened) == 2  # every partition reads through one tree of the branches read
    assert "custom_classes" in opened[1]  # parsed partially
    (again,) = dask.compute(lazy_events([path], step_size=200).Muon.pt, scheduler="sync")
    assert len(opened) == 2  # nothing parsed again
    assert ak.array_equal(again, pt)
    assert len(pt) == real_open(path)["Events"].num_entries
    assert dask.base.tokenize(lazy_events([path], step_size=200)) == dask.base.tokenize(events)
    trees.clear()


def test_a_buffer_left_out_by_projection_fails_loudly(demo_set):
    import pytest

    from brewflow.nanoevents.reader import NanoReader

    path = demo_set["config"]["datasets"]["dy"]["files"][0]
    reader = lazy_events([path]).dask.layers[lazy_events([path]).name].io_func
    assert isinstance(reader, NanoReader)
    part = reader.project_manually(frozenset({"nMuon", "Muon_pt"}))((0, 0, 10))
    assert len(part.Muon.pt) == 10
    with pytest.raises(RuntimeError, match="Muon_eta"):  # a placeholder: never read
        ak.to_list(part.Muon.eta)
    assert "Electron" not in part.fields  # collections nobody asked for are not built


def test_transient_read_errors_are_retried_then_named(demo_set, monkeypatch, caplog):
    import pytest

    from brewflow.nanoevents import trees
    from brewflow.nanoevents.reader import ChunkReadError

    path = demo_set["config"]["datasets"]["dy"]["files"][0]
    expected = uproot.open(path)["Events"]["Muon_pt"].array()
    real_open = trees.open_tree
    failures = {"left": 0}

    def flaky(p, tree, settings=None, branches=None):  # fails like a dropped network mount
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OSError("Input/output error")
        return real_open(p, tree, settings, branches)

    monkeypatch.setattr(trees, "open_tree", flaky)
    events = lazy_events([path], steps={path: [(0, 750)]}, retries=(2, 0.01))
    failures["left"] = 2
    assert ak.array_equal(events.Muon.pt.compute(scheduler="sync"), expected)
    assert caplog.text.count("Input/output error; reading again") == 2
    failures["left"] = 3  # one more failure than retries
    with pytest.raises(ChunkReadError, match=r"dy_0\.root', tree 'Events', entries \[0, 750\)"):
        events.Muon.pt.compute(scheduler="sync")


def _x_file(path, n: int) -> str:
    with uproot.recreate(path) as f:
        f.mktree("Events", {"x": "float64"}).extend({"x": np.arange(n, dtype=np.float64)})
    return str(path)


def test_a_chunk_of_a_file_with_other_entries_than_the_graph_is_a_named_error(tmp_path):
    """Issue 27.2, defence in depth: the tree's header, parsed anyway to read a chunk, says how
    many entries the file has; a graph built for others (stale inventory or cache) never reads
    part of the file (nor raises a TypeError)."""
    import pytest

    from brewflow.errors import InputError
    from brewflow.nanoevents.reader import ChunkReadError, FileChangedError

    small, large = _x_file(tmp_path / "small.root", 200), _x_file(tmp_path / "large.root", 400)
    cases = [  # (events, what the error says)
        (lazy_events([small], steps={small: [(0, 200), (200, 400)]}),
         "has 200 entries, the graph reads entries \\[200, 400\\)"),
        (lazy_events([large], steps={large: [(0, 200)]}, entries={large: 200}),
         "has 400 entries, the graph was built for 200"),
        (lazy_events([small], steps={small: [(0, 200)]}, entries={small: 400}),
         "has 200 entries, the graph was built for 400"),
    ]  # fmt: skip
    for events, says in cases:
        with pytest.raises(FileChangedError, match=f"file '.*': {says}: the file changed") as err:
            events.x.compute()
        assert isinstance(err.value, InputError)
        assert isinstance(err.value, ChunkReadError)
    with pytest.raises(FileChangedError, match="has 200 entries, the graph reads entries"):
        eager_events(small, stop=400)  # was: silently 200
    good = lazy_events([large], steps={large: [(0, 150), (150, 400)]}, entries={large: 400})
    np.testing.assert_array_equal(ak.to_numpy(good.x.compute()), np.arange(400.0))
    np.testing.assert_array_equal(ak.to_numpy(eager_events(large, start=100, stop=400).x),
                                  np.arange(100.0, 400.0))  # fmt: skip


def test_partition_sources_are_what_each_partition_reads(demo_set):
    """``partition_sources``: each partition's file and entries, in the partitions' order (the
    values equal those entries of the file); None for another collection."""
    paths = demo_set["config"]["datasets"]["ww"]["files"]
    events = lazy_events(paths, step_size=700)
    sources = partition_sources(events)
    assert sources is not None
    assert len(sources) == events.npartitions
    for i, (path, start, stop) in enumerate(sources):
        expected = uproot.open(path)["Events"]["MET_pt"].array(entry_start=start, entry_stop=stop)
        assert ak.to_list(events.MET.pt.partitions[i].compute()) == ak.to_list(expected)
    assert {path for path, _, _ in sources} == set(map(str, paths))
    assert partition_sources(dak.from_awkward(ak.Array([1, 2, 3]), npartitions=2)) is None


def test_a_step_below_one_event_is_refused(demo_set):
    path = demo_set["config"]["datasets"]["ww"]["files"][0]
    for step in (0, -5):
        with pytest.raises(ValueError, match="at least 1 event"):
            lazy_events(path, step_size=step)
