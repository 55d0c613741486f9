"""Combinatorial kinematics as whole-array numpy kernels, eager and lazy.

``best_combination(objects, k, target)`` finds, per event, the ``k`` objects whose summed
four-momentum has the invariant mass closest to ``target`` (a top quark from three jets, a Z
boson from a same-flavour opposite-charge lepton pair). ``ak.combinations`` followed by vector
additions builds every combination as a record and pays awkward's per-operation overhead many
times; here events are grouped by object multiplicity, and for each multiplicity ``n`` one
index table of the ``C(n, k)`` combinations turns the whole group into plain numpy gathers and
sums. The results equal the ``ak.combinations`` formulation exactly: combinations are taken
in the same order, the first minimum wins, and the sums run in the same order in float64.

On lazy arrays the kernel runs per partition (``dask_awkward.map_partitions``); on the
typetracer it touches the fields it reads, so column projection reads exactly those.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import awkward as ak
import numpy as np

from brewflow.arrays import is_lazy, metadata_pass, typetracer_like
from brewflow.errors import BrewflowError

__all__ = [
    "MAX_COMBINATIONS",
    "CombinatoricsError",
    "MissingObjectsError",
    "best_combination",
    "cartesian",
    "near",
]

_BLOCK = 1 << 20  # combinations evaluated at once
_SQUARES_NORMAL = 1e-150  # above this, x² is a normal float64 and sqrt(x²) == |x|
MAX_COMBINATIONS = 2_000_000
"""The most combinations :func:`best_combination` searches in one event (``C(n, k)``; e.g.
three of 220 jets): beyond that an event is refused, not searched for minutes and gigabytes."""


class CombinatoricsError(BrewflowError, ValueError):
    """An event with more object combinations than :data:`MAX_COMBINATIONS`."""


class MissingObjectsError(BrewflowError, ValueError):
    """Objects with missing values (an option type): what they stand for is not defined."""


def cartesian(objects: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat float64 ``px, py, pz, E`` of jagged ``pt, eta, phi, mass`` records (eager)."""
    pt, eta, phi, mass = (
        np.asarray(ak.flatten(objects[f], axis=None), dtype=np.float64)
        for f in ("pt", "eta", "phi", "mass")
    )
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return px, py, pz, np.sqrt(px * px + py * py + pz * pz + mass * mass)


@cache
def _table(n: int, k: int) -> np.ndarray:
    """The ``C(n, k)`` index combinations in ``ak.combinations`` order, shape ``(C, k)``."""
    return np.array(list(itertools.combinations(range(n), k)), dtype=np.int64).reshape(-1, k)


@cache
def _prefix(n: int, k: int) -> np.ndarray:
    """Per combination of :func:`_table` ``(n, k)``, the row of its first ``k - 1`` objects in
    ``_table(n, k - 1)``."""
    rows = {c: i for i, c in enumerate(itertools.combinations(range(n), k - 1))}
    return np.array([rows[c[:-1]] for c in itertools.combinations(range(n), k)], dtype=np.int64)


def _sum(values: np.ndarray, n: int, k: int) -> np.ndarray:
    """Per combination of :func:`_table` ``(n, k)`` (row) and event (column; ``values`` has
    shape ``(n, events)``: each gather copies whole rows), the sum of ``values`` over the
    combination's objects, left to right as ``(a + b) + c``; where there are fewer ``k - 1``-
    combinations than ``k``-combinations, from their sums (each ``a + b`` added once, then
    reused: the same numbers, fewer passes)."""
    table = _table(n, k)
    if k >= 3 and math.comb(n, k - 1) < len(table):
        out = _sum(values, n, k - 1)[_prefix(n, k)]
        out += values[table[:, -1]]
        return out
    out = values[table[:, 0]]
    for i in range(1, k):
        out += values[table[:, i]]
    return out


def _distance(sums: list[np.ndarray], target: float) -> np.ndarray:
    """``|m - target|`` of summed ``px, py, pz, E``, ``m = sqrt(max(E² - px² - py² - pz², 0))``
    in that order, computed in place in the sums' arrays (no temporaries)."""
    sx, sy, sz, se = sums
    np.multiply(se, se, out=se)
    for s in (sx, sy, sz):
        np.multiply(s, s, out=s)
        np.subtract(se, s, out=se)
    np.maximum(se, 0.0, out=se)
    np.sqrt(se, out=se)
    np.subtract(se, target, out=se)
    return np.abs(se, out=se)


def _counts(objects: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Objects per event and the flat index of each event's first object."""
    counts = np.asarray(ak.num(objects, axis=1), dtype=np.int64)
    return counts, np.cumsum(counts) - counts


def _best(
    objects: ak.Array, k: int, target: float, equal: Sequence[str], unequal: Sequence[str]
) -> ak.Array:
    counts, starts = _counts(objects)
    px, py, pz, e = cartesian(objects)
    checks = [
        (np.asarray(ak.flatten(objects[f], axis=None)), same)
        for fields, same in ((equal, True), (unequal, False))
        for f in fields
    ]
    best = np.full(len(counts), -1, dtype=np.int64)  # local index of the first object
    chosen = np.zeros((len(counts), k), dtype=np.int64)
    for n in np.unique(counts[counts >= k]):
        if math.comb(int(n), k) > MAX_COMBINATIONS:
            event = int(np.flatnonzero(counts == n)[0])
            raise CombinatoricsError(
                f"event {event} of a chunk has {n} objects: C({n}, {k}) = "
                f"{math.comb(int(n), k):,} combinations of {k}, more than "
                f"brewflow.kinematics.MAX_COMBINATIONS ({MAX_COMBINATIONS:,}); refused. Select "
                "the objects first (e.g. a pT threshold), or raise the limit"
            )
        table = _table(int(n), k)
        group = np.flatnonzero(counts == n)
        step = max(1, _BLOCK // len(table))  # bounded memory for high multiplicities
        for events in (group[i : i + step] for i in range(0, len(group), step)):
            rows = np.arange(n)[:, None] + starts[events]  # (n, events): the group's objects
            distance = _distance([_sum(v[rows], int(n), k) for v in (px, py, pz, e)], target)
            for values, same in checks:  # distance: (combinations, events)
                v = values[rows]
                distance[(v[table[:, 0]] == v[table[:, 1]]) != same] = np.inf
            np.copyto(distance, np.inf, where=np.isnan(distance))  # a NaN never wins (argmin
            pick = np.argmin(distance, axis=0)  # would pick it), as in a loop's d < best
            found = np.isfinite(distance[pick, np.arange(len(events))])
            chosen[events] = table[pick]
            best[events[found]] = 0
    has = best >= 0
    return ak.unflatten(chosen[has].ravel(), np.where(has, k, 0))


def _per_partition(
    function: Callable, fields: Sequence[str], example: list, n: int, *args: Any
) -> ak.Array:
    """``function(*args)`` on one partition, whose first ``n`` arguments are arrays; on the
    typetracer, touch their ``fields`` and return an array typed like ``example``."""
    if metadata_pass(*(array[field] for array in args[:n] for field in fields)):
        return typetracer_like(example)
    return function(*args)


def _apply(
    function: Callable, arrays: Sequence[Any], args: Sequence[Any], *, fields: Sequence[str],
    example: list, label: str,
) -> Any:  # fmt: skip
    """``function(*arrays, *args)``: directly for eager arrays, per partition for lazy ones
    (either refused, by name, when an array has missing values)."""
    for array in arrays:
        forms = [a.form if is_lazy(a) else a.layout.form for a in (array[f] for f in fields)]
        if any(map(_has_option, forms)):  # (the fields read: other fields may miss values)
            raise MissingObjectsError(
                f"{label}: the objects have missing values ({array.type}), e.g. from ak.mask "
                "or a None event; select them with a boolean mask (jets[jets.pt > 30]) or "
                "ak.drop_none first"
            )
    if not is_lazy(arrays[0]):
        return function(*arrays, *args)
    import dask_awkward as dak

    return dak.map_partitions(
        _per_partition, function, tuple(fields), example, len(arrays), *arrays, *args, label=label
    )


def _has_option(form: Any) -> bool:
    """Whether a value at any depth of ``form`` may be missing."""
    if form.is_option:
        return True
    if form.is_record or form.is_union:
        return any(_has_option(c) for c in form.contents)
    return hasattr(form, "content") and _has_option(form.content)


def best_combination(
    objects: Any,
    k: int,
    target: float,
    *,
    equal: Sequence[str] = (),
    unequal: Sequence[str] = (),
) -> Any:
    """Per event, the local indices of the ``k`` objects with summed mass closest to ``target``.

    ``objects`` is a jagged array of records with ``pt, eta, phi, mass`` (eager or lazy). For
    pairs (``k = 2``), ``equal``/``unequal`` name fields the two objects must share or differ in
    (e.g. ``equal=["flavour"], unequal=["charge"]`` for a same-flavour opposite-charge pair).
    Returns, per event, a list of ``k`` indices, or an empty list when the event has fewer than
    ``k`` objects or no combination passes; ``objects[result]`` are the chosen objects.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if (equal or unequal) and k != 2:
        raise ValueError("equal/unequal requirements are defined for pairs (k = 2) only")
    return _apply(
        _best, [objects], [k, float(target), tuple(equal), tuple(unequal)],
        fields=("pt", "eta", "phi", "mass", *equal, *unequal), example=[[0]],
        label="best-combination",
    )  # fmt: skip


def _near(a: ak.Array, b: ak.Array, distance: float) -> ak.Array:
    """Per object of ``a``: is any object of ``b`` in the same event within ``distance``?"""
    (na, _), (nb, starts_b) = _counts(a), _counts(b)
    per_a = np.repeat(nb, na)  # each object of a meets its event's objects of b
    first = np.cumsum(per_a) - per_a  # where its pairs start
    ia = np.repeat(np.arange(len(per_a)), per_a)  # a-major order, like ak.cartesian
    ib = np.arange(int(per_a.sum())) + np.repeat(np.repeat(starts_b, na) - first, per_a)
    eta_a, phi_a, eta_b, phi_b = (
        np.asarray(ak.flatten(x[f], axis=None), dtype=np.float64)
        for x in (a, b)
        for f in ("eta", "phi")
    )
    deta = eta_a[ia] - eta_b[ib]
    if distance > _SQUARES_NORMAL:  # a pair with |deta| >= distance is not close:
        # sqrt(deta² + dphi²) >= sqrt(deta²) = |deta| exactly in floating point, where deta²
        # does not underflow; the wrapped dphi (a slow modulo) only for the others
        keep = np.flatnonzero(np.abs(deta) < distance)
        ia, ib, deta = ia[keep], ib[keep], deta[keep]
    dphi = (phi_a[ia] - phi_b[ib] + np.pi) % (2 * np.pi) - np.pi
    close = np.sqrt(deta**2 + dphi**2) < distance
    out = np.zeros(len(eta_a), dtype=bool)
    out[ia[close]] = True
    return ak.unflatten(out, na)


def near(a: Any, b: Any, distance: float) -> Any:
    """Per object of ``a`` (jagged, with ``eta, phi``): True when an object of ``b`` in the same
    event lies within Delta R < ``distance`` (e.g. jets overlapping leptons). Eager or lazy;
    Delta phi is wrapped to [-pi, pi) as vector does."""
    return _apply(
        _near, [a, b], [float(distance)], fields=("eta", "phi"), example=[[True]], label="near"
    )
