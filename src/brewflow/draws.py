"""Reproducible random draws per event (and per object): pure functions of ``(run,
luminosityBlock, event)``, the object's index and a salt, so every rerun and every chunking draws
the same numbers (JER smearing, electron smearing, the HEM veto's MC share). A SplitMix64 hash
chain; normal numbers by Box-Muller. Lazy or eager."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from brewflow.arrays import is_lazy, metadata_pass

__all__ = ["event_normals", "event_uniforms", "object_uniforms"]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _event_keys(run: np.ndarray, lumi: np.ndarray, event: np.ndarray, salt: int) -> np.ndarray:
    """A 64-bit hash per (run, lumi, event, salt)."""
    key = _splitmix64(run.astype(np.uint64) ^ np.uint64(salt))
    key = _splitmix64(key ^ lumi.astype(np.uint64))
    return _splitmix64(key ^ event.astype(np.uint64))


def _object_keys(
    run: np.ndarray, lumi: np.ndarray, event: np.ndarray, index: np.ndarray, salt: int
) -> np.ndarray:
    """A 64-bit hash per (run, lumi, event, object index, salt)."""
    return _splitmix64(_event_keys(run, lumi, event, salt) ^ index.astype(np.uint64))


def _open_unit(key: np.ndarray) -> np.ndarray:
    """A number in (0, 1) from the top 53 bits of ``key``."""
    return ((key >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _normals_numpy(
    run: np.ndarray, lumi: np.ndarray, event: np.ndarray, index: np.ndarray, salt: int
) -> np.ndarray:
    """N(0, 1) per (run, lumi, event, index): hash chain, then Box-Muller."""
    key = _object_keys(run, lumi, event, index, salt)
    u1, u2 = _open_unit(key), _open_unit(_splitmix64(key))
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _uniforms_numpy(
    run: np.ndarray, lumi: np.ndarray, event: np.ndarray, index: np.ndarray, salt: int
) -> np.ndarray:
    """U(0, 1) per (run, lumi, event, index)."""
    return _open_unit(_object_keys(run, lumi, event, index, salt))


def _per_object(
    kernel: Any, run: Any, lumi: Any, event: Any, like: Any, salt: int
) -> ak.Array:  # fmt: skip
    if metadata_pass(like, run, lumi, event):
        return ak.values_astype(like, np.float64)
    counts = ak.to_numpy(ak.num(like, axis=1))
    repeat = lambda a: np.repeat(ak.to_numpy(a), counts)  # noqa: E731
    index = ak.to_numpy(ak.flatten(ak.local_index(like, axis=1)))
    flat = kernel(repeat(run), repeat(lumi), repeat(event), index, salt)
    return ak.unflatten(flat, counts)


def _draws(kernel: Any, events: Any, like: Any, salt: int, label: str) -> Any:
    args = (events.run, events.luminosityBlock, events.event, like)
    if is_lazy(like):
        import dask_awkward as dak

        return dak.map_partitions(_per_object, kernel, *args, salt, label=label)
    return _per_object(kernel, *args, salt)


def event_normals(events: Any, like: Any, salt: int = 0) -> Any:
    """Standard normal numbers shaped like the jagged ``like``, reproducible per event and object.

    They depend only on ``(run, luminosityBlock, event)``, the object's index and ``salt``.
    """
    return _draws(_normals_numpy, events, like, salt, "event-normals")


def object_uniforms(events: Any, like: Any, salt: int) -> Any:
    """Numbers uniform in (0, 1) shaped like the jagged ``like``, reproducible per event and
    object (as :func:`event_normals`)."""
    return _draws(_uniforms_numpy, events, like, salt, "object-uniforms")


def _uniforms_awkward(run: Any, lumi: Any, event: Any, salt: int) -> Any:
    if metadata_pass(run, lumi, event):
        return ak.values_astype(run, np.float64)
    run, lumi, event = (np.asarray(ak.to_numpy(a)) for a in (run, lumi, event))
    keys = _event_keys(run, lumi, event, salt)
    return ak.Array((keys >> np.uint64(11)).astype(np.float64) * 2.0**-53)


def event_uniforms(events: Any, salt: int) -> Any:
    """A number uniform in [0, 1) per event, a pure function of ``(run, luminosityBlock,
    event)`` and ``salt``: the same on every rerun and for any chunking."""
    args = (events.run, events.luminosityBlock, events.event)
    if is_lazy(events.run):
        import dask_awkward as dak

        return dak.map_partitions(_uniforms_awkward, *args, salt, label="event-uniforms")
    return _uniforms_awkward(*args, salt)
