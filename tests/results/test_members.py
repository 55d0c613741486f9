"""Envelope and PDF systematics combined bin by bin from their members (brewflow.results.members)
against numpy written out per bin; and on the real Run 3 ttbar (103 NNPDF3.1 members, 9 scale
weights) through the analyze job, against sums over the events' generator weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import uproot

from brewflow.errors import InputError
from brewflow.pdfsets import PDF_SETS
from brewflow.results.arithmetic import merge_systematics, split_systematics
from brewflow.results.members import combine_members
from tests.helpers import make_result

X = [0.5, 1.5, 1.7, 2.5, 2.2, 0.1]
W = np.array([1.0, 2.0, 0.5, 1.5, 1.0, 3.0])
RNG = np.random.default_rng(7)


def _result(members: dict[str, np.ndarray]):
    """A result with nominal and each member category filled with its per-event weights."""
    parts = [make_result("d", "nominal", X, W)]
    parts += [make_result("d", category, X, w) for category, w in members.items()]
    return merge_systematics(parts)


def _bins(result, category) -> tuple[np.ndarray, np.ndarray]:
    h = result.histograms["x"][{"region": "r", "systematic": category}]
    return h.values(), h.variances()


def test_the_envelope_is_the_highest_and_lowest_of_nominal_and_members():
    spec = {"type": "envelope", "of": ["a", "b"]}
    factors = {f"envUp|{w}{d}": W * RNG.uniform(0.7, 1.3, len(W))
               for w in ("a", "b") for d in ("Up", "Down")}  # fmt: skip
    factors = {k.replace("envUp|", "envDown|") if k.endswith("Down") else k: v
               for k, v in factors.items()}  # fmt: skip
    result = _result(factors)
    combined = combine_members(result, {"env": spec})
    assert combined.systematics == ["nominal", "envUp", "envDown"]
    names = ["nominal", *factors]
    values = {n: _bins(result, n) for n in names}
    up, up_var = _bins(combined, "envUp")
    down, down_var = _bins(combined, "envDown")
    for b in range(3):
        highest = max(names, key=lambda n: values[n][0][b])
        lowest = min(names, key=lambda n: values[n][0][b])
        assert up[b] == values[highest][0][b]
        assert up_var[b] == values[highest][1][b]
        assert down[b] == values[lowest][0][b]
        assert down_var[b] == values[lowest][1][b]
    cutflow = combined.cutflow("r", "envUp")["sumw"]
    assert cutflow[0] == max(sum(W), *(sum(w) for w in factors.values()))


@pytest.mark.parametrize("lhapdf", [325300, 91400, 260000])
def test_pdf_uncertainty_as_the_sets_formula(lhapdf):
    pdf = PDF_SETS[lhapdf]
    weights = {i: W * RNG.uniform(0.9, 1.1, len(W)) for i in range(pdf.entries)}
    members = {f"pdf{'Up' if i % 2 == 0 else 'Down'}|{i}": w for i, w in weights.items()}
    combined = combine_members(_result(members), {"pdf": {"type": "pdf", "set": lhapdf}})
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    h = {i: np.histogram(X, edges, weights=w)[0] for i, w in weights.items()}
    nominal = np.histogram(X, edges, weights=W)[0]
    for b in range(3):
        errors = [h[i][b] for i in pdf.error_members]
        if pdf.error == "hessian":
            delta = math.sqrt(sum((e - h[0][b]) ** 2 for e in errors))
        else:
            mean = sum(errors) / len(errors)
            delta = math.sqrt(sum((e - mean) ** 2 for e in errors) / (len(errors) - 1))
        if pdf.alphas:
            alphas = (h[pdf.alphas[1]][b] - h[pdf.alphas[0]][b]) / 2 * pdf.alphas_scale
            delta = math.hypot(delta, alphas)
        assert _bins(combined, "pdfUp")[0][b] == pytest.approx(nominal[b] + delta, rel=1e-12)
        assert _bins(combined, "pdfDown")[0][b] == pytest.approx(nominal[b] - delta, rel=1e-12)
    np.testing.assert_array_equal(_bins(combined, "pdfUp")[1], _bins(combined, "nominal")[1])


def test_members_missing_and_split_by_their_systematic():
    spec = {"env": {"type": "envelope", "of": ["a"]}}
    only_up = _result({"envUp|aUp": W * 1.1})
    with pytest.raises(InputError, match=r"lack 1 of its members .* both envUp and envDown"):
        combine_members(only_up, spec)
    both = _result({"envUp|aUp": W * 1.1, "envDown|aDown": W * 0.9})
    parts = split_systematics(both)
    assert set(parts) == {"nominal", "envUp", "envDown"}  # one file per job systematic
    assert parts["envUp"].systematics == ["envUp|aUp"]
    assert combine_members(merge_systematics(list(parts.values())), spec).systematics == [
        "nominal", "envUp", "envDown"]  # fmt: skip


def test_on_real_ttbar_the_combined_yields_equal_the_generator_weight_sums(shared_data):
    """The first cutflow row (every event) of the analyze job on the 2022 ttbar sample, run
    with the example's qcd_scale envelope and pdf_2022 (325300), normalised: against sums of
    genWeight x top pT weight x LHEScaleWeight or LHEPdfWeight entries over the events."""
    from brewflow.config import load_config, systematics_for
    from brewflow.jobs import preprocess
    from brewflow.jobs.analyze import run
    from tests.helpers import ROOT

    config = load_config(ROOT / "config" / "examples" / "cms_multi_era.yaml")
    dataset = "TTto2L2Nu_2022"
    path = str(shared_data / "nanoaod" / "nano_tt_v12.root")
    config["datasets"][dataset]["files"] = [path]
    del config["eras"]["2022"]["lepton_sf"]  # genWeight and the theory weights alone
    wanted = ["nominal", "qcd_scaleUp", "qcd_scaleDown", "pdf_2022Up", "pdf_2022Down"]
    assert set(wanted) <= set(systematics_for(config, dataset))
    files = preprocess.preprocess(config, dataset)["files"]
    result = combine_members(run(config, dataset, wanted, files, lazy=True, scheduler="sync"),
                             config["systematics"])  # fmt: skip
    with uproot.open(path) as f:
        a = f["Events"].arrays(["genWeight", "LHEScaleWeight", "LHEPdfWeight", "GenPart_pdgId",
                                "GenPart_statusFlags", "GenPart_pt"], library="np")  # fmt: skip
    base = []
    for i in range(len(a["genWeight"])):
        tops = [math.exp(0.0615 - 0.0005 * pt) for pid, s, pt in zip(
            a["GenPart_pdgId"][i], a["GenPart_statusFlags"][i], a["GenPart_pt"][i], strict=True)
            if abs(pid) == 6 and (s >> 13) & 1]  # fmt: skip
        base.append(float(a["genWeight"][i]) * math.sqrt(math.prod(tops)))
    nominal = sum(base)
    scale = [
        sum(b * float(a["LHEScaleWeight"][i][k]) for i, b in enumerate(base))
        for k in (0, 1, 3, 5, 7, 8)
    ]  # the 7-point envelope: no (0.5, 2) nor (2, 0.5)
    pdf = [sum(b * float(a["LHEPdfWeight"][i][k]) for i, b in enumerate(base))
           for k in range(103)]  # fmt: skip
    delta = math.hypot(math.sqrt(sum((pdf[k] - pdf[0]) ** 2 for k in range(1, 101))),
                       (pdf[102] - pdf[101]) / 2 * 0.75)  # fmt: skip
    found = {s: result.cutflow("dilepton", s)["sumw"][0] for s in wanted}
    assert found["nominal"] == pytest.approx(nominal, rel=1e-7)
    assert found["qcd_scaleUp"] == pytest.approx(max(nominal, *scale), rel=1e-7)
    assert found["qcd_scaleDown"] == pytest.approx(min(nominal, *scale), rel=1e-7)
    assert found["pdf_2022Up"] == pytest.approx(nominal + delta, rel=1e-7)
    assert found["pdf_2022Down"] == pytest.approx(nominal - delta, rel=1e-7)
    assert 0.001 < delta / nominal < 0.1
