"""Analysis configuration: strict YAML loading, JSON-schema validation with defaults, checks.

Every error is a :class:`ConfigError` whose message names the config key or file and says what
to do, raised before any job runs.
"""

from __future__ import annotations

import copy
import glob
import itertools
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from brewflow.errors import BrewflowError

SHAPE_TYPES = ("jes", "jer", "unclustered")  # systematic types that vary objects (brewflow.jetmet)

__all__ = [
    "ConfigError",
    "check_scheduler",
    "dataset_files",
    "is_generated",
    "load_config",
    "payload_files",
    "process_of",
    "schema",
    "validate",
    "workflow_config",
]


class ConfigError(BrewflowError, ValueError):
    """A configuration problem, reported with the offending key or file."""


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate mapping keys (PyYAML keeps the last silently)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"{key_node.start_mark.name}:{key_node.start_mark.line + 1}: duplicate key "
                f"{key!r} (first at line {seen[key].line + 1}); each dataset, region, histogram "
                "and systematic name must appear once"
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def schema() -> dict:
    """The configuration JSON schema (shipped with the package)."""
    text = resources.files("brewflow").joinpath("schemas/config.schema.yaml").read_text()
    return yaml.safe_load(text)


MAX_NODES = 100_000
"""The most YAML nodes a config may hold once its aliases are expanded: far more than any
analysis needs, far less than an alias bomb ("billion laughs") expands to."""


def _expanded_size(node: yaml.Node, path: Path, memo: dict[int, int], open_: set[int]) -> int:
    """The number of nodes of ``node`` with every alias expanded, computed on the composed
    graph (each node once), so an alias bomb is measured, not built."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in open_:
        mark = node.start_mark
        raise ConfigError(
            f"{path}:{mark.line + 1}: a YAML alias refers to the node that contains it "
            "(a recursive structure); a config is a tree"
        )
    open_.add(key)
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(
            _expanded_size(k, path, memo, open_) + _expanded_size(v, path, memo, open_)
            for k, v in node.value
        )
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, path, memo, open_) for item in node.value)
    open_.discard(key)
    memo[key] = size
    return size


def _read(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        with path.open() as handle:  # a stream, so YAML marks name the file
            loader = _StrictLoader(handle)
            try:
                node = loader.get_single_node()
                size = 0 if node is None else _expanded_size(node, path, {}, set())
                if size > MAX_NODES:
                    raise ConfigError(
                        f"config file {str(path)!r}: its YAML aliases (*name) expand to {size:,} "
                        f"nodes (at most {MAX_NODES:,}); refused (an alias bomb?)"
                    )
                data = None if node is None else loader.construct_document(node)
            finally:
                loader.dispose()
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top level")
    return data


def _merge(base: dict, update: Mapping) -> dict:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def load_config(
    paths: str | Path | Sequence[str | Path], overrides: Mapping[str, Any] | None = None
) -> dict:
    """Read one or more YAML/JSON config files (later ones update earlier ones), apply
    ``overrides`` (e.g. Snakemake's ``--config key=value``), and validate."""
    if isinstance(paths, str | Path):
        paths = [paths]
    config: dict = {}
    for path in paths:
        _merge(config, _read(path))
    _merge(config, overrides or {})
    return validate(config, sources=[str(p) for p in paths])


DEFAULT_CONFIG = "config/config.yaml"
"""The demo config, relative to the workflow's directory."""


def workflow_config(given: Mapping[str, Any], configfiles: Sequence[str] | None) -> dict:
    """The config of a Snakemake run: ``--config file=PATH`` (default :data:`DEFAULT_CONFIG`)
    read with brewflow's safe loader and updated with the other ``--config key=value``; or,
    when Snakemake was given ``--configfile`` (which it reads itself, through yte), that
    config checked by re-reading its files strictly."""
    given = dict(given)
    if configfiles:
        for path in configfiles:
            if "__use_yte__" in Path(path).read_text(errors="replace"):
                raise ConfigError(
                    f"config file {path!r} is a yte template (__use_yte__): Snakemake evaluated "
                    "its expressions while reading --configfile, before brewflow could refuse "
                    "it; brewflow configs are plain YAML: pass yours with --config file=PATH"
                )
        if "file" in given:
            raise ConfigError(
                "give the config either as --config file=PATH or as --configfile, not both"
            )
        return validate(given, sources=configfiles)
    path = given.pop("file", None) or DEFAULT_CONFIG
    return load_config(str(path), overrides=given)


def _default_filling_validator() -> type:
    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def properties(validator, props, instance, schema_):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, props, instance, schema_)

    return jsonschema.validators.extend(base, {"properties": properties})


def _key(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate(config: Mapping, *, sources: Sequence[str | Path] = ()) -> dict:
    """Validate a config mapping against the schema, fill defaults, and check consistency.

    ``sources`` are the files it came from: they are re-read strictly so that duplicate keys
    (which a plain YAML parser drops silently) are reported.
    """
    for source in sources:
        _read(source)
    config = json.loads(json.dumps(config))  # a plain, independent copy
    validator = _default_filling_validator()(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        where = f" in {', '.join(map(str, sources))}" if sources else ""
        lines = [f"config key '{_key(e.absolute_path)}': {_message(e)}" for e in errors]
        raise ConfigError(f"invalid configuration{where}:\n  " + "\n  ".join(lines))
    _check_finite(config, [])
    _check(config)
    return config


def _check_finite(value: Any, path: list[Any]) -> None:
    """Refuse NaN and infinite numbers anywhere (``.nan``, ``.inf`` in YAML): JSON schema's
    bounds do not catch them, and a luminosity, cross section or bin edge of NaN makes every
    number downstream NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{_key(path)}': {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, [*path, index])


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "required" and error.schema_path and "then" in error.schema_path:
        return f"{error.message} (MC datasets need a cross section in pb; or set is_data: true)"
    if error.validator == "oneOf" and "variable" in error.instance:
        return "give either 'bins', 'start' and 'stop' or 'edges'"
    return error.message


def _check(config: dict) -> None:
    regions = config["regions"]
    datasets = config["datasets"]
    for name, hist_def in config["histograms"].items():
        for region in hist_def.get("regions", []):
            if region not in regions:
                raise ConfigError(
                    f"config key 'histograms.{name}.regions': unknown region {region!r} "
                    f"(known: {', '.join(regions)})"
                )
        edges = hist_def.get("edges")
        if edges is not None and any(b <= a for a, b in itertools.pairwise(edges)):
            raise ConfigError(f"config key 'histograms.{name}.edges': edges must increase")
        if "start" in hist_def and hist_def["stop"] <= hist_def["start"]:
            raise ConfigError(f"config key 'histograms.{name}': 'stop' must exceed 'start'")
    for name, syst in config["systematics"].items():
        if syst["type"] == "scale" and not {"up", "down"} <= syst.keys():
            raise ConfigError(f"config key 'systematics.{name}': a scale needs 'up' and 'down'")
        if syst["type"] in SHAPE_TYPES and "jets" not in config:
            raise ConfigError(
                f"config key 'systematics.{name}': type {syst['type']!r} varies jets; "
                "configure the 'jets' block (JERC payload and names)"
            )
        needs = {"jes": "uncertainty", "jer": "resolution_sf"}.get(syst["type"])
        if needs and needs not in config.get("jets", {}):
            raise ConfigError(f"config key 'systematics.{name}': needs 'jets.{needs}'")
        if "source" in syst and syst["type"] != "jes":
            raise ConfigError(f"config key 'systematics.{name}.source': only for type 'jes'")
        for dataset in syst.get("datasets", []):
            if dataset not in datasets:
                raise ConfigError(
                    f"config key 'systematics.{name}.datasets': unknown dataset {dataset!r}"
                )
            if datasets[dataset]["is_data"]:
                raise ConfigError(
                    f"config key 'systematics.{name}.datasets': {dataset!r} is data; "
                    "systematic variations apply to MC only"
                )
    for name, dataset in datasets.items():
        if dataset["is_data"] and "xsec" in dataset:
            raise ConfigError(f"config key 'datasets.{name}.xsec': data has no cross section")
        for key in ("lumi_mask", "jec"):
            if key in dataset and not dataset["is_data"]:
                raise ConfigError(f"config key 'datasets.{name}.{key}': for data only")
        mask = dataset.get("lumi_mask")
        if mask is not None and not is_generated(dataset):
            if not Path(mask).is_file():
                raise ConfigError(
                    f"config key 'datasets.{name}.lumi_mask': golden JSON {mask!r} does not exist"
                )
            from brewflow.lumimask import LumiMaskError, certified_ranges

            try:
                certified_ranges(Path(mask))
            except LumiMaskError as err:
                raise ConfigError(f"config key 'datasets.{name}.lumi_mask': {err}") from None
    _check_files_once(config)
    for name, skim in config["skims"].items():
        if skim["region"] not in regions:
            raise ConfigError(
                f"config key 'skims.{name}.region': unknown region {skim['region']!r}"
            )
        for dataset in skim.get("datasets", []):
            if dataset not in datasets:
                raise ConfigError(
                    f"config key 'skims.{name}.datasets': unknown dataset {dataset!r}"
                )
    for name in config.get("shapes", {}).get("histograms", []):
        if name not in config["histograms"]:
            raise ConfigError(f"config key 'shapes.histograms': unknown histogram {name!r}")
    kinds: dict[str, dict[bool, str]] = {}
    for name, dataset in datasets.items():
        process = dataset.get("process", name)
        kinds.setdefault(process, {}).setdefault(dataset["is_data"], name)
        if len(kinds[process]) == 2:
            data, mc = kinds[process][True], kinds[process][False]
            raise ConfigError(
                f"config key 'datasets.{name}.process': process {process!r} would stack data "
                f"({data!r}) with MC ({mc!r}); give them different processes"
            )
    for process in config.get("shapes", {}).get("signal", []):
        if process not in kinds or True in kinds[process]:
            known = [p for p, k in kinds.items() if True not in k]
            raise ConfigError(
                f"config key 'shapes.signal': {process!r} is not an MC process of the config "
                f"(MC processes: {', '.join(known)})"
            )
    check_scheduler(os.environ.get(SCHEDULER_ENV))
    generated = {config.get("generate", {}).get(k) for k in ("corrections", "bdt")}
    payloads = {
        f"corrections.{key}.file": spec["file"] for key, spec in config["corrections"].items()
    }
    if "jets" in config:
        payloads["jets.file"] = config["jets"]["file"]
    payloads |= {f"models.{key}": file for key, file in config["models"].items()}
    for key, file in payloads.items():
        if file not in generated and not Path(file).is_file():
            raise ConfigError(f"config key '{key}': file {file!r} does not exist")
    if not any(not d["is_data"] for d in datasets.values()):
        raise ConfigError("config key 'datasets': at least one MC dataset is needed")


SCHEDULER_ENV = "BREWFLOW_SCHEDULER"


def check_scheduler(value: str | None, where: str = f"variable {SCHEDULER_ENV}") -> None:
    """Refuse a scheduler that the config key ``scheduler`` would refuse (its schema: a name
    or an address)."""
    if not value:
        return
    rule = schema()["properties"]["scheduler"]
    if not jsonschema.Draft202012Validator(rule).is_valid(value):
        names = next(r["enum"] for r in rule["anyOf"] if "enum" in r)
        raise ConfigError(
            f"{where}: unknown scheduler {value!r}; use one of {', '.join(names)} or a "
            "scheduler address (tcp://host:8786)"
        )


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
            matches = sorted(glob.glob(pattern, recursive=True))
            files = [m for m in matches if Path(m).is_file()]
            if not files:
                what = f"only folders ({', '.join(matches[:3])})" if matches else "no file"
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


def _check_files_once(config: Mapping) -> None:
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
