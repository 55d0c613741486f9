"""An independent reader of CMS combine datacards, for the tests of the fit inputs.

It reads a card as combine's ``text2workspace.py`` does (``DatacardParser.parseCard`` and
``ShapeTools``, documented in combine's "Preparing the datacard" and "Automatic statistical
uncertainties" pages), refusing what combine refuses, and resolves the rates and observations
from the ROOT shapes file with uproot. It shares no code with :mod:`brewflow.outputs.fit_inputs`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import uproot

NUISANCE_TYPES = ("lnN", "lnU", "shape", "shapeN", "shape?", "gmN")


@dataclass
class Card:
    """A datacard as read: ``observations`` per channel (the ``bin`` order), one column per
    (channel, process) with its process id and rate (``None``: ``-1``, read from the
    template), nuisances by name (type, value per column, ``None`` for ``-``), the
    ``shapes`` lines, ``autoMCStats`` settings per channel pattern, and each block's lines
    (to check their alignment)."""

    declared: dict[str, int | None]
    observations: dict[str, float]
    columns: list[tuple[str, str, int, float | None]]
    nuisances: dict[str, tuple[str, list[float | None]]]
    shapes: list[list[str]]
    auto_mc_stats: dict[str, tuple[float, bool, int]]
    rate_params: dict[str, list[tuple[str, str, float, str]]] = field(default_factory=dict)
    blocks: dict[str, list[str]] = field(default_factory=dict)

    @property
    def channels(self) -> list[str]:
        return list(self.observations)

    @property
    def processes(self) -> list[str]:
        return list(dict.fromkeys(p for _, p, _, _ in self.columns))

    def signals(self) -> set[str]:
        return {p for _, p, i, _ in self.columns if i <= 0}

    def scaled_by(self, name: str) -> set[tuple[str, str]]:
        """The (channel, process) columns a ``rateParam`` multiplies (its patterns matched
        as combine does, with ``fnmatch``)."""
        return {
            (b, p)
            for b, p, _, _ in self.columns
            for bins, procs, _, _ in self.rate_params[name]
            if fnmatch.fnmatch(b, bins) and fnmatch.fnmatch(p, procs)
        }

    def applies(self, nuisance: str) -> set[tuple[str, str]]:
        """The (channel, process) columns a nuisance affects (a value other than - or 0)."""
        _, values = self.nuisances[nuisance]
        return {(b, p) for (b, p, _, _), v in zip(self.columns, values, strict=True) if v}


def _number(text: str) -> float | None:
    return None if text == "-" else float(text)


def read_card(text: str) -> Card:
    """Parse a datacard; a malformed one raises ``ValueError`` naming what combine refuses."""
    declared: dict[str, int | None] = {}
    shapes: list[list[str]] = []
    observed: list[str] = []
    channels: list[str] = []
    table: dict[str, list[str]] = {}
    process_lines: list[list[str]] = []
    nuisances: dict[str, tuple[str, list[float | None]]] = {}
    auto: dict[str, tuple[float, bool, int]] = {}
    rate_params: dict[str, list[tuple[str, str, float, str]]] = {}
    blocks: dict[str, list[str]] = {"observation": [], "process": []}
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    rates_seen = False
    for line in lines:
        if line.startswith("--"):
            continue
        words = line.split()
        key = words[0]
        if not rates_seen:
            if key in ("imax", "jmax", "kmax"):
                declared[key] = None if words[1] == "*" else int(words[1])
            elif key == "shapes":
                if len(words) < 5:
                    raise ValueError(f"malformed shapes line: {line!r}")
                shapes.append(words[1:])
            elif key == "bin" and not observed:
                channels = words[1:]
                blocks["observation"].append(line)
            elif key == "observation":
                observed = words[1:]
                blocks["observation"].append(line)
            elif key == "bin":
                table["bin"] = words[1:]
                blocks["process"].append(line)
            elif key == "process":
                process_lines.append(words[1:])
                blocks["process"].append(line)
            elif key == "rate":
                table["rate"] = words[1:]
                blocks["process"].append(line)
                rates_seen = True
            else:
                raise ValueError(f"unknown line before the rates: {line!r}")
            continue
        if len(words) >= 2 and words[1] == "autoMCStats":
            if not 3 <= len(words) <= 5:
                raise ValueError(f"malformed autoMCStats line: {line!r}")
            matched = [c for c in channels if fnmatch.fnmatch(c, key)]
            if not matched:
                raise ValueError(f"autoMCStats for {key!r}: no such channel")
            settings = (float(words[2]), bool(int(words[3])) if len(words) > 3 else False,
                        int(words[4]) if len(words) > 4 else 1)  # fmt: skip
            auto[key] = settings
            continue
        if len(words) >= 2 and words[1] == "rateParam":
            if len(words) not in (5, 6):
                raise ValueError(f"malformed rateParam line: {line!r}")
            rate_params.setdefault(key, []).append(
                (words[2], words[3], float(words[4]), words[5] if len(words) == 6 else "")
            )
            continue
        kind = words[1]
        if kind not in NUISANCE_TYPES:
            raise ValueError(f"nuisance {key!r}: unsupported type {kind!r}")
        values = words[2:]
        if len(values) != len(table["bin"]):
            raise ValueError(f"nuisance {key!r}: {len(values)} values for {len(table['bin'])} "
                             "columns")  # fmt: skip
        if key in nuisances:
            raise ValueError(f"nuisance {key!r} given twice")
        nuisances[key] = (kind, [_number(v) for v in values])
        blocks["process"].append(line)
    if not rates_seen:
        raise ValueError("no rate line")
    for channel in channels:
        if re.match("[0-9]", channel):
            raise ValueError(f"channel {channel!r} starts with a digit (combine refuses it)")
    if len(observed) != len(channels):
        raise ValueError(f"{len(observed)} observations for {len(channels)} channels")
    if declared.get("imax") not in (None, len(channels)):
        raise ValueError(f"imax {declared['imax']}, but {len(channels)} channels")
    if len(process_lines) != 2:
        raise ValueError(f"{len(process_lines)} process lines (names and ids expected)")
    names, ids = process_lines
    if re.fullmatch("-?[0-9]+", names[0]):  # combine accepts them in either order
        names, ids = ids, names
    if not len(table["bin"]) == len(names) == len(ids) == len(table["rate"]):
        raise ValueError("bin, process and rate lines of different lengths")
    columns = []
    kind_of: dict[str, bool] = {}
    for b, p, i, r in zip(table["bin"], names, ids, table["rate"], strict=True):
        if b not in channels:
            raise ValueError(f"column of channel {b!r}, which the observations do not declare")
        signal = int(i) <= 0
        if kind_of.setdefault(p, signal) != signal:
            raise ValueError(f"process {p!r} is a signal in one channel, a background in another")
        rate = float(r)
        columns.append((b, p, int(i), None if rate == -1 else rate))
    processes = list(dict.fromkeys(names))
    if declared.get("jmax") not in (None, len(processes) - 1):
        raise ValueError(f"jmax {declared['jmax']}, but {len(processes)} processes")
    if not any(kind_of.values()):
        raise ValueError("no signal process (id <= 0)")
    if declared.get("kmax") not in (None, len(nuisances)):
        raise ValueError(f"kmax {declared['kmax']}, but {len(nuisances)} nuisances")
    observations = {c: float(o) for c, o in zip(channels, observed, strict=True)}
    card = Card(declared, observations, columns, nuisances, shapes, auto, rate_params, blocks)
    for name, uses in rate_params.items():
        for bins, procs, _, limits in uses:
            if not card.scaled_by(name):
                raise ValueError(f"rateParam {name!r} ({bins}, {procs}) matches no column")
            if limits and not re.fullmatch(r"\[[-+.0-9eE]+,[-+.0-9eE]+\]", limits):
                raise ValueError(f"rateParam {name!r}: malformed range {limits!r}")
    return card


def _shape_names(card: Card, channel: str, process: str) -> tuple[str, str, str]:
    """``(file, nominal, systematic pattern)`` of a (channel, process) by the most specific
    ``shapes`` line, as combine picks it."""
    for want_process, want_channel in ((process, channel), ("*", channel), (process, "*"),
                                       ("*", "*")):  # fmt: skip
        for line in card.shapes:
            if line[0] == want_process and line[1] == want_channel:
                nominal, systematic = line[3], line[4] if len(line) > 4 else ""
                fill = lambda s: s.replace("$CHANNEL", channel).replace("$PROCESS", process)  # noqa: E731
                return line[2], fill(nominal), fill(systematic)
    raise ValueError(f"no shapes line for process {process!r}, channel {channel!r}")


@dataclass
class Templates:
    """What a card reads from its shapes file: per (channel, process) the nominal values (in
    range, as ``TH1::Integral`` sums them), per (channel, process, systematic) the Up and
    Down values, and the data per channel."""

    nominal: dict[tuple[str, str], np.ndarray]
    variations: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]
    data: dict[str, np.ndarray]

    def rate(self, channel: str, process: str) -> float:
        return float(self.nominal[(channel, process)].sum())


def read_templates(card: Card, directory: Path) -> Templates:
    """The templates the card names, read with uproot; a missing one, a channel whose
    histograms differ in binning, a rate or an observation that differs from its template's
    integral (beyond combine's own tolerance: 1% of a rate, 0.5% of an observation) raise
    ``ValueError``."""
    nominal, variations, data, edges = {}, {}, {}, {}
    files: dict[str, uproot.ReadOnlyDirectory] = {}

    def histogram(file: str, name: str, channel: str) -> np.ndarray:
        if file not in files:
            files[file] = uproot.open(directory / file)
        if name not in files[file]:
            raise ValueError(f"{file}: no histogram {name!r}")
        h = files[file][name]
        found = edges.setdefault(channel, h.axis().edges())
        if not np.array_equal(found, h.axis().edges()):
            raise ValueError(f"{file}: {name!r} has another binning than its channel's")
        return h.values()

    try:
        for channel, observation in card.observations.items():
            file, name, _ = _shape_names(card, channel, "data_obs")
            data[channel] = histogram(file, name, channel)
            total = data[channel].sum()
            if observation != -1 and abs(total - observation) > 0.005 * max(observation, 1e-12):
                raise ValueError(f"channel {channel!r}: observation {observation}, data_obs "
                                 f"holds {total}")  # fmt: skip
        for b, p, _, rate in card.columns:
            file, name, pattern = _shape_names(card, b, p)
            nominal[(b, p)] = histogram(file, name, b)
            integral = nominal[(b, p)].sum()
            if rate is not None and abs(integral - rate) > 0.01 * max(1.0, abs(rate)):
                raise ValueError(f"{b}/{p}: rate {rate}, template integral {integral}")
            if rate is None and integral == 0:
                raise ValueError(f"{b}/{p}: rate -1 of an empty template (combine cannot "
                                 "resolve it)")  # fmt: skip
            for nuisance, (kind, _) in card.nuisances.items():
                if kind.startswith("shape") and (b, p) in card.applies(nuisance):
                    up, down = (histogram(file, pattern.replace("$SYSTEMATIC", nuisance + d), b)
                                for d in ("Up", "Down"))  # fmt: skip
                    variations[(b, p, nuisance)] = (up, down)
    finally:
        for handle in files.values():
            handle.close()
    return Templates(nominal, variations, data)


def token_columns(line: str, count: int) -> list[int]:
    """The character offsets at which the last ``count`` tokens of a line start."""
    starts = [m.start() for m in re.finditer(r"\S+", line)]
    return starts[-count:]
