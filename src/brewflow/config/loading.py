"""Reading a config: strict YAML (no duplicate keys, no alias bombs), several files and
``--config key=value`` overrides merged, then validated (:mod:`brewflow.config.checks`)."""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from brewflow import secrets
from brewflow.config.checks import check, schema_digest
from brewflow.config.model import expand_files_from
from brewflow.errors import BrewflowError, ConfigError


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A YAML loader that refuses duplicate mapping keys (PyYAML keeps the last silently);
    libyaml's parser where PyYAML has it."""


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


RESOLVED_FORMAT = "brewflow-resolved-config"


def resolved_document(config: Mapping[str, Any]) -> str:
    """A validated config as the JSON file the workflow's jobs read (see
    :func:`brewflow.pipeline.write_resolved`): the config with the digests of itself and of the
    schema that validated it, so :func:`load_config` can take it as validated. Its URLs hold no
    credential (:func:`brewflow.secrets.conceal`); ``credentials_from`` names the user's config
    files the jobs read them from again, to open those URLs."""
    config = secrets.conceal(config)
    body = json.dumps(config, indent=1)
    stamp = {"format": RESOLVED_FORMAT, "schema": schema_digest(),
             "sha256": hashlib.sha256(body.encode()).hexdigest()}  # fmt: skip
    if sources := secrets.credential_sources(config):
        stamp["credentials_from"] = sources  # type: ignore[assignment]
    return json.dumps({**stamp, "config": config}, indent=1) + "\n"


def _resolved(path: Path) -> dict | None:
    """The config of a resolved document that this brewflow's schema validated, unaltered;
    None for any other file."""
    if path.suffix != ".json" or not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict) or document.get("format") != RESOLVED_FORMAT:
        return None
    config = document.get("config")
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a resolved config without its 'config'; rerun the workflow")
    secrets.expect(str(p) for p in document.get("credentials_from") or [])
    body = json.dumps(config, indent=1)
    trusted = (
        document.get("schema") == schema_digest()
        and document.get("sha256") == hashlib.sha256(body.encode()).hexdigest()
    )
    return config if trusted else check(config, where=f" in {path}")


def load_config(
    paths: str | Path | Sequence[str | Path], overrides: Mapping[str, Any] | None = None
) -> dict:
    """Read one or more YAML/JSON config files (later ones update earlier ones), apply
    ``overrides`` (e.g. Snakemake's ``--config key=value``), and validate. A resolved config
    written by the workflow (``.brewflow/config.json``) is taken as validated, unless it was
    altered or another schema validated it."""
    if isinstance(paths, str | Path):
        paths = [paths]
    _refuse_credentials(overrides or {})
    if len(paths) == 1 and not overrides and (resolved := _resolved(Path(paths[0]))) is not None:
        return resolved
    config: dict = {}
    for path in paths:
        _merge(config, expand_files_from(_read(path), Path(path).parent))
    _merge(config, expand_files_from(copy.deepcopy(dict(overrides or {})), Path.cwd()))
    checked = check(config, where=f" in {', '.join(map(str, paths))}")  # files read strictly above
    return _concealed(checked, paths)


def _refuse_credentials(overrides: Mapping[str, Any]) -> None:
    """A ``--config key=value`` override with a credential in a URL is refused: jobs read
    credentials again from the config files (:mod:`brewflow.secrets`), not the command line."""
    for key, value in overrides.items():
        if secrets.holds_secret(value):
            raise ConfigError(
                f"--config override {key!r}: a URL with a credential (user info or token): "
                "give it in the config file instead (brewflow keeps credentials out of "
                "everything it writes; its jobs read them from that file)"
            )


def _concealed(config: dict, sources: Sequence[str | Path]) -> dict:
    """``config`` with its credentials redacted, kept for the reads (:func:`secrets.conceal`),
    read from ``sources`` and the file lists (``files_from``) they name."""
    listings = [spec["files_from"] for spec in config.get("datasets", {}).values()
                if isinstance(spec, dict) and spec.get("files_from")]  # fmt: skip
    return secrets.conceal(config, [*sources, *listings])


DEFAULT_CONFIG = "config/config.yaml"
"""The demo config, relative to the workflow's directory."""


def workflow_config(given: Mapping[str, Any], configfiles: Sequence[str] | None) -> dict:
    """The config of a Snakemake run: ``--config file=PATH`` (default :data:`DEFAULT_CONFIG`)
    read with brewflow's safe loader and updated with the other ``--config key=value``; or,
    when Snakemake was given ``--configfile`` (which it reads itself, through yte), that
    config checked by re-reading its files strictly. A problem stops the run with one line
    naming the file or key, exit 2 (no traceback), as every brewflow command does."""
    try:
        return _workflow_config(given, configfiles)
    except BrewflowError as err:
        sys.stderr.write(f"brewflow: error: {err}\n")
        raise SystemExit(2) from None


def _workflow_config(given: Mapping[str, Any], configfiles: Sequence[str] | None) -> dict:
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


def validate(config: Mapping, *, sources: Sequence[str | Path] = ()) -> dict:
    """Validate a config mapping against the schema, fill defaults, and check consistency.

    ``sources`` are the files it came from: they are re-read strictly so that duplicate keys
    (which a plain YAML parser drops silently) are reported.
    """
    expanded = copy.deepcopy(dict(config))
    for source in sources:
        _read(source)
    expand_files_from(expanded, Path(sources[0]).parent if sources else Path.cwd())
    where = f" in {', '.join(map(str, sources))}" if sources else ""
    return _concealed(check(expanded, where=where), sources)
