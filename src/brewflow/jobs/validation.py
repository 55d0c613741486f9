"""Checks before a run that need the physics layer: every correction and JERC name the config
gives exists in its payload."""

from __future__ import annotations

from collections.abc import Mapping

from brewflow.corrections import CorrectionError, load
from brewflow.errors import ConfigError
from brewflow.jetmet import JetCorrector

__all__ = ["check_payloads"]


def check_payloads(config: Mapping) -> None:
    """Load every correction and JERC correction the config names (``corrections.*``,
    ``jets.jec``, per-dataset ``jec``, ``jets.resolution*``, the JES sources of the
    systematics), so a wrong name fails now, with what the payload has, instead of in every
    analyze job. Payloads that ``brewflow generate`` writes are checked once written."""
    generated = {config.get("generate", {}).get("corrections")}
    try:
        for key, spec in config["corrections"].items():
            if spec["file"] not in generated:
                try:
                    load(spec["file"], spec["name"])
                except CorrectionError as err:
                    raise ConfigError(f"config key 'corrections.{key}': {err}") from None
        jets = config.get("jets")
        if jets is None or jets["file"] in generated:
            return
        sources = [
            s.get("source", "Total") for s in config["systematics"].values() if s["type"] == "jes"
        ]
        JetCorrector.from_config(jets, is_data=False).check(sources)
        tags = {d.get("jec") for d in config["datasets"].values() if d["is_data"]}
        for tag in tags:
            JetCorrector.from_config(jets, is_data=True, jec=tag).check()
    except CorrectionError as err:
        raise ConfigError(f"config key 'jets' (or a dataset's 'jec'): {err}") from None
