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

Events without the entries (a sample that did not store them: 1 entry, or none) get 1, as
CMS's tools do. The 7-point scale envelope and the PDF uncertainty are not per-event weights:
they combine the histograms filled with each variation or PDF member bin by bin (the envelope
of six histograms, the quadrature sum of a Hessian set's shifts); an envelope of per-event
weights would overstate them (twice, on the Run 3 ttbar sample), so they are not offered here.

Every function takes and returns lazy or eager arrays alike, and returns factors (not ratios to
a nominal factor that is not 1): ``{"nominal": ..., "up": ..., "down": ...}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brewflow.arrays import lib

__all__ = ["PS_UP", "parton_shower_weights", "scale_weights"]

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
