"""Theory uncertainties from NanoAOD's generator weights that are reweightings of each event:
QCD scales and parton shower.

- ``LHEScaleWeight`` (w_var / w_nominal): 9 entries ordered by muR, then muF, each in (0.5, 1,
  2): ``[0]`` muR=0.5 muF=0.5, ``[1]`` 0.5 1, ``[2]`` 0.5 2, ``[3]`` 1 0.5, ``[4]`` 1 1 (the
  nominal), ``[5]`` 1 2, ``[6]`` 2 0.5, ``[7]`` 2 1, ``[8]`` 2 2; some samples store 8 (the
  nominal left out: the entries after it move down by one). Each variation is a weight of its
  own: muR alone, muF alone, both together.
- ``PSWeight`` (w_var / w_nominal): ``[0]`` ISR=2 FSR=1, ``[1]`` ISR=1 FSR=2, ``[2]`` ISR=0.5
  FSR=1, ``[3]`` ISR=1 FSR=0.5 (the order the weights are stored in; older NanoAOD branch
  titles state the reverse, a known documentation error). brewflow's "up" is the scale x 2
  (:data:`PS_UP`): the convention of CMS's combine datacards; PocketCoffea calls the 0.5 entries
  "up" (``convention: reciprocal``).

- Top pT reweighting (:func:`top_pt_weights`): the TOP group's scale factor of the last-copy top
  and antitop (``GenPart``, ``statusFlags`` bit 13), the event weight the square root of their
  product (:data:`TOP_PT`: the data/NLO fit and the NNLO/NLO ratio).

Events without the entries (a sample that did not store them: 1 entry, or none) get 1, as
CMS's tools do. The 7-point scale envelope and the PDF uncertainty are not per-event weights:
they combine the histograms filled with each variation or PDF member bin by bin (the envelope
of six histograms, the quadrature sum of a Hessian set's shifts; an envelope of per-event
weights would overstate them, twice on the Run 3 ttbar sample): the systematic types
``envelope`` and ``pdf`` (:mod:`brewflow.results.members`); :func:`pdf_members` gives the
members' per-event weights they are filled with.

Every function takes and returns lazy or eager arrays alike, and returns factors (not ratios to
a nominal factor that is not 1): ``{"nominal": ..., "up": ..., "down": ...}``.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from brewflow.arrays import is_lazy, lib, metadata_pass
from brewflow.errors import InputError

__all__ = [
    "PS_UP",
    "TOP_PT",
    "PdfEntriesError",
    "parton_shower_weights",
    "pdf_members",
    "scale_weights",
    "top_pt_weights",
]

_SCALES = ((0.5, 0.5), (0.5, 1.0), (0.5, 2.0), (1.0, 0.5), (1.0, 1.0), (1.0, 2.0), (2.0, 0.5),
           (2.0, 1.0), (2.0, 2.0))  # fmt: skip
"""(muR, muF) of each ``LHEScaleWeight`` entry of a 9-entry vector."""

PS_UP = {"isr": 0, "fsr": 1}
"""The ``PSWeight`` entry of each shower scale x 2 (brewflow's "up"); x 0.5 is the entry + 2."""


def scale_weights(lhe_scale: Any) -> dict[str, Any]:
    """The QCD scale variations of ``LHEScaleWeight``: ``muR`` (muF = 1), ``muF`` (muR = 1)
    and ``muRmuF`` (both together), each ``{"nominal", "up", "down"}`` (nominal 1; up: the
    scale x 2). Events with 8 entries have no nominal one stored; with fewer than 8, every
    factor is 1."""
    ak = lib(lhe_scale)
    count = ak.num(lhe_scale)
    padded = ak.pad_none(lhe_scale, 9, axis=1)
    one = ak.ones_like(count, dtype=np.float64)

    def entry(mur: float, muf: float) -> Any:
        index = _SCALES.index((mur, muf))
        shifted = index - 1 if index > 4 else index  # 8 entries: the nominal left out
        value = ak.where(count == 9, padded[:, index], padded[:, shifted])
        return ak.where(count >= 8, ak.values_astype(ak.fill_none(value, 1.0), np.float64), one)

    return {
        "muR": {"nominal": one, "up": entry(2.0, 1.0), "down": entry(0.5, 1.0)},
        "muF": {"nominal": one, "up": entry(1.0, 2.0), "down": entry(1.0, 0.5)},
        "muRmuF": {"nominal": one, "up": entry(2.0, 2.0), "down": entry(0.5, 0.5)},
    }


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


TOP_PT = {
    "data_nlo": "exp(0.0615 - 0.0005 pT)",
    "nnlo_nlo": "0.103 exp(-0.0118 pT) - 0.000134 pT + 0.973",
}
"""The top pT scale factors (pT in GeV) of CMS's TOP group (twiki TopPtReweighting): the fit of
data over POWHEG+PYTHIA (``data_nlo``, 13 TeV) and the NNLO QCD + NLO EW over NLO ratio
(``nnlo_nlo``)."""

_LAST_COPY = 13
"""The ``GenPart_statusFlags`` bit of a particle's last copy."""


def _top_sf(pt: Any, method: str) -> Any:
    if method == "data_nlo":
        return np.exp(0.0615 - 0.0005 * pt)
    if method == "nnlo_nlo":
        return 0.103 * np.exp(-0.0118 * pt) - 0.000134 * pt + 0.973
    raise ValueError(f"unknown top pT method {method!r}; known: {', '.join(TOP_PT)}")


def top_pt_weights(genpart: Any, method: str = "data_nlo") -> dict[str, Any]:
    """The top pT reweighting of an event's last-copy top and antitop: nominal the square root
    of the product of their scale factors (:data:`TOP_PT`), ``up`` the product (the correction
    twice), ``down`` 1 (none); events without exactly one top and one antitop get 1."""
    ak = lib(genpart.pt)
    last = (np.abs(genpart.pdgId) == 6) & (((genpart.statusFlags >> _LAST_COPY) & 1) == 1)
    tops = genpart[last]
    pairs = (ak.num(tops) == 2) & (ak.sum(tops.pdgId, axis=1) == 0)
    sf = _top_sf(ak.values_astype(tops.pt, np.float64), method)
    product = ak.where(pairs, ak.prod(sf, axis=1), 1.0)
    one = ak.ones_like(product)
    return {"nominal": np.sqrt(product), "up": product, "down": one}


class PdfEntriesError(InputError):
    """Events whose ``LHEPdfWeight`` does not hold the configured set's entries."""


def _entries_checked(lhe_pdf: Any, entries: int, what: str) -> Any:
    if metadata_pass(lhe_pdf):
        return lhe_pdf
    counts = np.unique(np.asarray(ak.num(lhe_pdf, axis=1)))
    if len(counts) and (len(counts) > 1 or counts[0] != entries):
        raise PdfEntriesError(
            f"{what}: LHEPdfWeight holds {', '.join(map(str, counts))} entries per event, the "
            f"set needs {entries}: is it the sample's set? (NanoAOD's branch title names its "
            "LHA IDs)"
        )
    return lhe_pdf


def pdf_members(lhe_pdf: Any, entries: int, what: str = "LHEPdfWeight") -> list[Any]:
    """Per event, each of the ``entries`` members' weight over the nominal weight (float64),
    after checking every event holds ``entries`` (a :class:`PdfEntriesError` naming ``what``
    and the counts found, when the data are read)."""
    if is_lazy(lhe_pdf):
        import dask_awkward as dak

        lhe_pdf = dak.map_partitions(_entries_checked, lhe_pdf, entries, what,
                                     label="pdf-entries")  # fmt: skip
    else:
        lhe_pdf = _entries_checked(lhe_pdf, entries, what)
    lib_ = lib(lhe_pdf)
    return [lib_.values_astype(lhe_pdf[:, i], np.float64) for i in range(entries)]
