"""Muon momentum scale and resolution (MUO, Run 3), as object variations like the jet energy
scale: the MUO POG's ``muon_scalesmearing.json.gz`` payload and its recipe (``MuonScaRe``).

- **Scale** (data and MC): ``pt' = 1 / (m / pt + q a)``, ``m`` and ``a`` the payload's
  ``m_data``/``a_data`` (``m_mc``/``a_mc``) at ``(eta, phi, "nom")``, ``q`` the charge.
- **Resolution** (MC): ``pt'' = pt' (1 + k sigma x)``: ``k = sqrt(k_data^2 - k_mc^2)`` (0 when MC
  is already wider; ``k_*`` at ``(|eta|, "nom")``), ``sigma = max(0, p0 + p1 pt' + p2 pt'^2)``
  from ``poly_params`` at ``(|eta|, nTrackerLayers)``, ``x`` drawn from the Crystal Ball of
  ``cb_params`` (mean, sigma, n, alpha) by its inverse CDF at a uniform number that is a pure
  function of the event and the muon's index (:func:`brewflow.draws.object_uniforms`; the
  recipe's own draws are not reproducible).
- The recipe's validity range, 26-200 GeV: the scale applies to muons whose pT is in it, the
  smearing to muons whose scaled pT is; a correction that is not a number, or changes the pT by
  more than x 2 or less than x 0.1, is not applied (the scaled pT kept when only the smearing
  fails).
- **Variations** (MC): ``muon_scale`` ``pt'' +- pt''^2 sqrt(dm^2 / pt''^2 + da^2 + 2 q rho dm da
  / pt'')`` (``m_mc``, ``a_mc`` at ``"stat"``, ``m_mc`` at ``"rho_stat"``), every muon;
  ``muon_resolution`` the smearing ``pt'' / pt' - 1`` scaled by ``1 +- k_mc(stat) /
  k_mc(nom)``.

Rochester corrections (Run 2) are a text format of their own, not read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from brewflow.arrays import is_lazy, lib, metadata_pass
from brewflow.corrections import CorrectionError, category_keys, load
from brewflow.draws import object_uniforms
from brewflow.objects import with_pt

__all__ = ["PT_RANGE", "VARIATIONS", "MuonCorrector", "crystal_ball_quantile"]

VARIATIONS = ("muon_scale", "muon_resolution")
"""The object variations :meth:`MuonCorrector.muons` makes (the config's types)."""

PT_RANGE = (26.0, 200.0)
"""Where the corrections are valid (GeV); other muons keep their pT."""

_SALT = 0x3C  # the muons' draws differ from the jets' and electrons'


def crystal_ball_quantile(u: Any, mean: Any, sigma: Any, n: Any, alpha: Any) -> Any:
    """The inverse CDF at ``u`` in (0, 1) of the symmetric (double-sided) Crystal Ball: a
    Gaussian core within ``alpha`` sigmas, power-law tails ``A (B + |t|)^-n`` beyond, with
    ``A = (n / alpha)^n exp(-alpha^2 / 2)``, ``B = n / alpha - alpha``. Numpy arrays."""
    a = np.abs(alpha)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN: pT kept
        tail = n / a / (n - 1.0) * np.exp(-a * a / 2.0)  # each tail's probability, unnormed
        core = np.sqrt(2.0 * np.pi) * special.erf(a / np.sqrt(2.0))
        total = core + 2.0 * tail
        big_a = (n / a) ** n * np.exp(-a * a / 2.0)
        big_b = n / a - a
        low, high = tail / total, 1.0 - tail / total
        left = big_b - (u * total * (n - 1.0) / big_a) ** (-1.0 / (n - 1.0))
        right = -big_b + ((1.0 - u) * total * (n - 1.0) / big_a) ** (-1.0 / (n - 1.0))
        middle = np.sqrt(2.0) * special.erfinv(
            2.0 * (u * total - tail) / np.sqrt(2.0 * np.pi) - special.erf(a / np.sqrt(2.0))
        )
    t = np.where(u < low, left, np.where(u > high, right, middle))
    return mean + sigma * t


@dataclass
class MuonCorrector:
    """The muon scale and resolution of one era, for data or MC."""

    is_data: bool
    file: str
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, spec: Any, *, is_data: bool) -> MuonCorrector:
        """From ``muons.scale_resolution``: ``{file}``."""
        return cls(is_data, spec["file"])

    def correction(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = load(self.file, name)
        return self._cache[name]

    def check(self) -> None:
        """Load the payload's corrections now (clear errors before any job)."""
        for name in ("m_data", "a_data", "m_mc", "a_mc", "k_data", "k_mc", "poly_params",
                     "cb_params"):  # fmt: skip
            self.correction(name)

    def check_scale_variation(self) -> None:
        """A :class:`CorrectionError` unless the payload has what ``muon_scale`` needs (m_mc's
        ``rho_stat``; older payloads lack it)."""
        if "rho_stat" not in category_keys(self.correction("m_mc"), "variation"):
            raise CorrectionError(
                f"the muon_scale variation needs m_mc's 'rho_stat' values, which "
                f"{self.file!r} lacks (an older payload): use the POG's muon_scalesmearing.json.gz"
            )

    def _scaled(self, muons: Any) -> Any:
        kind = "data" if self.is_data else "mc"
        real = lambda a: lib(muons.pt).values_astype(a, np.float64)  # noqa: E731
        eta, phi = real(muons.eta), real(muons.phi)
        m = self.correction(f"m_{kind}").evaluate(eta, phi, "nom")
        a = self.correction(f"a_{kind}").evaluate(eta, phi, "nom")
        return 1.0 / (m / muons.pt + muons.charge * a)

    def _smearing(self, events: Any, muons: Any, scaled: Any) -> Any:
        """Per muon: ``k sigma x``, the relative smearing of the scaled pT."""
        ak = lib(muons.pt)
        real = lambda a: ak.values_astype(a, np.float64)  # noqa: E731
        abseta, layers = real(np.abs(muons.eta)), real(muons.nTrackerLayers)
        poly = self.correction("poly_params")
        width = sum(poly.evaluate(abseta, layers, i) * scaled**i for i in range(3))
        width = np.maximum(width, 0.0)
        k_data = self.correction("k_data").evaluate(abseta, "nom")
        k_mc = self.correction("k_mc").evaluate(abseta, "nom")
        k = np.sqrt(np.maximum(k_data * k_data - k_mc * k_mc, 0.0))
        cb = self.correction("cb_params")
        params = [cb.evaluate(abseta, layers, i) for i in range(4)]  # mean, sigma, n, alpha
        draw = _quantiles(object_uniforms(events, muons.pt, _SALT), *params)
        return k * width * draw

    def muons(self, events: Any, variation: tuple[str, str, str] | None = None) -> Any:
        """The corrected muons of ``events`` (nominal, or ``variation``: ``(type, "",
        "Up"|"Down")`` with type ``muon_scale`` or ``muon_resolution``, MC only)."""
        muons = events.Muon
        ak = lib(muons.pt)
        kind, _, direction = variation or ("", "", "")
        if kind and kind not in VARIATIONS:
            raise ValueError(f"unknown muon variation {kind!r}; known: {VARIATIONS}")
        sign = 1.0 if direction == "Up" else -1.0
        scaled = _valid(muons.pt, self._scaled(muons), muons.pt)  # in range: scaled
        if self.is_data:
            return with_pt(muons, scaled)
        smearing = self._smearing(events, muons, scaled)
        if kind == "muon_resolution":
            abseta = ak.values_astype(np.abs(muons.eta), np.float64)
            k_mc = self.correction("k_mc").evaluate(abseta, "nom")
            k_stat = self.correction("k_mc").evaluate(abseta, "stat")
            ratio = ak.where(k_mc > 0, k_stat / ak.where(k_mc > 0, k_mc, 1.0), 0.0)
            smearing = smearing * (1.0 + sign * ratio)
        pt = _valid(scaled, scaled * (1.0 + smearing), scaled)  # the range on the scaled pT
        if kind == "muon_scale":  # every muon varied, as the recipe does
            pt = pt + sign * self._scale_uncertainty(muons, pt)
        return with_pt(muons, pt)

    def _scale_uncertainty(self, muons: Any, pt: Any) -> Any:
        ak = lib(muons.pt)
        eta, phi = (ak.values_astype(x, np.float64) for x in (muons.eta, muons.phi))
        self.check_scale_variation()
        rho = self.correction("m_mc").evaluate(eta, phi, "rho_stat")
        dm = self.correction("m_mc").evaluate(eta, phi, "stat")
        da = self.correction("a_mc").evaluate(eta, phi, "stat")
        q = muons.charge
        return pt * pt * np.sqrt(dm * dm / (pt * pt) + da * da + 2.0 * q * rho * dm * da / pt)


def _quantiles(u: Any, mean: Any, sigma: Any, n: Any, alpha: Any) -> Any:
    """:func:`crystal_ball_quantile` of jagged arrays, eager or lazy."""
    if is_lazy(u):
        import dask_awkward as dak

        return dak.map_partitions(_quantiles, u, mean, sigma, n, alpha, label="crystal-ball")
    import awkward as ak

    if metadata_pass(u, mean, sigma, n, alpha):
        return u
    flat = [np.asarray(ak.flatten(x), dtype=np.float64) for x in (u, mean, sigma, n, alpha)]
    return ak.unflatten(crystal_ball_quantile(*flat), ak.num(u, axis=1))


def _valid(reference: Any, corrected: Any, otherwise: Any) -> Any:
    """``corrected`` where ``reference`` is in :data:`PT_RANGE` and ``corrected`` a positive
    number within 0.1 and 2 times ``otherwise`` (the recipe's guards), else ``otherwise``."""
    ak = lib(reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = corrected / otherwise
    good = ((reference >= PT_RANGE[0]) & (reference <= PT_RANGE[1]) & ~np.isnan(corrected)
            & (ratio > 0.1) & (ratio < 2.0))  # fmt: skip
    return ak.where(good, corrected, otherwise)
