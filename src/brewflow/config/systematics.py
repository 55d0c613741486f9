"""The systematics of the config: which apply to a dataset, the jobs' variations, the
categories an envelope or PDF systematic is filled into, which are object variations, and the
nuisance each is in each era. Standard library only (the Snakefile imports the config)."""

from __future__ import annotations

from collections.abc import Mapping

from brewflow.config.model import era_of
from brewflow.pdfsets import PDF_SETS

__all__ = [
    "CORRELATED_BY_TYPE",
    "MEMBER",
    "OBJECT_TYPES",
    "applicable_systematics",
    "is_correlated",
    "member_categories",
    "nuisance_description",
    "nuisance_names",
    "object_variation",
    "systematics_for",
]

OBJECT_TYPES = ("jes", "jer", "unclustered", "electron_scale", "electron_smearing", "muon_scale",
                "muon_resolution")  # fmt: skip
"""The systematic types that vary objects (brewflow.jetmet, brewflow.egamma,
brewflow.muonscale)."""


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


MEMBER = "|"
"""Between a systematic and its member in a histogram category (``qcd_scaleUp|qcd_muRUp``,
``pdfDown|3``): the variations an ``envelope`` or ``pdf`` systematic is made of bin by bin."""


def member_categories(config: Mapping, systematic: str) -> list[str]:
    """The histogram categories an analyze job fills for ``systematic``: itself, or for an
    ``envelope`` or ``pdf`` systematic's ``<name>Up``/``<name>Down`` the members that job fills
    (the ``of`` weights' up, or down, variations; the even, or odd, ``LHEPdfWeight`` entries),
    combined when the dataset is normalised (:mod:`brewflow.results.members`)."""
    for index, direction in enumerate(("Up", "Down")):
        spec = config["systematics"].get(systematic.removesuffix(direction))
        if not systematic.endswith(direction) or spec is None:
            continue
        if spec["type"] == "envelope":
            return [f"{systematic}{MEMBER}{weight}{direction}" for weight in spec["of"]]
        if spec["type"] == "pdf":
            entries = range(index, PDF_SETS[spec["set"]].entries, 2)
            return [f"{systematic}{MEMBER}{entry}" for entry in entries]
    return [systematic]


def object_variation(config: Mapping, systematic: str) -> tuple[str, str, str] | None:
    """``(type, source, "Up"|"Down")`` when ``systematic`` varies objects, else None."""
    for direction in ("Up", "Down"):
        spec = config["systematics"].get(systematic.removesuffix(direction))
        if systematic.endswith(direction) and spec is not None and spec["type"] in OBJECT_TYPES:
            return spec["type"], spec.get("source", "Total"), direction
    return None


CORRELATED_BY_TYPE = {"weight": True, "jes": True, "scale": False, "jer": False,
                      "unclustered": False, "envelope": True, "pdf": True,
                      "electron_scale": False, "electron_smearing": False,
                      "muon_scale": False, "muon_resolution": False}  # fmt: skip
"""Whether a systematic of each type is one nuisance for all eras by default: weights (scale
factors, theory) and JES are; a flat scale (e.g. luminosity), JER and unclustered MET are not."""


def is_correlated(config: Mapping, systematic: str) -> bool:
    """Whether ``systematic`` is one nuisance across eras (its ``correlated``, else the
    default of its type, :data:`CORRELATED_BY_TYPE`)."""
    spec = config["systematics"][systematic]
    return spec.get("correlated", CORRELATED_BY_TYPE[spec["type"]])


def nuisance_names(config: Mapping, dataset: str) -> dict[str, str]:
    """Systematic -> the nuisance it is for ``dataset``: ``<name>_<era>`` for a systematic
    not correlated across eras, else its name (every name without ``eras``)."""
    era = era_of(config, dataset)
    return {
        name: name if era is None or is_correlated(config, name) else f"{name}_{era}"
        for name in applicable_systematics(config, dataset)
    }


def nuisance_description(config: Mapping, nuisance: str) -> str:
    """The description of a nuisance (an uncorrelated one's names its era)."""
    if nuisance in config["systematics"]:
        return config["systematics"][nuisance].get("description", "")
    name, _, era = nuisance.rpartition("_")
    spec = config["systematics"].get(name, {})
    return f"{spec.get('description', name)} ({era} only)" if spec else ""
