"""best_combination against an explicit loop over ak.combinations order, eager and lazy."""

from __future__ import annotations

import itertools
import math

import awkward as ak
import dask_awkward as dak
import numpy as np
import pytest

from brewflow.kinematics import best_combination, near
from brewflow.nanoevents.reader import eager_events, lazy_events


def _mass(objects) -> float:
    s = [0.0, 0.0, 0.0, 0.0]
    for o in objects:
        pt, eta, phi, m = (float(o[f]) for f in ("pt", "eta", "phi", "mass"))
        px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
        for i, v in enumerate((px, py, pz, math.sqrt(px * px + py * py + pz * pz + m * m))):
            s[i] += v
    return math.sqrt(max(s[3] ** 2 - s[0] ** 2 - s[1] ** 2 - s[2] ** 2, 0.0))


def _loop(events: list[list[dict]], k: int, target: float, equal=(), unequal=()) -> list:
    out = []
    for objects in events:
        best, distance = [], math.inf
        for combo in itertools.combinations(range(len(objects)), k):
            chosen = [objects[i] for i in combo]
            if any(chosen[0][f] != chosen[1][f] for f in equal):
                continue
            if any(chosen[0][f] == chosen[1][f] for f in unequal):
                continue
            d = abs(_mass(chosen) - target)
            if d < distance:  # the first minimum wins
                best, distance = list(combo), d
        out.append(best)
    return out


@pytest.fixture(scope="module")
def jets(demo_set):
    path = demo_set["config"]["datasets"]["ttbar"]["files"][0]
    return path, eager_events(path).Jet[:400]


def test_trijet_closest_to_top_mass(jets):
    _, jet = jets
    got = best_combination(jet, 3, 172.5)
    assert ak.to_list(got) == _loop(ak.to_list(jet), 3, 172.5)
    assert set(ak.num(got)) == {0, 3}  # events with < 3 jets get an empty list


def test_four_objects_from_sums_of_three_and_two():
    """k = 4 where C(n, 3) < C(n, 4) (n >= 8): the sums built from those of three, those from
    pairs' (kinematics._prefix); the same numbers as adding left to right."""
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 12, 200)
    n = int(counts.sum())
    fields = {"pt": rng.exponential(40, n) + 15, "eta": rng.normal(0, 1.5, n),
              "phi": rng.uniform(-np.pi, np.pi, n), "mass": rng.uniform(0, 20, n)}  # fmt: skip
    objects = ak.unflatten(ak.zip(fields), counts)
    assert (counts >= 8).sum() >= 20  # the path is taken
    got = best_combination(objects, 4, 350.0)
    assert ak.to_list(got) == _loop(ak.to_list(objects), 4, 350.0)


def test_pairs_with_requirements_and_lazy_equals_eager(jets):
    path, jet = jets
    jet = ak.with_field(jet, jet.hadronFlavour, "flavour")
    jet = ak.with_field(jet, jet.btagDeepFlavB > 0.3, "tagged")
    options = {"equal": ["flavour"], "unequal": ["tagged"]}
    got = best_combination(jet, 2, 91.2, **options)
    assert ak.to_list(got) == _loop(ak.to_list(jet), 2, 91.2, ["flavour"], ["tagged"])
    lazy = lazy_events([path], step_size=150).Jet
    lazy = lazy[lazy.pt > 30]
    eager = eager_events(path).Jet
    eager = eager[eager.pt > 30]
    assert ak.to_list(best_combination(lazy, 3, 172.5).compute()) == ak.to_list(
        best_combination(eager, 3, 172.5)
    )


def test_large_multiplicities_are_processed_in_blocks(monkeypatch, jets):
    """The combination blocks bound memory; a tiny block gives the same answer."""
    _, jet = jets
    expected = ak.to_list(best_combination(jet, 3, 172.5))
    monkeypatch.setattr("brewflow.kinematics._BLOCK", 7)
    assert ak.to_list(best_combination(jet, 3, 172.5)) == expected


def test_bad_arguments():
    objects = ak.Array([[{"pt": 1.0, "eta": 0.0, "phi": 0.0, "mass": 0.0}]])
    with pytest.raises(ValueError, match="at least 1"):
        best_combination(objects, 0, 1.0)
    with pytest.raises(ValueError, match="pairs"):
        best_combination(objects, 3, 1.0, equal=["charge"])
    assert ak.to_list(best_combination(objects, 1, 1.0)) == [[0]]
    assert np.isfinite(_mass([{"pt": 1, "eta": 0, "phi": 0, "mass": 0}]))


def test_combinatorics_are_bounded():
    """Regression (issue 16.13): an event with thousands of jets built C(n, 3) as a Python list
    and died of MemoryError after minutes; it is refused at once, saying what and why."""
    import time

    from brewflow.kinematics import MAX_COMBINATIONS, CombinatoricsError

    n = 3000
    jets = ak.zip(
        {"pt": [[30.0] * 5, [40.0] * n], "eta": [[0.1] * 5, [0.2] * n],
         "phi": [[0.3] * 5, [0.4] * n], "mass": [[5.0] * 5, [6.0] * n]},
    )  # fmt: skip
    started = time.perf_counter()
    with pytest.raises(
        CombinatoricsError, match=rf"event 1 of a chunk has {n} objects: C\({n}, 3\) = "
    ):
        best_combination(jets, 3, 172.5)
    assert time.perf_counter() - started < 5
    assert math.comb(220, 3) <= MAX_COMBINATIONS  # what a real event needs is searched
    assert len(best_combination(jets[:1], 3, 172.5)[0]) == 3


def test_near_against_a_loop_at_the_boundary():
    """near() against an explicit loop, with pairs at |deta| just below, at and above the
    distance (the pairs it skips before wrapping dphi), dphi across +-pi, and a NaN."""
    rng = np.random.default_rng(11)
    d = 0.4
    events_a, events_b = [], []
    for _ in range(300):
        b = [{"eta": float(rng.normal(0, 1.5)), "phi": float(rng.uniform(-np.pi, np.pi))}
             for _ in range(int(rng.integers(0, 4)))]  # fmt: skip
        a = [{"eta": float(rng.normal(0, 1.5)), "phi": float(rng.uniform(-np.pi, np.pi))}
             for _ in range(int(rng.integers(0, 6)))]  # fmt: skip
        for o in b[:1]:  # edge cases around this event's first b
            for deta in (d, np.nextafter(d, 0), np.nextafter(d, 1), -d, 0.39999):
                a.append({"eta": o["eta"] + deta, "phi": o["phi"]})
            a.append({"eta": o["eta"], "phi": o["phi"] + 2 * np.pi - 0.1})  # wraps: close
            a.append({"eta": float("nan"), "phi": o["phi"]})
        events_a.append(a)
        events_b.append(b)

    def close(x, y) -> bool:
        dphi = (x["phi"] - y["phi"] + math.pi) % (2 * math.pi) - math.pi
        return math.sqrt((x["eta"] - y["eta"]) ** 2 + dphi**2) < d

    pairs = zip(events_a, events_b, strict=True)
    expected = [[any(close(x, y) for y in b) for x in a] for a, b in pairs]
    got = near(ak.Array(events_a), ak.Array(events_b), d)
    assert ak.to_list(got) == expected
    assert sum(map(sum, expected)) > 300  # close pairs exist (the edge cases among them)


@pytest.mark.parametrize("distance", [1e-200, 2e-155, 5e-324])
def test_near_at_distances_whose_squares_underflow(distance):
    """Below ~1e-154 a square underflows and sqrt(deta²) < |deta|: no pair is skipped there."""
    a, b = ak.Array([[{"eta": distance, "phi": 0.0}]]), ak.Array([[{"eta": 0.0, "phi": 0.0}]])
    expected = math.sqrt(distance**2 + 0.0**2) < distance
    assert ak.to_list(near(a, b, distance)) == [[expected]]


def test_an_object_with_nan_never_wins():
    """A NaN in one object makes its combinations' distances NaN: the best finite one wins,
    as in the loop (argmin alone picked the NaN and gave the event nothing)."""
    nan = float("nan")
    rows = [(80.0, 0.1, 0.0), (nan, 0.2, 1.0), (60.0, -0.5, 2.0), (70.0, 1.0, -2.0)]
    jets = [[{"pt": p, "eta": e, "phi": f, "mass": 5.0} for p, e, f in rows],
            [{"pt": nan, "eta": 0.0, "phi": 0.0, "mass": 5.0}] * 3]  # fmt: skip
    got = ak.to_list(best_combination(ak.Array(jets), 3, 172.5))
    assert got == _loop(jets, 3, 172.5) == [[0, 2, 3], []]


@pytest.mark.parametrize("missing", ["in lists", "an event"])
def test_objects_with_missing_values_are_refused_by_name(missing):
    """ak.mask-ed objects or a None event: a named error, not numpy's IndexError or
    ValueError from deep inside (which gave a wrong index or no file); lazy too."""
    from brewflow.kinematics import MissingObjectsError

    rows = [[{"pt": 50.0 + i, "eta": 0.1 * i, "phi": 0.0, "mass": 5.0} for i in range(4)]] * 2
    jets = ak.Array(rows)
    masked = ak.mask(jets, jets.pt > 51) if missing == "in lists" else ak.mask(jets, [True, False])
    for objects in (masked, dak.from_awkward(masked, npartitions=1)):
        with pytest.raises(MissingObjectsError, match="best-combination: the objects have"):
            best_combination(objects, 3, 172.5)
        with pytest.raises(MissingObjectsError, match="near: the objects have missing"):
            near(objects, jets, 0.4)
    extra = ak.with_field(jets, ak.mask(jets.pt, jets.pt > 51), "tag")  # a field not read
    assert ak.to_list(best_combination(extra, 3, 172.5)) == _loop(rows, 3, 172.5)
