"""Rochester corrections of the muon momentum (MUO, Run 2): the ``RoccoR`` text files
(``RoccoR2018UL.txt``) read into arrays and applied as the ``RoccoR`` class defines them, for all
muons at once.

The file: ``NSET``/``NMEM`` (sets of members: set 0 the nominal, the others statistical
replicas and systematic variations), ``CPHI``/``CETA`` (the scale's phi and eta bins), ``RMIN``,
``RTRK``, ``RETA`` (the resolution's tracker-layer and |eta| bins); then per set and member lines
``C`` (scale: ``M`` in percent above 1 and ``A`` in percent, per type MC/data, eta and phi bin),
``F`` (resolution scale ``kRes`` per type and |eta| bin), ``T`` (the layers' cumulative
distribution per type and |eta| bin) and ``R`` (the resolution's polynomial in ``pt - 45``, its
quadratic term in 1/100, and its Crystal Ball's sigma, alpha and n).

Applied (twiki ``RochcorMuon``):

- data: ``pt / (M + Q A pt)`` (``kScaleDT``);
- MC with a generator muon (``Muon_genPartIdx``): the scale, then the spread towards the
  generator pT: ``x / (1 + (x - 1) kRes_data / kRes_mc)``, ``x = pT_gen / pT_scaled``
  (``kSpreadMC``);
- MC without: the scale, then ``1 / (1 + sqrt(kRes_data^2 - kRes_mc^2) sigma(pt) c)``, ``c`` the
  Crystal Ball quantile of a uniform number that is a pure function of the event and the muon's
  index (``kSmearMC``);
- the uncertainty: ``sqrt(sum over sets s, members m of (k(s, m) - k(0, 0))^2 / nmem(s))``, the
  variation ``muon_scale`` ``k +- that``.

The bins use RoccoR's own constant 3.14159 for pi (its phi bins start at -3.14159), so every muon
lands in the bin RoccoR puts it in. Lazy or eager.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brewflow.arrays import is_lazy, lib, metadata_pass
from brewflow.corrections import CorrectionError
from brewflow.draws import object_uniforms
from brewflow.muonscale import crystal_ball_quantile
from brewflow.objects import link, with_pt

__all__ = ["ROCCOR_PI", "Rochester", "RochesterCorrector", "read_rochester", "rochester_pt"]

ROCCOR_PI = 3.14159
"""The value of pi RoccoR's bins are defined with."""

_SALT = 0x4D  # the Rochester draws differ from the other objects'


@dataclass
class Rochester:
    """One RoccoR file: the bins and, per set and member, the parameters (arrays)."""

    members: list[int]
    eta_edges: np.ndarray  # CETA: signed eta
    n_phi: int
    res_eta_edges: np.ndarray  # RETA: |eta|
    n_min: int
    n_trk: int
    # [set][member] -> arrays
    m: list[list[np.ndarray]] = field(default_factory=list)  # [type, eta, phi]
    a: list[list[np.ndarray]] = field(default_factory=list)
    k_res: list[list[np.ndarray]] = field(default_factory=list)  # [type, |eta|]
    rs: list[list[np.ndarray]] = field(default_factory=list)  # [3, |eta|, layers]
    cb: list[list[np.ndarray]] = field(default_factory=list)  # [3 (s, a, n), |eta|, layers]

    # bins ---------------------------------------------------------------------------------------
    def eta_bin(self, eta: np.ndarray) -> np.ndarray:
        n = len(self.eta_edges) - 1
        return np.minimum(np.searchsorted(self.eta_edges[1:n], eta, side="right"), n - 1)

    def phi_bin(self, phi: np.ndarray) -> np.ndarray:
        width = 2 * ROCCOR_PI / self.n_phi
        return np.clip(np.trunc((phi + ROCCOR_PI) / width).astype(np.int64), 0, self.n_phi - 1)

    def res_eta_bin(self, eta: np.ndarray) -> np.ndarray:
        n = len(self.res_eta_edges) - 1
        return np.minimum(np.searchsorted(self.res_eta_edges[1:n], np.abs(eta), side="right"),
                          n - 1)  # fmt: skip

    # the corrections (flat numpy arrays) --------------------------------------------------------
    def scale(self, kind: int, q: Any, pt: Any, eta: Any, phi: Any, s: int = 0, k: int = 0) -> Any:
        """``kScaleMC`` (kind 0) or ``kScaleDT`` (kind 1) of set ``s``, member ``k``."""
        h, f = self.eta_bin(eta), self.phi_bin(phi)
        return 1.0 / (self.m[s][k][kind, h, f] + q * self.a[s][k][kind, h, f] * pt)

    def spread(self, q: Any, pt: Any, eta: Any, phi: Any, gen_pt: Any, s: int = 0,
               k: int = 0) -> Any:  # fmt: skip
        """``kSpreadMC``: MC with a generator muon of pT ``gen_pt``."""
        scaled = self.scale(0, q, pt, eta, phi, s, k)
        h = self.res_eta_bin(eta)
        x = gen_pt / (scaled * pt)
        return scaled * x / (1.0 + (x - 1.0) * self.k_res[s][k][1, h] / self.k_res[s][k][0, h])

    def smear(self, q: Any, pt: Any, eta: Any, phi: Any, layers: Any, u: Any, s: int = 0,
              k: int = 0) -> Any:  # fmt: skip
        """``kSmearMC``: MC without a generator muon; ``u`` uniform in (0, 1)."""
        scaled = self.scale(0, q, pt, eta, phi, s, k)
        h = self.res_eta_bin(eta)
        f = np.clip(np.where(layers > self.n_min, layers - self.n_min, 0), 0, self.n_trk - 1)
        d, m = self.k_res[s][k][1, h], self.k_res[s][k][0, h]
        dpt = scaled * pt - 45.0
        rs = self.rs[s][k]
        sigma = rs[0, h, f] + rs[1, h, f] * dpt + rs[2, h, f] * dpt * dpt
        width, alpha, n = (self.cb[s][k][i, h, f] for i in range(3))
        c = crystal_ball_quantile(u, 0.0, width, n, alpha)
        x = np.where(d > m, np.sqrt(np.maximum(d * d - m * m, 0.0)) * sigma * c, 0.0)
        return scaled * np.where(x <= -1.0, 1.0, 1.0 / (1.0 + x))

    def factors(self, is_data: bool, q: Any, pt: Any, eta: Any, phi: Any, gen_pt: Any,
                layers: Any, u: Any) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """(factor, its uncertainty) per muon: data ``kScaleDT``; MC ``kSpreadMC`` where
        ``gen_pt`` is a number, else ``kSmearMC``; the uncertainty over every set and member."""

        def one(s: int, k: int) -> np.ndarray:
            if is_data:
                return self.scale(1, q, pt, eta, phi, s, k)
            matched = np.isfinite(gen_pt)
            spread = self.spread(q, pt, eta, phi, np.where(matched, gen_pt, pt), s, k)
            return np.where(matched, spread, self.smear(q, pt, eta, phi, layers, u, s, k))

        nominal = one(0, 0)
        total = np.zeros_like(nominal)
        for s, count in enumerate(self.members):
            for k in range(count):
                if s or k:
                    total += (one(s, k) - nominal) ** 2 / count
        return nominal, np.sqrt(total)


def _opened(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        return handle.read().splitlines()


def read_rochester(path: str | Path) -> Rochester:
    """The RoccoR file at ``path`` (text, or gzipped ``.gz``)."""
    path = Path(path)
    if not path.is_file():
        raise CorrectionError(f"Rochester file {str(path)!r} does not exist")
    return _read(str(path.resolve()), path.stat().st_mtime_ns)


_READ: dict[tuple[str, int], Rochester] = {}


def _read(path: str, mtime_ns: int) -> Rochester:
    if (path, mtime_ns) in _READ:
        return _READ[(path, mtime_ns)]
    header: dict[str, list[str]] = {}
    body: list[list[str]] = []
    try:
        for line in _opened(Path(path)):
            words = line.split()
            if not words:
                continue
            if words[0] in ("NSET", "NMEM", "TVAR", "CPHI", "CETA", "RMIN", "RTRK", "RETA"):
                header[words[0]] = words[1:]
            else:
                body.append(words)
        members = [int(x) for x in header["NMEM"]][: int(header["NSET"][0])]
        n_eta = int(header["CETA"][0])
        out = Rochester(
            members=members,
            eta_edges=np.array([float(x) for x in header["CETA"][1 : n_eta + 2]]),
            n_phi=int(header["CPHI"][0]),
            res_eta_edges=np.array([float(x) for x in header["RETA"][1:]]),
            n_min=int(header["RMIN"][0]),
            n_trk=int(header["RTRK"][0]),
        )
        _fill(out, body)
    except (KeyError, ValueError, IndexError, OSError, EOFError) as err:
        raise CorrectionError(f"cannot read Rochester file {path!r}: {err!r}") from None
    _check_complete(out, body, path)
    _READ[(path, mtime_ns)] = out
    return out


def _check_complete(out: Rochester, body: list[list[str]], path: str) -> None:
    """Every set and member has all its ``C``, ``F`` and ``R`` lines (a truncated file would
    leave defaults that change the numbers without a word)."""
    n_eta, n_res = len(out.eta_edges) - 1, len(out.res_eta_edges) - 1
    seen = {(int(w[0]), int(w[1]), w[2], *map(int, w[3 : {"C": 6, "F": 4, "R": 5}[w[2]]]))
            for w in body if w[2] in ("C", "F", "R")}  # fmt: skip
    for s, count in enumerate(out.members):
        for k in range(count):
            wanted: list[tuple] = [(s, k, "C", t, v, h) for t in (0, 1) for v in (0, 1)
                                   for h in range(n_eta)]  # fmt: skip
            wanted += [(s, k, "F", t) for t in (0, 1)]
            wanted += [(s, k, "R", v, h) for v in range(6) for h in range(n_res)]
            missing = next((w for w in wanted if w not in seen), None)
            if missing is not None:
                raise CorrectionError(
                    f"Rochester file {path!r} is incomplete: set {s} member {k} has no "
                    f"{missing[2]} line {' '.join(map(str, missing[3:]))} (truncated?)"
                )


def _fill(out: Rochester, body: list[list[str]]) -> None:
    n_eta, n_res = len(out.eta_edges) - 1, len(out.res_eta_edges) - 1
    shape = {"m": (2, n_eta, out.n_phi), "k": (2, n_res), "rs": (3, n_res, out.n_trk)}
    for name, arrays in (("m", out.m), ("a", out.a), ("k_res", out.k_res), ("rs", out.rs),
                         ("cb", out.cb)):  # fmt: skip
        dims = shape["m" if name in ("m", "a") else "k" if name == "k_res" else "rs"]
        start = 1.0 if name == "m" else 0.0
        arrays.extend([np.full(dims, start) for _ in range(n)] for n in out.members)
    for words in body:
        s, k, tag = int(words[0]), int(words[1]), words[2]
        values = [float(x) for x in words[3:]]
        if tag == "C":
            kind, var, h = int(values[0]), int(values[1]), int(values[2])
            row = np.array(values[3 : 3 + out.n_phi])
            if var == 0:
                out.m[s][k][kind, h] = 1.0 + row / 100.0
            elif var == 1:
                out.a[s][k][kind, h] = row / 100.0
        elif tag == "F":
            kind = int(values[0])
            out.k_res[s][k][kind] = values[1 : 1 + n_res]
        elif tag == "R":
            var, h = int(values[0]), int(values[1])
            row = np.array(values[2 : 2 + out.n_trk])
            if var < 3:
                out.rs[s][k][var, h] = row / 100.0 if var == 2 else row
            elif var < 6:
                out.cb[s][k][var - 3, h] = row
        # "T" (the layers' distributions) serve RoccoR's other functions, not these


def rochester_pt(rochester: Rochester, events: Any, muons: Any, is_data: bool,
                 direction: str = "") -> Any:  # fmt: skip
    """The muons' corrected pT (``direction`` "Up"/"Down": varied by the uncertainty), lazy or
    eager; MC muons' generator pT from ``Muon_genPartIdx``."""
    ak = lib(muons.pt)
    u = 0.5 * muons.pt / muons.pt  # data: unused
    if is_data:
        gen_pt = muons.pt * np.nan
    else:
        gen = link(events.GenPart, muons.genPartIdx)
        gen_pt = ak.fill_none(gen.pt, np.nan)
        u = object_uniforms(events, muons.pt, _SALT)
    sign = {"": 0.0, "Up": 1.0, "Down": -1.0}[direction]
    args = (muons.charge, muons.pt, muons.eta, muons.phi, gen_pt, muons.nTrackerLayers, u)
    if is_lazy(muons.pt):
        import dask_awkward as dak

        return dak.map_partitions(_corrected, rochester, is_data, sign, *args, label="rochester")
    return _corrected(rochester, is_data, sign, *args)


def _corrected(rochester: Rochester, is_data: bool, sign: float, *jagged: Any) -> Any:
    import awkward as ak

    if metadata_pass(*jagged):
        return ak.values_astype(jagged[1], np.float64)
    counts = ak.num(jagged[1], axis=1)
    flat = [np.asarray(ak.flatten(x), dtype=np.float64) for x in jagged]
    q, pt, eta, phi, gen_pt, layers, u = flat
    nominal, error = rochester.factors(is_data, q, pt, eta, phi, gen_pt,
                                       layers.astype(np.int64), u)  # fmt: skip
    factor = nominal + sign * error if sign else nominal
    return ak.unflatten(pt * factor, counts)


@dataclass
class RochesterCorrector:
    """The Rochester corrections of one era, for data or MC (config ``muons.rochester``)."""

    is_data: bool
    file: str

    @classmethod
    def from_config(cls, spec: Any, *, is_data: bool) -> RochesterCorrector:
        return cls(is_data, spec["file"])

    def check(self) -> None:
        """Read the file now (a clear error before any job)."""
        read_rochester(self.file)

    def muons(self, events: Any, variation: tuple[str, str, str] | None = None) -> Any:
        """The corrected muons (nominal, or ``("muon_scale", "", "Up"|"Down")``, MC)."""
        kind, _, direction = variation or ("", "", "")
        if kind not in ("", "muon_scale"):
            raise CorrectionError(
                f"Rochester corrections have one uncertainty (muon_scale), not {kind!r}"
            )
        muons = events.Muon
        pt = rochester_pt(read_rochester(self.file), events, muons, self.is_data, direction)
        return with_pt(muons, pt)
