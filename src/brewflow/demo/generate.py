"""Deterministic NanoAOD-like demo datasets: Drell-Yan, ttbar, WW and pseudo-data.

Each MC model draws parton-level kinematics (resonances decayed isotropically in their rest
frame, boosted with ``vector``), then a toy detector: efficiencies, pT smearing, identification
and isolation, fake leptons, ISR and pileup jets, b-tag discriminant, MET from neutrinos plus
resolution, the ``HLT_IsoMu24`` decision. Files use NanoAOD branch names and types.

Pseudo-data is a Poisson fluctuation of the sum of the MC models at the configured luminosity:
for each model ``m``, ``N_m ~ Poisson(L * xsec_m)`` events are drawn from the same model, so
MC scaled by ``xsec * L / sum(genWeight)`` agrees with data within statistical errors.
Units: GeV, radians, pb, pb^-1.
"""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from brewflow.config import ConfigError, demo_payloads, era_settings, golden_json
from brewflow.demo.detector import nanoaod
from brewflow.demo.events import (
    CLUSTER,
    DATA_RUNS,
    EVENTS_PER_LUMI,
    MODELS,
    UNCERTIFIED_EVERY,
    model,
)
from brewflow.demo.payloads import PILEUP_DATA_SCALE, write_demo_corrections
from brewflow.files import atomic_output, atomic_write
from brewflow.reproducible import fixed_root_clock

__all__ = ["MODELS", "generate_data", "generate_demo", "generate_mc", "write_golden_json"]

log = logging.getLogger(__name__)


def _rng(seed: int, *names: str | int) -> np.random.Generator:
    keys = [zlib.crc32(str(x).encode()) for x in names]
    return np.random.default_rng([seed, *keys])


def _write(
    path: Path, branches: dict, run: np.ndarray, lumi: np.ndarray, event: np.ndarray, seed: int
) -> None:
    """Write one file atomically."""
    data = {
        "run": run.astype(np.uint32),
        "luminosityBlock": lumi.astype(np.uint32),
        "event": event.astype(np.uint64),
        **branches,
    }
    types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()}
    # a UUID derived from the content's name and seed, so regenerated files keep their identity
    file_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"brewflow-demo/{path.name}/{seed}")
    n = len(data["event"])
    with (
        atomic_output(path) as tmp,
        fixed_root_clock(),
        uproot.recreate(tmp, compression=uproot.ZLIB(4), uuid_function=lambda: file_uuid) as f,
    ):
        tree = f.mktree("Events", types, title="Events")
        for start in range(0, max(n, 1), CLUSTER):  # baskets of CLUSTER events, as in NanoAOD
            tree.extend({k: v[start : start + CLUSTER] for k, v in data.items()})


def _split(n: int, parts: int) -> list[int]:
    base, extra = divmod(n, parts)
    return [base + (i < extra) for i in range(parts)]


def generate_mc(
    name: str, paths: Sequence[str | Path], events: int, *, seed: int = 42, era: str | None = None
) -> int:
    """Write ``events`` events of the model ``name`` (:func:`~brewflow.demo.events.model`)
    split evenly over ``paths``; returns the count. Each
    ``era`` draws its own events."""
    spec = model(name)
    first = 0
    for index, (path, n) in enumerate(zip(paths, _split(events, len(paths)), strict=True)):
        rng = _rng(seed, name, *([era] if era else []), index)
        branches = nanoaod(rng, spec, n, is_data=False)
        event = np.arange(first, first + n) + 1
        _write(Path(path), branches, np.ones(n), 1 + event // 1000, event, seed)
        first += n
        log.info("wrote %s: %d %s events", path, n, name)
    return events


def _concatenate(blocks: list[dict]) -> dict:
    out = {}
    for key in blocks[0]:
        values = [b[key] for b in blocks]
        out[key] = (
            np.concatenate(values) if isinstance(values[0], np.ndarray) else ak.concatenate(values)
        )
    return out


def generate_data(
    paths: Sequence[str | Path],
    luminosity: float,
    *,
    seed: int = 42,
    lumi_mask: str | Path | None = None,
    era: str | None = None,
    pileup: float = PILEUP_DATA_SCALE["nominal"],
    inject: Mapping[str, float] | None = None,
) -> int:
    """Pseudo-data: ``Poisson(L * xsec)`` events of every model, shuffled over ``paths``.

    With ``lumi_mask``, also a golden JSON there that leaves out every tenth lumi block
    (``UNCERTIFIED_EVERY``); events are then drawn for ``L / certified fraction`` so that the
    certified ones correspond to ``L`` on average. Each ``era`` draws its own events, with a
    true-interaction profile of scale ``pileup``; ``inject[model]`` multiplies that model's
    cross section (a signal strength the fit should find).
    """
    scale = UNCERTIFIED_EVERY / (UNCERTIFIED_EVERY - 1) if lumi_mask else 1.0
    blocks, total = [], 0
    for index, path in enumerate(paths):
        rng = _rng(seed, "data", *([era] if era else []), index)
        parts = []
        injected = [n for n in (inject or {}) if n not in MODELS]  # signals: when asked
        for name, spec in [*MODELS.items(), *((n, model(n)) for n in injected)]:
            strength = (inject or {}).get(name, 1.0)
            mean = scale * luminosity * spec.xsec * strength / len(paths)
            n = int(rng.poisson(mean))
            parts.append(nanoaod(rng, spec, n, is_data=True, pileup=pileup))
        block = _concatenate(parts)
        n = len(block["MET_pt"])
        order = rng.permutation(n)
        block = {k: v[order] for k, v in block.items()}
        blocks.append((Path(path), block, n))
        total += n
    first, certified = 0, dict[str, list[list[int]]]()
    for index, (path, block, n) in enumerate(blocks):
        event = np.arange(first, first + n) + 1
        run = DATA_RUNS[index % len(DATA_RUNS)]
        lumi = 1 + event // EVENTS_PER_LUMI
        _write(path, block, np.full(n, run), lumi, event, seed)
        good = [int(b) for b in np.unique(lumi) if b % UNCERTIFIED_EVERY]
        certified.setdefault(str(run), []).extend([[b, b] for b in good])
        first += n
        log.info("wrote %s: %d data events", path, n)
    if lumi_mask:
        write_golden_json(lumi_mask, certified)
    return total


def write_golden_json(path: str | Path, certified: dict[str, list[list[int]]]) -> None:
    """A golden JSON (run -> inclusive lumi-block ranges, adjacent blocks joined), atomically."""
    out = {}
    for run, blocks in sorted(certified.items(), key=lambda item: int(item[0])):
        ranges: list[list[int]] = []
        for first, last in sorted(blocks):
            if ranges and first <= ranges[-1][1] + 1:
                ranges[-1][1] = max(ranges[-1][1], last)
            else:
                ranges.append([first, last])
        out[run] = ranges
    lines = [f"  {json.dumps(run)}: {json.dumps(ranges)}" for run, ranges in out.items()]
    atomic_write(path, "{\n" + ",\n".join(lines) + "\n}\n")


def generate_demo(
    config: Mapping[str, Any],
    *,
    events: int | None = None,
    seed: int | None = None,
    datasets: Sequence[str] | None = None,
) -> None:
    """Everything the config's ``generate`` block asks for: its payloads, the files of its
    generated datasets (``datasets``: only these) and the demo BDT."""
    settings = config.get("generate", {"events": 40000, "seed": 42})
    pileups = settings.get("pileup", {})
    for era, path in demo_payloads(config).items():
        write_demo_corrections(path, pileup=pileups.get(era) if era else None)
    events = events or settings["events"]
    seed = settings["seed"] if seed is None else seed
    for name, dataset in config["datasets"].items():
        generator = dataset.get("generator")
        if generator is None or (datasets and name not in datasets):
            continue
        era = dataset.get("era")
        if generator == "data":
            n = generate_data(dataset["files"], era_settings(config, era)["luminosity"],
                              seed=seed, lumi_mask=golden_json(config, name), era=era,
                              pileup=pileups.get(era, PILEUP_DATA_SCALE["nominal"]),
                              inject=settings.get("inject"))  # fmt: skip
        else:
            try:
                model(generator)
            except KeyError as err:
                key = f"datasets.{name}.generator"
                raise ConfigError(f"config key {key!r}: {err.args[0]}") from None
            n = generate_mc(generator, dataset["files"], events, seed=seed, era=era)
        log.info("generated %s (%s): %d events in %d files", name, generator, n,
                 len(dataset["files"]))  # fmt: skip
    if settings.get("bdt"):
        from brewflow.demo.physics import train_demo_bdt

        n = train_demo_bdt(config, seed=seed)
        log.info("trained the demo BDT on %d events -> %s", n, settings["bdt"])
