"""combine inputs: the shapes file read back with uproot, and every datacard written here read
back by an independent reader (:mod:`tests.datacard_reader`) into the same yields and
nuisances as the results it was made from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import uproot

from brewflow.outputs.fit_inputs import (
    Channel,
    channels_of,
    datacard,
    fit_channels_of,
    pyhf_workspace,
    write_shapes,
)
from brewflow.results.arithmetic import merge_systematics
from tests.datacard_reader import Card, Templates, read_card, read_templates, token_columns
from tests.helpers import make_result

SIGNAL = ["sig"]


@pytest.fixture
def processes() -> list:
    sig = merge_systematics([
        make_result("s", "nominal", [0.5, 1.5], [1.0, 2.0], process="sig"),
        make_result("s", "aUp", [0.5, 1.5], [1.5, 2.0], process="sig"),
        make_result("s", "aDown", [0.5, 1.5], [0.5, 2.0], process="sig"),
    ])  # fmt: skip
    bkg = make_result("b", "nominal", [1.5, 2.5, 2.5], [3.0, 1.0, 1.0], process="bkg")
    data = make_result("d", "nominal", [0.5, 1.5, 2.5, 9.0], [1, 1, 1, 1], process="data",
                       is_data=True)  # fmt: skip
    return [data, sig, bkg]


def test_shapes_file_read_back(processes, tmp_path):
    path = tmp_path / "x.root"
    write_shapes(channels_of(processes, ["r"]), "x", path)
    with uproot.open(path) as f:
        assert sorted(f["r"].keys(cycle=False)) == [
            "bkg", "data_obs", "sig", "sig_aDown", "sig_aUp"
        ]  # fmt: skip
        np.testing.assert_allclose(f["r/sig"].values(), [1.0, 2.0, 0.0])
        np.testing.assert_allclose(f["r/sig"].variances(), [1.0, 4.0, 0.0])
        np.testing.assert_allclose(f["r/sig_aUp"].values(), [1.5, 2.0, 0.0])
        np.testing.assert_allclose(f["r/bkg"].values(), [0.0, 3.0, 2.0])
        np.testing.assert_allclose(f["r/data_obs"].values(), [1.0, 1.0, 1.0])
        assert f["r/data_obs"].values(flow=True)[-1] == 1.0  # x = 9 in the overflow
    assert not list(tmp_path.glob(".*tmp"))


def _expected_data(channel: Channel) -> np.ndarray:
    """The observation per bin of a channel, computed from its results: the data, the MC sum
    at nominal where blinded (all bins, or those a window overlaps)."""

    def values(results):
        return np.sum([r.histograms["x"][{"region": channel.region, "systematic": "nominal"}]
                       .values() for r in results], axis=0)  # fmt: skip

    mc = values([p for p in channel.processes if not p.is_data])
    data = [p for p in channel.processes if p.is_data]
    if channel.blind or not data:
        return mc
    observed = values(data)
    if channel.window is not None:
        low, high = channel.window
        edges = np.linspace(0.0, 3.0, 4)  # tests.helpers.DEFS: 3 bins on [0, 3]
        hidden = (edges[:-1] < high) & (edges[1:] > low)
        observed = np.where(hidden, mc, observed)
    return observed


def _card(
    channels: list[Channel], directory: Path, name: str = "x",
    normfactors: dict[str, list[str]] | None = None,
) -> tuple[Card, Templates]:  # fmt: skip
    """Write the shapes and the datacard of ``channels``, read the card back independently and
    check it against the results it was made from: channels and observations, one column per
    channel x MC process with the rate of its template (0 for an empty one), the signal ids,
    a shape nuisance exactly where a result has the variation (its templates those of the
    result), a free normalisation per ``normfactors`` name on its processes, autoMCStats on
    every channel, aligned columns; and against the pyhf workspace of the same channels (one
    model: staterror, normfactors, histosys where the card has them). Every datacard these
    tests write goes through here."""
    write_shapes(channels, "x", directory / f"{name}.root")
    text = datacard(channels, "x", f"{name}.root", signal=SIGNAL, normfactors=normfactors)
    (directory / f"{name}.txt").write_text(text)
    card = read_card(text)
    templates = read_templates(card, directory)
    assert card.shapes == [["*", "*", f"{name}.root", "$CHANNEL/$PROCESS",
                            "$CHANNEL/$PROCESS_$SYSTEMATIC"]]  # fmt: skip
    assert card.channels == [c.name for c in channels]
    expected_columns, expected_nuisances = [], {}
    for channel in channels:
        expected = _expected_data(channel)
        np.testing.assert_allclose(templates.data[channel.name], expected, rtol=1e-12)
        assert card.observations[channel.name] == pytest.approx(expected.sum(), rel=1e-12)
        for result in channel.processes:
            if result.is_data:
                continue
            column = (channel.name, result.process)
            expected_columns.append(column)
            h = result.histograms["x"]
            nominal = h[{"region": channel.region, "systematic": "nominal"}].values()
            np.testing.assert_allclose(templates.nominal[column], nominal, rtol=1e-12)
            for variation in result.systematics:
                if variation.endswith("Up"):
                    nuisance = variation.removesuffix("Up")
                    expected_nuisances.setdefault(nuisance, set()).add(column)
                    up, down = templates.variations[(*column, nuisance)]
                    for got, d in ((up, "Up"), (down, "Down")):
                        want = h[{"region": channel.region, "systematic": nuisance + d}].values()
                        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert sorted((b, p) for b, p, _, _ in card.columns) == sorted(expected_columns)
    for b, p, index, rate in card.columns:
        assert (index <= 0) == (p in SIGNAL), (b, p, index)
        integral = templates.rate(b, p)
        assert rate is None if integral else rate == 0.0, (b, p, rate)  # -1: the template's
    assert set(card.nuisances) == set(expected_nuisances)
    for nuisance, columns in expected_nuisances.items():
        assert card.nuisances[nuisance][0] == "shape"
        assert card.applies(nuisance) == columns, nuisance
    assert card.auto_mc_stats == {"*": (0.0, False, 1)}  # every bin's MC stat. uncertainty
    for block, count in (("observation", len(channels)), ("process", len(card.columns))):
        starts = {tuple(token_columns(line, count)) for line in card.blocks[block]}
        assert len(starts) == 1, f"the {block} block's columns are not aligned"
    normfactors = normfactors or {}
    assert set(card.rate_params) == set(normfactors)
    for factor, scaled in normfactors.items():
        assert card.scaled_by(factor) == {c for c in expected_columns if c[1] in scaled}
        assert [(init, limits) for _, _, init, limits in card.rate_params[factor]] == [
            (1.0, "[0,10]")  # pyhf's normfactor: init 1, bounds [0, 10]
        ] * len(card.rate_params[factor])
    workspace = pyhf_workspace(channels, "x", SIGNAL, normfactors=normfactors)
    for channel in workspace["channels"]:
        for sample in channel["samples"]:
            column = (channel["name"], sample["name"])
            kinds = {m["name"]: m["type"] for m in sample["modifiers"]}
            assert kinds[f"staterror_{channel['name']}"] == "staterror"  # autoMCStats
            assert {n for n, k in kinds.items() if k == "histosys"} == {
                n for n in card.nuisances if column in card.applies(n)
            }
            assert {n for n, k in kinds.items() if k == "normfactor"} - {"mu"} == {
                n for n in card.rate_params if column in card.scaled_by(n)
            }
            assert ("mu" in kinds) == (sample["name"] in card.signals())
    return card, templates


def _era(era: str, data: bool) -> list:
    """The stacks of one era: sig (a correlated nuisance ``a`` and the era's ``lumi_<era>``),
    bkg, an MC process with nothing in range (an empty template), and data (if ``data``)."""
    lumi = f"lumi_{era}"
    sig = merge_systematics([
        make_result("s", "nominal", [0.5, 1.5], [1.0, 2.0], process="sig"),
        make_result("s", "aUp", [0.5, 1.5], [1.5, 2.0], process="sig"),
        make_result("s", "aDown", [0.5, 1.5], [0.5, 2.0], process="sig"),
        make_result("s", f"{lumi}Up", [0.5, 1.5], [1.1, 2.2], process="sig"),
        make_result("s", f"{lumi}Down", [0.5, 1.5], [0.9, 1.8], process="sig"),
    ])  # fmt: skip
    bkg = merge_systematics([
        make_result("b", "nominal", [1.5, 2.5, 2.5], [3.0, 1.0, 1.0], process="bkg"),
        make_result("b", f"{lumi}Up", [1.5, 2.5, 2.5], [3.3, 1.1, 1.1], process="bkg"),
        make_result("b", f"{lumi}Down", [1.5, 2.5, 2.5], [2.7, 0.9, 0.9], process="bkg"),
    ])  # fmt: skip
    empty = make_result("e", "nominal", [9.0], [1.0], process="tail")  # in the overflow only
    results = [sig, bkg, empty]
    if data:
        results.append(make_result("d", "nominal", [0.5, 1.5, 2.5, 2.5], [1, 1, 1, 1],
                                   process="data", is_data=True))  # fmt: skip
    for r in results:
        r.meta["era"] = era
    return results


def _eras() -> list[Channel]:
    """The channels of a two-era fit: 2017 with data, 2018 without (the Asimov)."""
    x = {"variable": "x", "bins": 3, "start": 0.0, "stop": 3.0}
    config = {"eras": {"2017": {}, "2018": {}}, "regions": {"r": {"cuts": ["c1"]}},
              "histograms": {"x": x},
              "datasets": {"d": {"era": "2017", "is_data": True},
                           "s": {"era": "2017", "is_data": False},
                           "s18": {"era": "2018", "is_data": False}}}  # fmt: skip
    return fit_channels_of(config, [*_era("2017", True), *_era("2018", False)], "x")


CASES: dict[str, Callable[[list], list[Channel]]] = {
    "one channel": lambda processes: channels_of(processes, ["r"]),
    "blinded": lambda processes: [Channel("r", "r", processes, blind=True)],
    "window": lambda processes: [Channel("r", "r", processes, window=(0.9, 1.5))],
    "two regions": lambda processes: [
        Channel("sr", "r", processes, blind=True),
        Channel("cr", "r", processes),
    ],
    "eras": lambda processes: _eras(),
}
NORMFACTORS = {"eras": {"bkg_norm": ["bkg"], "tail_norm": ["tail", "nowhere"]}}


@pytest.mark.parametrize("case", CASES)
def test_every_datacard_reads_back_into_its_yields_and_nuisances(case, processes, tmp_path):
    """Regression (issue 28): the cards had no autoMCStats (combine would fit without the MC
    statistical uncertainties the pyhf workspace's staterror carries), gave an empty template
    the rate -1 (which combine cannot resolve), had no free normalisation where the workspace
    has one (shapes.normfactors) and unaligned columns."""
    channels = CASES[case](processes)
    card, _ = _card(channels, tmp_path, normfactors=NORMFACTORS.get(case))
    if case == "eras":
        assert card.channels == ["r_2017", "r_2018"]
        assert card.applies("lumi_2017") == {("r_2017", "sig"), ("r_2017", "bkg")}
        assert card.applies("a") == {("r_2017", "sig"), ("r_2018", "sig")}
        assert [rate for b, p, _, rate in card.columns if p == "tail"] == [0.0, 0.0]
        assert card.scaled_by("bkg_norm") == {("r_2017", "bkg"), ("r_2018", "bkg")}


def test_datacard(processes, tmp_path):
    card, templates = _card(channels_of(processes, ["r"]), tmp_path)
    assert card.declared == {"imax": 1, "jmax": 1, "kmax": None}
    assert card.observations == {"r": 3.0}  # in range, like combine's integral (x = 9: out)
    assert [(b, p, i) for b, p, i, _ in card.columns] == [("r", "sig", 0), ("r", "bkg", 1)]
    assert [templates.rate(b, p) for b, p, _, _ in card.columns] == [3.0, 5.0]
    assert card.nuisances == {"a": ("shape", [1.0, None])}
    with pytest.raises(ValueError, match="no signal process"):
        datacard(channels_of(processes, ["r"]), "x", "x.root", signal=["nope"])


def test_pyhf_workspace_builds_the_same_model(processes):
    pyhf = pytest.importorskip("pyhf")
    spec = pyhf_workspace(channels_of(processes, ["r"]), "x", signal=["sig"])
    workspace = pyhf.Workspace(spec)  # validates against the pyhf schema
    model = workspace.model()
    assert model.config.poi_name == "mu"
    assert sorted(model.config.parameters) == ["a", "mu", "staterror_r"]
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    np.testing.assert_allclose(model.expected_actualdata(pars), [1.0, 5.0, 2.0])  # sig + bkg
    pars[model.config.poi_index] = 2.0
    np.testing.assert_allclose(model.expected_actualdata(pars), [2.0, 7.0, 2.0])
    pars[model.config.poi_index] = 1.0
    pars[model.config.par_slice("a")] = 1.0  # the Up template of sig
    np.testing.assert_allclose(model.expected_actualdata(pars), [1.5, 5.0, 2.0])
    np.testing.assert_allclose(workspace.data(model, include_auxdata=False), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="no signal process"):
        pyhf_workspace(channels_of(processes, ["r"]), "x", signal=["nope"])


def test_blinded_channels_hold_the_asimov_never_the_data(processes, tmp_path):
    """A blinded region's data_obs (shapes, datacard observation, workspace) is the MC sum at
    nominal; a blinded window replaces only the bins it overlaps (flow bins included)."""
    mc_total = np.array([1.0, 5.0, 2.0])  # sig + bkg per bin, x in [0, 3)
    blind = [Channel("r", "r", processes, blind=True)]
    spec = pyhf_workspace(blind, "x", signal=["sig"])
    np.testing.assert_allclose(spec["observations"][0]["data"], mc_total)
    card, _ = _card(blind, tmp_path, "b")  # writes b.root and b.txt
    assert card.observations == {"r": 8.0}
    with uproot.open(tmp_path / "b.root") as f:
        np.testing.assert_allclose(f["r/data_obs"].values(flow=True)[1:-1], mc_total)
        assert f["r/data_obs"].values(flow=True)[-1] == 0.0  # the data's overflow x = 9: gone
    assert "# blinded" in (tmp_path / "b.txt").read_text()
    window = [Channel("r", "r", processes, window=(0.9, 1.5))]  # overlaps bins [0,1), [1,2)
    observed = pyhf_workspace(window, "x", signal=["sig"])["observations"][0]["data"]
    np.testing.assert_allclose(observed, [1.0, 5.0, 1.0])  # the data (1 each) in bin 3 only
