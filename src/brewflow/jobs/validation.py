"""Checks before a run that need the physics layer: every correction and JERC name the config
gives exists in its payload."""

from __future__ import annotations

from collections.abc import Mapping

from brewflow.config.model import era_datasets, era_names, era_settings, generated_payloads
from brewflow.corrections import CorrectionError, load
from brewflow.errors import ConfigError
from brewflow.jetmet import JetCorrector

__all__ = ["check_payloads"]


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
