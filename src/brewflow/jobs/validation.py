"""Checks before a run that need the physics layer: every correction and JERC name the config
gives exists in its payload; the analysis runs, on a typetracer, with the config's cuts,
variables and weights (a typo in a region's cut list fails before any job)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from brewflow.config.model import (
    era_datasets,
    era_names,
    era_settings,
    generated_payloads,
    local_files,
    object_variation,
    systematics_for,
)
from brewflow.config.specs import job_spec
from brewflow.corrections import CorrectionError, load
from brewflow.errors import ConfigError
from brewflow.files import atomic_write
from brewflow.jetmet import JetCorrector

__all__ = ["CHECKED", "check_analysis", "check_before_run", "check_payloads"]

log = logging.getLogger(__name__)

CHECKED = Path(".brewflow") / "checked"
"""Where :func:`check_analysis` records the analyze specs it checked (skipped while the
spec is unchanged)."""


def check_payloads(config: Mapping) -> None:
    """Load every correction and JERC correction the config names (``corrections.*``,
    ``jets.jec``, per-dataset ``jec``, ``jets.resolution*``, the JES sources of the
    systematics), so a wrong name fails now, with what the payload has, instead of in every
    analyze job. Payloads that ``brewflow generate`` writes are checked once written."""
    generated = generated_payloads(config)
    for era in era_names(config):
        settings = era_settings(config, era)
        where = f"eras.{era}." if era else ""
        for key, spec in settings["corrections"].items():
            if spec["file"] not in generated:
                try:
                    load(spec["file"], spec["name"])
                except CorrectionError as err:
                    raise ConfigError(f"config key '{where}corrections.{key}': {err}") from None
        jets = settings.get("jets")
        if jets is None or jets["file"] in generated:
            continue
        sources = [
            s.get("source", "Total") for s in config["systematics"].values() if s["type"] == "jes"
        ]
        data = [d for d in era_datasets(config, era) if config["datasets"][d]["is_data"]]
        try:
            JetCorrector.from_config(jets, is_data=False).check(sources)
            for tag in {config["datasets"][d].get("jec") for d in data}:
                JetCorrector.from_config(jets, is_data=True, jec=tag).check()
        except CorrectionError as err:
            raise ConfigError(f"config key '{where}jets' (or a dataset's 'jec'): {err}") from None


def check_analysis(config: Mapping, *, record: Path | None = CHECKED) -> list[str]:
    """Run the analysis on a typetracer (file metadata only, no event data) for one dataset of
    each era and kind (data, MC) whose first file is local and exists, with every weight
    variation it has, so that a cut, variable or weight the config names and the analysis
    does not define (a typo in a region's cut list) is a :class:`ConfigError` naming the
    config key before any job runs. A check is recorded in ``record`` by the dataset's analyze
    spec and not repeated while it is unchanged (None: always check). Returns the datasets
    checked."""
    from brewflow.jobs.build import build
    from brewflow.jobs.reading import config_locations
    from brewflow.nanoevents.reader import lazy_events

    groups: dict[tuple, str] = {}
    for name, spec in config["datasets"].items():
        files = local_files(config, name)  # the demo's exist once generated
        if files and os.path.isfile(files[0]):
            groups.setdefault((spec.get("era"), spec["is_data"]), name)
    checked = []
    for name in groups.values():
        marker = None if record is None else record / f"{name}.txt"
        fingerprint = job_spec("analyze", config, dataset=name).fingerprint()
        if marker is not None and marker.is_file() and marker.read_text() == fingerprint:
            continue
        view = job_spec("analyze", config, dataset=name, code=False).config()
        first = local_files(config, name)[0]
        tree = config["datasets"][name].get("tree", config["tree"])
        events = lazy_events({first: tree}, open_files=False,
                             locations=config_locations(view, name, [first]))  # fmt: skip
        weights = [s for s in systematics_for(view, name) if not object_variation(view, s)]
        build(view, name, weights, events, first)  # raises ConfigError naming the key
        checked.append(name)
        if marker is not None:
            atomic_write(marker, fingerprint)
    if checked:
        log.info("analysis checked on a typetracer for %s", ", ".join(checked))
    return checked


def check_before_run(config: Mapping) -> None:
    """The checks of a workflow run's start (:func:`check_payloads`, :func:`check_analysis`):
    a problem is one line naming the config key (no traceback) and the run stops, exit 2."""
    from brewflow.errors import BrewflowError

    try:
        check_payloads(config)
        check_analysis(config)
    except BrewflowError as err:
        sys.stderr.write(f"brewflow: error: {err}\n")
        raise SystemExit(2) from None
