"""The config model: datasets, their files and processes, and the payloads they read."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from pathlib import Path

from brewflow.errors import ConfigError
from brewflow.files import expand_glob

OBJECT_TYPES = ("jes", "jer", "unclustered")  # systematic types that vary objects (brewflow.jetmet)


def dataset_spec(config: Mapping, dataset: str) -> Mapping:
    """The config of ``dataset``; an unknown name is a :class:`ConfigError` listing the known."""
    if dataset not in config["datasets"]:
        known = ", ".join(config["datasets"])
        raise ConfigError(f"unknown dataset {dataset!r}; config has: {known}")
    return config["datasets"][dataset]


def is_generated(dataset: Mapping) -> bool:
    """True for demo datasets whose files ``brewflow generate`` writes."""
    return "generator" in dataset


def process_of(config: Mapping, dataset: str) -> str:
    """The stacking group of a dataset (its ``process``, else its name)."""
    return config["datasets"][dataset].get("process", dataset)


def payload_files(config: Mapping, dataset: str) -> list[str]:
    """Files besides its data that a dataset's analysis reads: golden JSON (data with
    ``lumi_mask``), correction payloads, JERC payload; each once, in config order."""
    mask = config["datasets"][dataset].get("lumi_mask")
    files = [spec["file"] for spec in config["corrections"].values()]
    if "jets" in config:
        files.append(config["jets"]["file"])
    files += config.get("models", {}).values()
    return list(dict.fromkeys([*([mask] if mask else []), *files]))


def dataset_files(config: Mapping, dataset: str) -> list[str]:
    """The dataset's files with globs expanded (sorted; a glob's matches that are folders are
    left out), checking that each exists and that no file is listed twice, under any name
    (``x.root``, ``./x.root``, a symlink: the resolved path counts)."""
    out: list[str] = []
    key = f"config key 'datasets.{dataset}.files'"
    for pattern in config["datasets"][dataset]["files"]:
        if glob.has_magic(pattern):
            files = expand_glob(pattern)
            if not files:
                folders = sorted(glob.glob(pattern, recursive=True))[:3]
                what = f"only folders ({', '.join(folders)})" if folders else "no file"
                raise ConfigError(f"{key}: the glob {pattern!r} matches {what}")
            out.extend(files)
        elif is_generated(config["datasets"][dataset]) or Path(pattern).is_file():
            out.append(pattern)
        elif Path(pattern).is_dir():
            raise ConfigError(
                f"{key}: {pattern!r} is a folder; list its files or use a glob "
                f"({pattern.rstrip('/')}/*.root)"
            )
        else:
            raise ConfigError(f"{key}: file {pattern!r} does not exist")
    seen: dict[str, int] = {}
    for i, name in enumerate(out):
        first = seen.setdefault(os.path.realpath(name), i)
        if first != i:
            other = out[first]
            same = "listed twice" if other == name else f"and {name!r} are the same file"
            raise ConfigError(
                f"{key}: {other!r} {same}; its events would be counted twice (list it once)"
            )
    return out


def check_files_once(config: Mapping) -> None:
    """Every dataset's files exist (:func:`dataset_files`) and no file is in two datasets (it
    would be counted twice in a process, or in data and MC)."""
    owner: dict[str, tuple[str, str]] = {}
    for name, dataset in config["datasets"].items():
        if is_generated(dataset):
            continue
        for path in dataset_files(config, name):
            first = owner.setdefault(os.path.realpath(path), (name, path))
            if first[0] != name:
                raise ConfigError(
                    f"config key 'datasets.{name}.files': {path!r} is also in dataset "
                    f"{first[0]!r} (as {first[1]!r}); a file belongs to one dataset, or its "
                    "events are counted twice"
                )


def applicable_systematics(config: Mapping, dataset: str) -> list[str]:
    """Names of the configured systematics that apply to ``dataset`` (none for data)."""
    if config["datasets"][dataset]["is_data"]:
        return []
    return [
        name
        for name, spec in config["systematics"].items()
        if dataset in spec.get("datasets", config["datasets"])
    ]


def systematics_for(config: Mapping, dataset: str) -> list[str]:
    """``nominal`` plus ``<name>Up``/``<name>Down`` for each systematic applying to the dataset."""
    names = applicable_systematics(config, dataset)
    return ["nominal", *(f"{name}{d}" for name in names for d in ("Up", "Down"))]


def object_variation(config: Mapping, systematic: str) -> tuple[str, str, str] | None:
    """``(type, source, "Up"|"Down")`` when ``systematic`` varies objects, else None."""
    for direction in ("Up", "Down"):
        spec = config["systematics"].get(systematic.removesuffix(direction))
        if systematic.endswith(direction) and spec is not None and spec["type"] in OBJECT_TYPES:
            return spec["type"], spec.get("source", "Total"), direction
    return None


def processes(config: Mapping) -> dict[str, list[str]]:
    """Process -> its datasets, in config order."""
    out: dict[str, list[str]] = {}
    for dataset in config["datasets"]:
        out.setdefault(process_of(config, dataset), []).append(dataset)
    return out


def on_bad_file(config: Mapping, dataset: str) -> str:
    """``fail`` or ``skip``: the dataset's ``on_bad_file``, else the config's."""
    return config["datasets"][dataset].get("on_bad_file", config["on_bad_file"])


def skim_targets(config: Mapping) -> list[tuple[str, str]]:
    """``(skim, dataset)`` pairs the config asks for."""
    return [
        (name, dataset)
        for name, spec in config.get("skims", {}).items()
        for dataset in spec.get("datasets") or config["datasets"]
    ]
