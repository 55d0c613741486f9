"""The demo's event models: Drell-Yan, ttbar and WW at parton level (resonances decayed
isotropically in their rest frame, boosted with ``vector``), then a toy detector: efficiencies,
pT smearing, identification and isolation, fake leptons, ISR and pileup jets, b-tag
discriminant, MET from neutrinos plus resolution, the ``HLT_IsoMu24`` decision; as NanoAOD
branches (names and types). Units: GeV, radians, pb."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import awkward as ak
import numpy as np
import vector

__all__ = [
    "CLUSTER",
    "DATA_RUNS",
    "EVENTS_PER_LUMI",
    "MODELS",
    "UNCERTIFIED_EVERY",
    "Model",
    "dy_fraction",
    "model",
    "zprime_xsec",
]


M_Z, W_Z = 91.1876, 2.4952
M_W, W_W = 80.379, 2.085
M_TOP, M_B = 172.5, 4.8
M_MU, M_E = 0.10566, 0.000511
DATA_RUNS = (315257, 315259, 315264, 315265, 315267, 315270)
EVENTS_PER_LUMI = 100  # demo data: lumi block = 1 + event // 100
UNCERTIFIED_EVERY = 10  # the demo golden JSON leaves out lumi blocks 10, 20, ...
CLUSTER = 10_000  # events per basket (NanoAOD files have clusters of about this size)


@dataclass(frozen=True)
class Model:
    """A demo process: true cross section (pb), negative-weight fraction, |genWeight| scale,
    mean number of ISR jets, and the parton-level sampler."""

    xsec: float
    negative_fraction: float
    weight_scale: float
    isr_jets: float
    sample: Callable[[np.random.Generator, int], Truth]


@dataclass
class Truth:
    """Parton-level content of n events (jagged per event)."""

    leptons: ak.Array  # records pt, eta, phi, mass, charge, flavour (11/13)
    quarks: ak.Array  # records pt, eta, phi, mass, flavour (5 = b)
    nu_px: np.ndarray
    nu_py: np.ndarray


def _momentum(pt: np.ndarray, y: np.ndarray, phi: np.ndarray, mass: np.ndarray):
    mt = np.sqrt(mass**2 + pt**2)
    return vector.array(
        {
            "px": pt * np.cos(phi),
            "py": pt * np.sin(phi),
            "pz": mt * np.sinh(y),
            "E": mt * np.cosh(y),
        }
    )


def _two_body(rng: np.random.Generator, parent, m1: np.ndarray, m2: np.ndarray):
    """Isotropic two-body decay in the parent rest frame, boosted to the lab."""
    m = parent.mass
    pstar = np.sqrt(np.clip((m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2), 0, None)) / (2 * m)
    cos_t = rng.uniform(-1, 1, len(m))
    sin_t = np.sqrt(1 - cos_t**2)
    phi = rng.uniform(-np.pi, np.pi, len(m))
    px, py, pz = pstar * sin_t * np.cos(phi), pstar * sin_t * np.sin(phi), pstar * cos_t
    d1 = vector.array({"px": px, "py": py, "pz": pz, "E": np.sqrt(pstar**2 + m1**2)})
    d2 = vector.array({"px": -px, "py": -py, "pz": -pz, "E": np.sqrt(pstar**2 + m2**2)})
    return d1.boost_p4(parent), d2.boost_p4(parent)


def _breit_wigner(
    rng: np.random.Generator, n: int, mass: float, width: float, lo: float, hi: float
):
    """Cauchy-distributed masses truncated to [lo, hi] by inverse transform."""
    a, b = np.arctan(2 * (lo - mass) / width), np.arctan(2 * (hi - mass) / width)
    return mass + 0.5 * width * np.tan(rng.uniform(a, b, n))


def _particles(vectors: Sequence, **fields: Sequence[np.ndarray]) -> ak.Array:
    """Stack per-event particles (one vector per slot) into a jagged record array."""
    n = len(vectors[0])
    columns = {
        "pt": np.stack([v.pt for v in vectors], axis=1),
        "eta": np.stack([v.eta for v in vectors], axis=1),
        "phi": np.stack([v.phi for v in vectors], axis=1),
        "mass": np.stack([v.mass for v in vectors], axis=1),
    }
    columns.update({k: np.stack(v, axis=1) for k, v in fields.items()})
    return ak.unflatten(
        ak.zip({k: v.ravel() for k, v in columns.items()}), np.full(n, len(vectors))
    )


def _no_particles(n: int) -> ak.Array:
    """n empty lists of particle records (the quark content of a process without quarks)."""
    empty = np.zeros(0)
    record = ak.zip({k: empty for k in ("pt", "eta", "phi", "mass", "flavour")})
    return ak.unflatten(record, np.zeros(n, dtype=np.int64))


def _lepton_flavour(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    flavour = np.where(rng.random(n) < 0.5, 13, 11)
    return flavour, np.where(flavour == 13, M_MU, M_E)


DY_RANGE, DY_CONTINUUM, DY_SLOPE, DY_CAP = (50.0, 200.0), 0.08, 25.0, 199.0
"""Drell-Yan's dilepton mass range (GeV), its continuum's fraction, exponential slope (GeV) and
the mass its tail beyond the range is put at (GeV)."""


def _dy_parts(low: float, high: float) -> tuple[float, float]:
    """The fractions of all Drell-Yan events (mass in :data:`DY_RANGE`) of its Breit-Wigner
    peak and of its continuum with a mass in ``[low, high)``."""

    def peak(x: float) -> float:
        return float(np.arctan(2 * (x - M_Z) / W_Z))

    lo, hi = DY_RANGE
    in_peak = (peak(high) - peak(low)) / (peak(hi) - peak(lo))
    beyond = 0.0 if high > DY_CAP else np.exp(-(high - lo) / DY_SLOPE)  # the tail: at DY_CAP
    in_continuum = np.exp(-(low - lo) / DY_SLOPE) - beyond
    return (1 - DY_CONTINUUM) * in_peak, DY_CONTINUUM * float(in_continuum)


def dy_fraction(low: float, high: float) -> float:
    """The fraction of Drell-Yan events with a dilepton mass in ``[low, high)`` (GeV)."""
    return sum(_dy_parts(low, high))


def _dy(rng: np.random.Generator, n: int, low: float = 50.0, high: float = 200.0) -> Truth:
    """Z/gamma* -> ee/mumu: Breit-Wigner peak plus a falling continuum, 50 < m < 200 GeV; with
    ``low``/``high``, only the events of that mass range (a mass-binned sample)."""
    if (low, high) == DY_RANGE:  # the inclusive sample, drawn as it always was
        mass = _breit_wigner(rng, n, M_Z, W_Z, *DY_RANGE)
        continuum = rng.random(n) < DY_CONTINUUM
        mass[continuum] = np.minimum(50.0 + rng.exponential(DY_SLOPE, continuum.sum()), DY_CAP)
    else:
        in_peak, in_continuum = _dy_parts(low, high)
        mass = _breit_wigner(rng, n, M_Z, W_Z, low, high)
        continuum = rng.random(n) < in_continuum / (in_peak + in_continuum)
        # the exponential from low, truncated at high (or its tail at DY_CAP, as inclusive)
        span = 1.0 if high > DY_CAP else 1 - np.exp(-(high - low) / DY_SLOPE)
        tail = low - DY_SLOPE * np.log1p(-span * rng.random(continuum.sum()))
        mass[continuum] = np.minimum(tail, DY_CAP)
    z = _momentum(
        rng.gamma(1.5, 9.0, n), rng.normal(0, 1.8, n), rng.uniform(-np.pi, np.pi, n), mass
    )
    flavour, ml = _lepton_flavour(rng, n)
    l1, l2 = _two_body(rng, z, ml, ml)
    leptons = _particles([l1, l2], charge=[np.ones(n), -np.ones(n)], flavour=[flavour, flavour])
    quarks = _no_particles(n)
    return Truth(leptons, quarks, np.zeros(n), np.zeros(n))


def _w_decays(rng: np.random.Generator, w, charge: float):
    n = len(w.pt)
    flavour, ml = _lepton_flavour(rng, n)
    lep, nu = _two_body(rng, w, ml, np.zeros(n))
    return lep, nu, flavour, np.full(n, charge)


def _ttbar(rng: np.random.Generator, n: int) -> Truth:
    """ttbar -> b l nu b l nu (l = e, mu): t -> bW and W -> l nu decayed in their rest frames."""
    pt = rng.gamma(2.0, 45.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    t1 = _momentum(pt, rng.normal(0, 1.1, n), phi, np.full(n, M_TOP))
    t2 = _momentum(
        pt * rng.uniform(0.6, 1.4, n),
        rng.normal(0, 1.1, n),
        phi + np.pi + rng.normal(0, 0.3, n),
        np.full(n, M_TOP),
    )
    mw = lambda: _breit_wigner(rng, n, M_W, W_W, 60.0, 100.0)  # noqa: E731
    b1, w1 = _two_body(rng, t1, np.full(n, M_B), mw())
    b2, w2 = _two_body(rng, t2, np.full(n, M_B), mw())
    l1, nu1, f1, q1 = _w_decays(rng, w1, +1.0)
    l2, nu2, f2, q2 = _w_decays(rng, w2, -1.0)
    leptons = _particles([l1, l2], charge=[q1, q2], flavour=[f1, f2])
    quarks = _particles([b1, b2], flavour=[np.full(n, 5), np.full(n, 5)])
    return Truth(leptons, quarks, nu1.px + nu2.px, nu1.py + nu2.py)


def _ww(rng: np.random.Generator, n: int) -> Truth:
    """WW -> l nu l nu (l = e, mu)."""
    pt = rng.gamma(1.5, 25.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    w1 = _momentum(pt, rng.normal(0, 1.4, n), phi, _breit_wigner(rng, n, M_W, W_W, 60.0, 100.0))
    w2 = _momentum(
        pt * rng.uniform(0.7, 1.3, n),
        rng.normal(0, 1.4, n),
        phi + np.pi + rng.normal(0, 0.4, n),
        _breit_wigner(rng, n, M_W, W_W, 60.0, 100.0),
    )
    l1, nu1, f1, q1 = _w_decays(rng, w1, +1.0)
    l2, nu2, f2, q2 = _w_decays(rng, w2, -1.0)
    leptons = _particles([l1, l2], charge=[q1, q2], flavour=[f1, f2])
    quarks = _no_particles(n)
    return Truth(leptons, quarks, nu1.px + nu2.px, nu1.py + nu2.py)


def zprime_xsec(mass: float) -> float:
    """The demo Z' -> mumu cross section (pb) at ``mass`` (GeV): 2.5 pb at 125 GeV, falling
    as mass^-10 (steep, so that the demo's search excludes its lower masses only), to 4
    significant digits (the config states it)."""
    return float(f"{2.5 * (125.0 / mass) ** 10:.4g}")


ZPRIME_WIDTH = 0.01
"""The demo Z' width over its mass (narrow: the dimuon mass resolution dominates)."""


def _zprime(rng: np.random.Generator, n: int, mass: float) -> Truth:
    """Z' -> mumu, a narrow resonance (Breit-Wigner of width ``ZPRIME_WIDTH * mass``) produced
    like the Z (same pT and rapidity spectra)."""
    width = ZPRIME_WIDTH * mass
    masses = _breit_wigner(rng, n, mass, width, mass - 20 * width, mass + 20 * width)
    parent = _momentum(
        rng.gamma(1.5, 9.0, n), rng.normal(0, 1.8, n), rng.uniform(-np.pi, np.pi, n), masses
    )
    ml = np.full(n, M_MU)
    l1, l2 = _two_body(rng, parent, ml, ml)
    flavour = np.full(n, 13)
    leptons = _particles([l1, l2], charge=[np.ones(n), -np.ones(n)], flavour=[flavour, flavour])
    return Truth(leptons, _no_particles(n), np.zeros(n), np.zeros(n))


ZPRIME = "zprime_m"
"""A generator name ``zprime_m<mass>`` is the demo Z' -> mumu of that mass in GeV (a search's
signal: in pseudo-data only when ``generate.inject`` names it)."""


DY_BINNED = "dy_m"
"""A generator name ``dy_m<low>to<high>`` is Drell-Yan with a dilepton mass in [low, high) GeV
(mass-binned samples, as CMS's: the inclusive sample's events in that range, its cross
section the inclusive one times their fraction)."""


def model(name: str) -> Model:
    """The demo model a generator name means: one of :data:`MODELS`, ``zprime_m<mass>`` or
    ``dy_m<low>to<high>``."""
    if name in MODELS:
        return MODELS[name]
    if name.startswith(DY_BINNED) and "to" in name:
        low, _, high = name[len(DY_BINNED) :].partition("to")
        if low.isdigit() and high.isdigit() and DY_RANGE[0] <= int(low) < int(high) <= DY_RANGE[1]:
            lo, hi = float(low), float(high)
            dy = MODELS["dy"]
            xsec = float(f"{dy.xsec * dy_fraction(lo, hi):.5g}")
            return Model(xsec, dy.negative_fraction, dy.weight_scale * xsec / dy.xsec,
                         dy.isr_jets, sample=lambda rng, n: _dy(rng, n, lo, hi))  # fmt: skip
    if name.startswith(ZPRIME) and name[len(ZPRIME) :].isdigit():
        mass = float(name[len(ZPRIME) :])
        return Model(zprime_xsec(mass), negative_fraction=0.0, weight_scale=1.0, isr_jets=0.6,
                     sample=lambda rng, n: _zprime(rng, n, mass))  # fmt: skip
    raise KeyError(f"unknown demo generator {name!r}: one of {', '.join(MODELS)}, "
                   "zprime_m<mass>, dy_m<low>to<high> (within 50 to 200)")  # fmt: skip


MODELS: dict[str, Model] = {
    "dy": Model(4051.4, negative_fraction=0.16, weight_scale=2.3e4, isr_jets=0.6, sample=_dy),
    "ttbar": Model(88.29, negative_fraction=0.004, weight_scale=1.0, isr_jets=1.0, sample=_ttbar),
    "ww": Model(12.18, negative_fraction=0.02, weight_scale=1.2, isr_jets=1.0, sample=_ww),
}
