"""Demo correctionlib payloads (schema v2), written by ``brewflow generate``.

They have the inputs of the CMS 2018 UL payloads, so the demo analysis code is the same for demo
and real data: pileup weights ``(NumTrueInteractions, nominal|up|down)`` and a muon ID scale
factor ``(year, abseta, pt, sf|systup|systdown)``. The generator makes pseudo-data consistent
with them (muon efficiency in data = MC efficiency x scale factor).
"""

from __future__ import annotations

import gzip
import logging
from math import lgamma
from pathlib import Path
from typing import Any

import numpy as np

from brewflow.files import atomic_output

__all__ = ["demo_jec", "demo_muon_sf", "write_demo_corrections"]

log = logging.getLogger(__name__)
# Demo scale factors: muon tight-ID efficiency in data / in MC, binned in |eta| and pT (GeV).
MUON_SF_ABSETA = (0.0, 0.9, 1.2, 2.1, 2.4)
MUON_SF_PT = (15.0, 20.0, 25.0, 30.0, 40.0, 60.0, 120.0, 1000.0)
MUON_SF_SYST = 0.005
PILEUP_MC_SCALE, PILEUP_DATA_SCALE = 4.0, {"nominal": 4.2, "up": 4.4, "down": 4.0}


def demo_muon_sf(abseta: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """The demo muon ID scale factor (bin values; clamped outside the binning)."""
    i = np.clip(np.searchsorted(MUON_SF_ABSETA, abseta, side="right") - 1, 0, 3)
    j = np.clip(np.searchsorted(MUON_SF_PT, pt, side="right") - 1, 0, len(MUON_SF_PT) - 2)
    return 0.995 - 0.008 * i - 0.02 * (j == 0) - 0.01 * (j == 1)


# Demo jet energy corrections (CMS structure: compound L1 x L2L3 [x residual for data]).
JEC_L1_OFFSET = 0.5  # L1: 1 - 0.5 * area * rho / raw pT
JEC_ETA = (-5.2, -2.5, -1.3, 1.3, 2.5, 5.2)
JEC_L2L3 = (1.12, 1.08, 1.05, 1.08, 1.12)  # per |eta| region, pT-independent
JEC_DATA_RESIDUAL = 0.98
JES_TOTAL = "0.015 + 0.8/x"  # relative uncertainty vs corrected pT (TFormula in x = pT)
JER_RESOLUTION = "sqrt((1.5+0.2*y)*(1.5+0.2*y)/(x*x) + 1.0/x + 0.0025)"  # x = pT, y = rho
JER_SF = {"nom": 1.10, "up": 1.15, "down": 1.05}
JER_NAMES = {
    "jec_mc": "demo_MC_L1L2L3Res",
    "jec_data": "demo_DATA_L1L2L3Res",
    "uncertainty": "demo_MC_{source}",
    "resolution": "demo_MC_PtResolution",
    "resolution_sf": "demo_MC_ScaleFactor",
}


def demo_jec(eta: np.ndarray, is_data: bool) -> np.ndarray:
    """The demo L2L3 (x residual) factor per jet: ``pT = (raw - 0.5 area rho) x this``."""
    i = np.clip(np.searchsorted(JEC_ETA, eta, side="right") - 1, 0, len(JEC_L2L3) - 1)
    return np.asarray(JEC_L2L3)[i] * (JEC_DATA_RESIDUAL if is_data else 1.0)


def _jerc(cs: Any) -> tuple[list, list]:
    """The demo JERC corrections: L1, L2L3, residual, compounds, JES Total, JER."""

    def formula(expression: str, variables: list[str]) -> Any:
        return cs.Formula(
            nodetype="formula", expression=expression, parser="TFormula", variables=variables
        )

    def eta_binned(values: Any) -> Any:
        return cs.Binning(
            nodetype="binning", input="JetEta", edges=list(JEC_ETA), content=values, flow="clamp"
        )

    jet = {"JetA": "real", "JetEta": "real", "JetPt": "real", "Rho": "real"}
    l1 = _correction(
        "demo_MC_L1FastJet",
        "demo L1 pileup offset",
        jet,
        formula(f"max(0.0001, 1 - {JEC_L1_OFFSET}*x*y/z)", ["JetA", "Rho", "JetPt"]),
    )
    l2l3 = _correction(
        "demo_MC_L2L3", "demo relative+absolute response", jet, eta_binned(list(JEC_L2L3))
    )
    residual = _correction("demo_DATA_L2L3Residual", "demo data residual", jet, JEC_DATA_RESIDUAL)
    uncertainty = _correction(
        JER_NAMES["uncertainty"].format(source="Total"),
        "demo JES total uncertainty (relative)",
        {"JetEta": "real", "JetPt": "real"},
        formula(JES_TOTAL, ["JetPt"]),
    )
    resolution = _correction(
        JER_NAMES["resolution"],
        "demo relative pT resolution",
        {"JetEta": "real", "JetPt": "real", "Rho": "real"},
        formula(JER_RESOLUTION, ["JetPt", "Rho"]),
    )
    sf = _correction(
        JER_NAMES["resolution_sf"],
        "demo JER data/MC scale factor",
        {"JetEta": "real", "systematic": "string"},
        cs.Category(
            nodetype="category",
            input="systematic",
            content=[cs.CategoryItem(key=k, value=v) for k, v in JER_SF.items()],
        ),
    )

    def compound(name: str, stack: list[str]) -> Any:
        return cs.CompoundCorrection(
            name=name,
            inputs=[cs.Variable(name=k, type=t) for k, t in jet.items()],
            output=cs.Variable(name="weight", type="real"),
            inputs_update=["JetPt"],
            input_op="*",
            output_op="*",
            stack=stack,
        )

    compounds = [
        compound(JER_NAMES["jec_mc"], ["demo_MC_L1FastJet", "demo_MC_L2L3"]),
        compound(
            JER_NAMES["jec_data"], ["demo_MC_L1FastJet", "demo_MC_L2L3", "demo_DATA_L2L3Residual"]
        ),
    ]
    return [l1, l2l3, residual, uncertainty, resolution, sf], compounds


# Demo electron ID scale factors and b-tag shape scale factors (CMS input names).
ELECTRON_SF = {"sf": 0.97, "sfup": 0.98, "sfdown": 0.96}
ELECTRON_ETA = (-2.5, -1.566, -1.444, 0.0, 1.444, 1.566, 2.5)
ELECTRON_PT = (10.0, 20.0, 35.0, 50.0, 100.0, 500.0)
BTAG_SHAPE = {  # per systematic and flavour: TFormula in x = discriminant
    "central": {5: "0.92+0.12*x", 4: "1.0+0.05*x", 0: "1.04-0.15*x"},
    "up_hf": {5: "0.95+0.12*x", 0: "1.04-0.15*x"},
    "down_hf": {5: "0.89+0.12*x", 0: "1.04-0.15*x"},
    "up_lf": {5: "0.92+0.12*x", 0: "1.06-0.15*x"},
    "down_lf": {5: "0.92+0.12*x", 0: "1.02-0.15*x"},
    "up_cferr1": {4: "1.05+0.05*x"},
    "down_cferr1": {4: "0.95+0.05*x"},
    "up_jes": {5: "0.94+0.10*x", 0: "1.05-0.17*x"},  # correlated with the JES variation
    "down_jes": {5: "0.90+0.14*x", 0: "1.03-0.13*x"},
}


def _sf_payloads(cs: Any) -> list:
    """``demo_electron_id`` (year, ValType, WorkingPoint, eta, pt) and ``demo_btag_shape``
    (systematic, flavor, abseta, pt, discriminant), structured like the 2018 UL payloads."""

    def electron(value: float) -> Any:
        n = (len(ELECTRON_ETA) - 1) * (len(ELECTRON_PT) - 1)
        return cs.MultiBinning(
            nodetype="multibinning",
            inputs=["eta", "pt"],
            edges=[list(ELECTRON_ETA), list(ELECTRON_PT)],
            content=[value - 0.002 * (k % (len(ELECTRON_PT) - 1)) for k in range(n)],
            flow="clamp",
        )

    def category(input_: str, items: dict) -> Any:
        return cs.Category(
            nodetype="category",
            input=input_,
            content=[cs.CategoryItem(key=k, value=v) for k, v in items.items()],
        )

    electron_id = _correction(
        "demo_electron_id",
        "demo electron ID scale factor",
        {
            "year": "string",
            "ValType": "string",
            "WorkingPoint": "string",
            "eta": "real",
            "pt": "real",
        },
        category(
            "year",
            {
                "2018": category(
                    "ValType",
                    {
                        v: category("WorkingPoint", {"Tight": electron(x)})
                        for v, x in ELECTRON_SF.items()
                    },
                )
            },
        ),
    )

    def formula(expression: str) -> Any:
        return cs.Formula(
            nodetype="formula", expression=expression, parser="TFormula", variables=["discriminant"]
        )

    btag = _correction(
        "demo_btag_shape",
        "demo DeepJet shape scale factors",
        {
            "systematic": "string",
            "flavor": "int",
            "abseta": "real",
            "pt": "real",
            "discriminant": "real",
        },
        category(
            "systematic",
            {
                s: category("flavor", {f: formula(e) for f, e in by.items()})
                for s, by in BTAG_SHAPE.items()
            },
        ),
    )
    return [electron_id, btag]


def _gamma_pdf(x: np.ndarray, shape: float, scale: float) -> np.ndarray:
    return np.exp((shape - 1) * np.log(x) - x / scale - lgamma(shape) - shape * np.log(scale))


def _correction(name: str, description: str, inputs: dict[str, str], data: Any) -> Any:
    """A version-1 correction with the given ``{input: type}`` and a real ``weight`` output."""
    import correctionlib.schemav2 as cs

    return cs.Correction(
        name=name,
        version=1,
        description=description,
        inputs=[cs.Variable(name=k, type=t) for k, t in inputs.items()],
        output=cs.Variable(name="weight", type="real"),
        data=data,
    )


def write_demo_corrections(path: str | Path, pileup: float | None = None) -> None:
    """correctionlib payload (schema v2) with ``demo_pileup``, ``demo_muon_id`` and the demo
    JERC (names in ``JER_NAMES``; CMS input names ``JetA, JetEta, JetPt, Rho, systematic``).

    Same inputs as the CMS 2018 UL payloads: pileup ``(NumTrueInteractions, nominal|up|down)``
    = data/MC ratio of true-interaction profiles (Gamma, shape 8, scales 4.2/4.4/4.0 vs 4.0);
    muon ``(year, abseta, pt, sf|systup|systdown)`` with year ``"2018_UL"``. ``pileup``: the
    data profile's scale of an era (nominal; up and down +-0.2), default 4.2.
    """
    import correctionlib.schemav2 as cs

    edges = np.arange(0.0, 100.0)
    centers = edges[:-1] + 0.5
    mc = _gamma_pdf(centers, 8.0, PILEUP_MC_SCALE)

    nominal = PILEUP_DATA_SCALE["nominal"] if pileup is None else pileup
    data_scales = {
        k: v - PILEUP_DATA_SCALE["nominal"] + nominal for k, v in PILEUP_DATA_SCALE.items()
    }

    def pileup_ratio(scale: float) -> cs.Binning:
        ratio = np.clip(_gamma_pdf(centers, 8.0, scale) / mc, 0.0, 5.0)
        return cs.Binning(
            nodetype="binning",
            input="NumTrueInteractions",
            edges=list(edges),
            content=[float(r) for r in ratio],
            flow="clamp",
        )

    pu = _correction(
        "demo_pileup",
        "demo pileup weights: data/MC true-interaction profile ratio",
        {"NumTrueInteractions": "real", "weights": "string"},
        cs.Category(
            nodetype="category",
            input="weights",
            content=[cs.CategoryItem(key=k, value=pileup_ratio(v)) for k, v in data_scales.items()],
        ),
    )
    eta_c = (np.asarray(MUON_SF_ABSETA[:-1]) + np.asarray(MUON_SF_ABSETA[1:])) / 2
    pt_c = (np.asarray(MUON_SF_PT[:-1]) + np.asarray(MUON_SF_PT[1:])) / 2
    grid = demo_muon_sf(np.repeat(eta_c, len(pt_c)), np.tile(pt_c, len(eta_c)))

    def muon(shift: float) -> cs.MultiBinning:
        return cs.MultiBinning(
            nodetype="multibinning",
            inputs=["abseta", "pt"],
            edges=[list(MUON_SF_ABSETA), list(MUON_SF_PT)],
            content=[float(v + shift) for v in grid],
            flow="clamp",
        )

    muon_id = _correction(
        "demo_muon_id",
        "demo muon tight ID scale factor (data/MC efficiency)",
        {"year": "string", "abseta": "real", "pt": "real", "ValType": "string"},
        cs.Category(
            nodetype="category",
            input="year",
            content=[
                cs.CategoryItem(
                    key="2018_UL",
                    value=cs.Category(
                        nodetype="category",
                        input="ValType",
                        content=[
                            cs.CategoryItem(key="sf", value=muon(0.0)),
                            cs.CategoryItem(key="systup", value=muon(MUON_SF_SYST)),
                            cs.CategoryItem(key="systdown", value=muon(-MUON_SF_SYST)),
                        ],
                    ),
                )
            ],
        ),
    )
    jerc, compounds = _jerc(cs)
    payload = cs.CorrectionSet(
        schema_version=2,
        corrections=[pu, muon_id, *_sf_payloads(cs), *jerc],
        compound_corrections=compounds,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # no embedded name or time in the gzip header: the bytes depend on the content only
    with (
        atomic_output(path) as tmp,
        tmp.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
    ):
        gz.write(payload.model_dump_json(exclude_unset=True).encode())
    log.info("wrote demo corrections %s", path)
