"""Theory uncertainties from NanoAOD's generator weights: QCD scales, PDF and alpha_s, parton
shower.

- ``LHEScaleWeight`` (w_var / w_nominal): 9 entries ordered by muR, then muF, each in (0.5, 1,
  2): ``[0]`` muR=0.5 muF=0.5, ``[1]`` 0.5 1, ``[2]`` 0.5 2, ``[3]`` 1 0.5, ``[4]`` 1 1 (the
  nominal), ``[5]`` 1 2, ``[6]`` 2 0.5, ``[7]`` 2 1, ``[8]`` 2 2; some samples store 8 (the
  nominal left out: the entries after it move down by one). The 7-point envelope takes the
  largest and smallest of the six variations without the opposite ones (0.5 2 and 2 0.5).
- ``LHEPdfWeight`` (w_var / w_nominal): the members of one LHAPDF set, ``[0]`` its central
  member; a Hessian set's uncertainty is the sum in quadrature of each eigenvector member's
  shift from the central one, a replica set's the standard deviation of its replicas; sets
  with alpha_s variations end with the two members at the lower and the higher alpha_s
  (:data:`PDF_SETS`: the sets CMS samples carry; LHAPDF itself is not needed).
- ``PSWeight`` (w_var / w_nominal): ``[0]`` ISR=2 FSR=1, ``[1]`` ISR=1 FSR=2, ``[2]`` ISR=0.5
  FSR=1, ``[3]`` ISR=1 FSR=0.5 (the order the weights are stored in; older NanoAOD branch
  titles state the reverse, a known documentation error). brewflow's "up" is the scale x 2
  (:data:`PS_UP`): the convention of CMS's combine datacards; PocketCoffea calls the 0.5 entries
  "up" (``convention: reciprocal``). Events without 4 entries get 1.

Every function takes and returns lazy or eager arrays alike, and returns factors (not ratios to
a nominal factor that is not 1): ``{"nominal": ..., "up": ..., "down": ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brewflow.arrays import lib

__all__ = [
    "PDF_SETS",
    "PS_UP",
    "PdfSet",
    "parton_shower_weights",
    "pdf_weights",
    "scale_weights",
]

_SCALES = ((0.5, 0.5), (0.5, 1.0), (0.5, 2.0), (1.0, 0.5), (1.0, 1.0), (1.0, 2.0), (2.0, 0.5),
           (2.0, 1.0), (2.0, 2.0))  # fmt: skip
"""(muR, muF) of each ``LHEScaleWeight`` entry of a 9-entry vector."""

PS_UP = {"isr": 0, "fsr": 1}
"""The ``PSWeight`` entry of each shower scale x 2 (brewflow's "up"); x 0.5 is the entry + 2."""


@dataclass(frozen=True)
class PdfSet:
    """An LHAPDF set as NanoAOD stores it in ``LHEPdfWeight``: ``kind`` ``hessian`` or
    ``replicas``, ``members`` (with the central one, ``[0]``) and the indices of its alpha_s
    members (lower, higher), if it has them."""

    name: str
    kind: str
    members: int
    alphas: tuple[int, int] | None = None


PDF_SETS: dict[int, PdfSet] = {
    91400: PdfSet("PDF4LHC15_nnlo_30_pdfas", "hessian", 31, (31, 32)),
    93300: PdfSet("PDF4LHC21_40_pdfas", "hessian", 41, (41, 42)),
    260000: PdfSet("NNPDF30_nlo_as_0118", "replicas", 101),
    292200: PdfSet("NNPDF30_nlo_nf_5_pdfas", "replicas", 101, (101, 102)),
    303600: PdfSet("NNPDF31_nnlo_as_0118", "replicas", 101),
    306000: PdfSet("NNPDF31_nnlo_hessian_pdfas", "hessian", 101, (101, 102)),
    325300: PdfSet("NNPDF31_nnlo_as_0118_mc_hessian_pdfas", "hessian", 101, (101, 102)),
}
"""LHAPDF ID of the first member -> the set (the sets of CMS's Run 2 UL and Run 3 samples; the
IDs and member counts of lhapdf.hepforge.org/pdfsets)."""


def scale_weights(lhe_scale: Any) -> dict[str, Any]:
    """The QCD scale variations of ``LHEScaleWeight``: ``envelope`` (the 7-point envelope:
    ``up`` the largest, ``down`` the smallest of the six variations), ``muR`` (muF = 1) and
    ``muF`` (muR = 1), each ``{"nominal", "up", "down"}`` (nominal 1; up: the scale x 2). Events
    with 8 entries have no nominal one stored; with fewer than 8, every factor is 1."""
    ak = lib(lhe_scale)
    count = ak.num(lhe_scale)
    padded = ak.pad_none(lhe_scale, 9, axis=1)
    one = ak.ones_like(count, dtype=np.float64)

    def entry(mur: float, muf: float) -> Any:
        index = _SCALES.index((mur, muf))
        shifted = index - 1 if index > 4 else index  # 8 entries: the nominal left out
        value = ak.where(count == 9, padded[:, index], padded[:, shifted])
        return ak.where(count >= 8, ak.values_astype(ak.fill_none(value, 1.0), np.float64), one)

    seven = [entry(r, f) for r, f in _SCALES if (r, f) not in ((0.5, 2.0), (2.0, 0.5), (1, 1))]
    high, low = seven[0], seven[0]
    for value in seven[1:]:
        high, low = ak.where(value > high, value, high), ak.where(value < low, value, low)
    return {
        "envelope": {"nominal": one, "up": high, "down": low},
        "muR": {"nominal": one, "up": entry(2.0, 1.0), "down": entry(0.5, 1.0)},
        "muF": {"nominal": one, "up": entry(1.0, 2.0), "down": entry(1.0, 0.5)},
    }


def pdf_weights(lhe_pdf: Any, pdf: PdfSet) -> dict[str, Any]:
    """The PDF uncertainty (``pdf``) and, when the set has them, the alpha_s variation
    (``alphas``) of ``LHEPdfWeight``, each ``{"nominal", "up", "down"}`` (nominal 1): the
    Hessian shift sqrt(sum_i (w_i - w_0)^2) or the replicas' standard deviation, up and down
    symmetric; alpha_s: its higher and lower member over the central one. Events with fewer
    entries than the set has get 1 (and the job that reads them a warning is not given: the
    config names the set)."""
    ak = lib(lhe_pdf)
    n = pdf.members + (2 if pdf.alphas else 0)
    count = ak.num(lhe_pdf)
    complete = count >= n
    padded = ak.values_astype(ak.fill_none(ak.pad_none(lhe_pdf, n, axis=1), 1.0),
                              np.float64)  # fmt: skip
    central = padded[:, 0]
    members = padded[:, 1 : pdf.members]
    if pdf.kind == "hessian":
        delta = np.sqrt(ak.sum((members - central) ** 2, axis=1))
    else:
        mean = ak.mean(members, axis=1)
        delta = np.sqrt(ak.sum((members - mean) ** 2, axis=1) / (pdf.members - 2))
    one = ak.ones_like(central)
    delta = ak.where(complete, delta / central, 0.0 * central)
    out = {"pdf": {"nominal": one, "up": one + delta, "down": one - delta}}
    if pdf.alphas:
        low, high = (padded[:, i] / central for i in pdf.alphas)
        out["alphas"] = {"nominal": one, "up": ak.where(complete, high, one),
                         "down": ak.where(complete, low, one)}  # fmt: skip
    return out


def parton_shower_weights(ps: Any, convention: str = "cms") -> dict[str, Any]:
    """``isr`` and ``fsr`` of ``PSWeight``, each ``{"nominal", "up", "down"}`` (nominal 1; up:
    the scale x 2 with ``convention`` ``cms``, x 0.5 with ``reciprocal``); 1 for events
    without the 4 entries."""
    ak = lib(ps)
    count = ak.num(ps)
    padded = ak.values_astype(ak.fill_none(ak.pad_none(ps, 4, axis=1), 1.0),
                              np.float64)  # fmt: skip
    one = ak.ones_like(padded[:, 0])
    out = {}
    for name, index in PS_UP.items():
        doubled = ak.where(count == 4, padded[:, index], one)
        halved = ak.where(count == 4, padded[:, index + 2], one)
        up, down = (doubled, halved) if convention == "cms" else (halved, doubled)
        out[name] = {"nominal": one, "up": up, "down": down}
    return out
