"""Config validation: the JSON schema (defaults filled in) and the consistency checks it
cannot express; every error is a :class:`ConfigError` naming the key, raised before any job."""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from brewflow.config.blinding import Blinding
from brewflow.config.blocks import check_blocks
from brewflow.config.fitting import check_fit, check_searches
from brewflow.config.model import (
    CERTIFIED_AS_A_WHOLE,
    check_files_once,
    era_names,
    era_settings,
    eras,
    generated_payloads,
    golden_json,
    is_generated,
    processes,
)
from brewflow.config.records import check_record
from brewflow.errors import ConfigError
from brewflow.pdfsets import PDF_SETS

log = logging.getLogger(__name__)


@functools.cache
def _schema_text() -> str:
    return resources.files("brewflow").joinpath("schemas/config.schema.yaml").read_text()


def schema_digest() -> str:
    """SHA-256 of the schema: which rules (and defaults) validated a resolved config."""
    return hashlib.sha256(_schema_text().encode()).hexdigest()


@functools.cache
def _schema() -> dict:
    """The schema, parsed once per process (validation only reads it)."""
    return yaml.load(_schema_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def schema() -> dict:
    """The configuration JSON schema (shipped with the package); a fresh copy each call."""
    return copy.deepcopy(_schema())


def _default_filling_validator() -> type:
    import jsonschema  # here, not at import: jobs reading a resolved config never need it

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


def check(config: Mapping, where: str = "") -> dict:
    """A validated copy of ``config``: schema defaults filled in, then consistency checks.
    ``where`` (e.g. " in config.yaml") goes into the message of a schema violation."""
    plain: dict = json.loads(json.dumps(config))  # a plain, independent copy
    validator = _default_filling_validator()(_schema())
    errors = sorted(validator.iter_errors(plain), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"config key '{_key(e.absolute_path)}': {_message(e)}" for e in errors]
        raise ConfigError(f"invalid configuration{where}:\n  " + "\n  ".join(lines))
    _check_finite(plain, [])
    _check(plain)
    return plain


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


def _message(error: Any) -> str:
    if error.validator == "required" and error.schema_path and "then" in error.schema_path:
        return f"{error.message} (MC datasets need a cross section in pb; or set is_data: true)"
    if (
        error.validator == "oneOf"
        and isinstance(error.instance, dict)
        and "variable" in (error.instance)
    ):
        return "give either 'bins', 'start' and 'stop' or 'edges'"
    if error.validator == "anyOf":
        required = [rule.get("required") for rule in error.validator_value]
        if all(required):  # one of several keys
            return "give " + " or ".join(" and ".join(map(repr, keys)) for keys in required)
        if error.schema.get("description") and not isinstance(error.instance, dict | list):
            description = " ".join(error.schema["description"].split())  # what the key takes
            return f"{error.instance!r} is not valid: {description}"
    return error.message


def _check_eras(config: dict) -> None:
    """Each dataset in a configured era (and none without ``eras``); a data dataset without
    its own ``lumi_mask`` gets its era's (filled in)."""
    known = config.get("eras")
    if known and "luminosity" in config:
        raise ConfigError(
            "config key 'luminosity': with 'eras', each era gives its luminosity "
            "(eras.<era>.luminosity); remove the top-level one"
        )
    for name, dataset in config["datasets"].items():
        era = dataset.get("era")
        if known is None:
            if era is not None:
                raise ConfigError(
                    f"config key 'datasets.{name}.era': {era!r}, but the config has no 'eras' "
                    "block; define the era (luminosity, energy, corrections) there"
                )
            continue
        if era is None:
            raise ConfigError(
                f"config key 'datasets.{name}.era': missing; with 'eras' every dataset names "
                f"its era (one of {', '.join(known)})"
            )
        if era not in known:
            raise ConfigError(
                f"config key 'datasets.{name}.era': unknown era {era!r} (known: {', '.join(known)})"
            )
        if dataset["is_data"] and "lumi_mask" not in dataset and known[era].get("lumi_mask"):
            dataset["lumi_mask"] = known[era]["lumi_mask"]
    used = {dataset.get("era") for dataset in config["datasets"].values()}
    for era in known or {}:
        if era not in used:
            raise ConfigError(
                f"config key 'eras.{era}': no dataset is in this era; give datasets "
                f"'era: {era}', or remove the era"
            )
    generated = config.get("generate", {}).get("corrections")
    if isinstance(generated, dict):
        for era in generated:
            if era not in (known or {}):
                raise ConfigError(f"config key 'generate.corrections': unknown era {era!r}")


def _check_blinded_phase_space(config: Mapping) -> None:
    """A region whose cuts include all of a blinded region's selects only events that region
    blinds (its cutflow row at the blinded region's last cut would even count them): it must be
    blinded the same way (``blind: true``, or the same windows)."""
    blinding = Blinding.of(config)
    regions = config["regions"]
    for name, spec in regions.items():
        if blinding.is_blind(name):
            continue
        for other, within in regions.items():
            if other == name or not set(within["cuts"]) <= set(spec["cuts"]):
                continue
            if blinding.is_blind(other):
                raise ConfigError(
                    f"config key 'regions.{name}': its cuts include all those of the blinded "
                    f"region {other!r}: its data would be blinded events; set blind: true on it "
                    "too"
                )
            own = blinding.vetoes(name)
            for window in blinding.vetoes(other):
                if not any(w.variable == window.variable and w.low <= window.low
                           and w.high >= window.high for w in own):  # fmt: skip
                    raise ConfigError(
                        f"config key 'regions.{name}': its cuts include all those of region "
                        f"{other!r}, which has a blinded window ({window}): its data would show "
                        f"the window's events; fill histograms.{window.histogram} in it too "
                        "(its 'regions'), or blind it"
                    )


def _systematic_datasets(config: Mapping, systematic: str, names: Iterable[str]) -> list[str]:
    """The datasets ``systematics.<systematic>.datasets`` names, in config order: a name is a
    dataset, else a process (every dataset of it, in every era). A name that is neither, or
    data, is a :class:`ConfigError` naming the key; a process varied in some eras and not in
    others is logged as a warning (:func:`_warn_partial_eras`)."""
    key = f"config key 'systematics.{systematic}.datasets'"
    datasets, members = config["datasets"], processes(config)
    chosen: set[str] = set()
    for name in names:
        found = [name] if name in datasets else members.get(name)
        if found and any(datasets[d]["is_data"] for d in found):
            raise ConfigError(f"{key}: {name!r} is data; systematic variations apply to MC only")
        if name in datasets and set(members.get(name, [name])) - {name}:
            raise ConfigError(
                f"{key}: {name!r} is a dataset and the process of "
                f"{', '.join(members[name])}: name the datasets, or the process under another "
                "name"
            )
        if found is None:
            raise ConfigError(
                f"{key}: {name!r} is neither a dataset nor a process (datasets: "
                f"{', '.join(datasets)}; processes: {', '.join(members)})"
            )
        if any(datasets[d]["is_data"] for d in found):
            raise ConfigError(f"{key}: {name!r} is data; systematic variations apply to MC only")
        chosen.update(found)
    _warn_partial_eras(config, systematic, chosen)
    return [d for d in datasets if d in chosen]


def _warn_partial_eras(config: Mapping, systematic: str, chosen: set[str]) -> None:
    """Warn, naming the systematic, the process and the eras, when ``chosen`` (the datasets a
    systematic varies) covers a process in one era and none of its datasets in another (in a
    two-era config, ``datasets: [ttbar]`` leaves ``ttbar_2017`` out: rarely meant)."""
    order = eras(config)
    if len(order) < 2:
        return
    datasets = config["datasets"]
    for process, members in processes(config).items():
        by_era = {era: [d for d in members if datasets[d].get("era") == era] for era in order}
        covered = [era for era, names in by_era.items() if chosen & set(names)]
        missing = [era for era, names in by_era.items() if names and not chosen & set(names)]
        if covered and missing:
            left_out = [d for era in missing for d in by_era[era]]
            fix = "" if process in datasets else f" (or the process {process!r})"
            log.warning(
                "config key 'systematics.%s.datasets': systematic %r varies process %r in "
                "era %s and not in era %s: add %s%s if it applies in every era",
                systematic, systematic, process, ", ".join(covered), ", ".join(missing),
                ", ".join(left_out), fix,
            )  # fmt: skip


def _check(config: dict) -> None:
    regions = config["regions"]
    datasets = config["datasets"]
    _check_eras(config)
    check_fit(config)
    for file in config["analysis"].get("files", []):
        if not Path(file).is_file():
            raise ConfigError(f"config key 'analysis.files': file {file!r} does not exist")
    _check_blinded_phase_space(config)
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
        if "datasets" in syst:
            syst["datasets"] = _systematic_datasets(config, name, syst["datasets"])
        varied = [d for d in syst.get("datasets", datasets) if not datasets[d]["is_data"]]
        for era in era_names(config):
            if not any(era is None or datasets[d].get("era") == era for d in varied):
                continue  # an era whose datasets it does not vary
            jets = era_settings(config, era).get("jets")
            where = f"'eras.{era}.jets' or the top-level 'jets'" if era else "the 'jets' block"
            if syst["type"] in ("jes", "jer", "unclustered") and jets is None:
                raise ConfigError(
                    f"config key 'systematics.{name}': type {syst['type']!r} varies jets; "
                    f"configure {where} (JERC payload and names)"
                )
            for prefix, block, keys, what in (
                ("electron_", "electrons", ("scale_smearing",), "EGM payload, or nanoaod"),
                ("muon_", "muons", ("scale_resolution", "rochester"), "the MUO payload"),
            ):
                given = era_settings(config, era).get(block) or {}
                key = keys[0]
                if syst["type"] == "muon_resolution" and "rochester" in given:
                    raise ConfigError(
                        f"config key 'systematics.{name}': Rochester corrections have one "
                        f"uncertainty, muon_scale (era {era}); remove this systematic"
                    )
                if syst["type"].startswith(prefix) and not any(k in given for k in keys):
                    scope = f"'eras.{era}.{block}'" if era else f"the top-level '{block}'"
                    raise ConfigError(
                        f"config key 'systematics.{name}': type {syst['type']!r} varies "
                        f"{block}; configure {scope} with {key} ({what})"
                    )
            needs = {"jes": "uncertainty", "jer": "resolution_sf"}.get(syst["type"])
            if needs and needs not in (jets or {}):
                raise ConfigError(f"config key 'systematics.{name}': needs {where} '{needs}'")
        if "source" in syst and syst["type"] != "jes":
            raise ConfigError(f"config key 'systematics.{name}.source': only for type 'jes'")
        _check_combined(name, syst)
    for era in era_names(config):
        muons = era_settings(config, era).get("muons") or {}
        if "scale_resolution" in muons and "rochester" in muons:
            where = f"eras.{era}.muons" if era else "muons"
            raise ConfigError(
                f"config key '{where}': give scale_resolution (Run 3) or rochester (Run 2), "
                "not both"
            )
    for name, dataset in datasets.items():
        if dataset["is_data"] and "xsec" in dataset:
            raise ConfigError(f"config key 'datasets.{name}.xsec': data has no cross section")
        for key in ("lumi_mask", "jec"):
            if key in dataset and not dataset["is_data"]:
                raise ConfigError(f"config key 'datasets.{name}.{key}': for data only")
        if dataset["is_data"] and "lumi_mask" not in dataset:
            raise ConfigError(
                f"config key 'datasets.{name}.lumi_mask': data need the golden JSON that "
                "certifies their lumi blocks: give its file (here, or as its era's "
                f"lumi_mask); 'lumi_mask: {CERTIFIED_AS_A_WHOLE}' takes every lumi block as "
                "certified (data already filtered, e.g. a skim)"
            )
        mask = golden_json(config, name)
        if mask is not None and not is_generated(dataset):
            if not Path(mask).is_file():
                raise ConfigError(
                    f"config key 'datasets.{name}.lumi_mask': golden JSON {mask!r} does not exist"
                )
            from brewflow.goldenjson import LumiMaskError, certified_ranges

            try:
                certified_ranges(Path(mask))
            except LumiMaskError as err:
                raise ConfigError(f"config key 'datasets.{name}.lumi_mask': {err}") from None
    check_files_once(config)
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
        for region in config["histograms"][name].get("regions") or regions:
            if region[0].isdigit():  # the channel (combine "bin") <region>[_<era>]
                raise ConfigError(
                    f"config key 'regions.{region}': a channel of the datacard of "
                    f"shapes.histograms {name!r}, and combine refuses a channel name that "
                    "starts with a digit; rename the region (e.g. r" + region + ")"
                )
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
    check_searches(config, kinds)
    check_record(config)
    check_blocks(config)
    check_scheduler(os.environ.get(SCHEDULER_ENV))
    generated = generated_payloads(config)
    payloads = {}
    for era in era_names(config):
        prefix = f"eras.{era}." if era else ""
        settings = era_settings(config, era)
        for key, spec in settings["corrections"].items():
            own = era and key in config["eras"][era].get("corrections", {})
            payloads[f"{prefix if own else ''}corrections.{key}.file"] = spec["file"]
        if "jets" in settings:
            own = era and "jets" in config["eras"][era]
            payloads[f"{prefix if own else ''}jets.file"] = settings["jets"]["file"]
        mask = config["eras"][era].get("lumi_mask") if era else None
        if mask and mask != CERTIFIED_AS_A_WHOLE:
            payloads[f"{prefix}lumi_mask"] = mask
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
    rule = _schema()["properties"]["scheduler"]
    import jsonschema

    if not jsonschema.Draft202012Validator(rule).is_valid(value):
        names = next(r["enum"] for r in rule["anyOf"] if "enum" in r)
        raise ConfigError(
            f"{where}: unknown scheduler {value!r}; use one of {', '.join(names)} or a "
            "scheduler address (tcp://host:8786)"
        )


def _check_combined(name: str, syst: Mapping) -> None:
    """An ``envelope`` names its weights (``of``), a ``pdf`` a known set; neither key
    elsewhere."""
    kind = syst["type"]
    for key, owner in (("of", "envelope"), ("set", "pdf")):
        if (key in syst) != (kind == owner):
            raise ConfigError(
                f"config key 'systematics.{name}.{key}': "
                + (f"only for type {owner!r}" if key in syst else f"type {owner!r} needs it")
            )
    if kind == "pdf" and syst["set"] not in PDF_SETS:
        known = ", ".join(f"{k} ({v.name})" for k, v in PDF_SETS.items())
        raise ConfigError(
            f"config key 'systematics.{name}.set': no LHAPDF set {syst['set']} in brewflow's "
            f"table (brewflow.pdfsets); known: {known}"
        )
