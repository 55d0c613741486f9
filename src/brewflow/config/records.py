"""The tables of a run's HEPData record (config ``hepdata``): which figures and tables it
holds, each named by its key, the path of its output under ``results/`` without the suffix
(``plots/ww_emu/mll``, ``eras/2018/cutflow/ww_emu``, ``fit/njets_fit/impacts``,
``search/zprime``); ``hepdata.locations`` maps keys to where each is in the paper; and the files
each table is made of and the record's files (the workflow's ``hepdata`` rule)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, NamedTuple

from brewflow.config.model import eras
from brewflow.errors import ConfigError

__all__ = [
    "FIT_TABLES",
    "NAME_LENGTH",
    "RecordTable",
    "check_record",
    "record_problems",
    "record_tables",
]

_FIT_NAMES = {"results": "Fit results", "prefit": "Pre-fit yields", "postfit": "Post-fit yields",
              "impacts": "Impacts", "pulls": "Pulls"}  # fmt: skip

FIT_TABLES = ("results", "prefit", "postfit", "impacts", "pulls")
"""The tables of each fit: its results (mu, significances, limits), the pre- and post-fit
yields per channel, the impacts and the pulls."""


class RecordTable(NamedTuple):
    """One table of the record: its ``kind`` (``distribution``, ``cutflow``, ``fit``,
    ``search``), ``key``, ``name`` (``mll in ww_emu (2018)``) and what it shows (``region``,
    ``histogram``, ``era``, ``table``, ``search``)."""

    kind: str
    key: str
    name: str
    params: Mapping[str, Any]

    @property
    def stem(self) -> str:
        """Its file name without suffix, as hepdata_lib derives it from the name (lower case,
        spaces as ``_``): the table's YAML, its figure's PNG and ``thumb_<stem>.png``."""
        return self.name.lower().replace(" ", "_")


def record_tables(config: Mapping[str, Any]) -> list[RecordTable]:
    """Every table of the record, in order: the data/MC plots and the cutflows of the
    combination, then of each era; each fit's tables (:data:`FIT_TABLES`); each search's
    limits against mass."""
    out = []
    for era in [None, *eras(config)]:
        prefix, suffix = ("", "") if era is None else (f"eras/{era}/", f" ({era})")
        for histogram, definition in config["histograms"].items():
            for region in definition.get("regions") or config["regions"]:
                params = {"region": region, "histogram": histogram, "era": era}
                out.append(RecordTable("distribution", f"{prefix}plots/{region}/{histogram}",
                                       f"{histogram} in {region}{suffix}", params))  # fmt: skip
        for region in config["regions"]:
            params = {"region": region, "era": era}
            out.append(RecordTable("cutflow", f"{prefix}cutflow/{region}",
                                   f"Cutflow {region}{suffix}", params))  # fmt: skip
    for histogram in config.get("fit", {}).get("histograms", []):
        for table in FIT_TABLES:
            params = {"histogram": histogram, "table": table}
            out.append(RecordTable("fit", f"fit/{histogram}/{table}",
                                   f"{_FIT_NAMES[table]} {histogram}", params))  # fmt: skip
    for search in config.get("searches", {}):
        out.append(RecordTable("search", f"search/{search}", f"Limits {search}",
                               {"search": search}))  # fmt: skip
    return out


def record_sources(config: Mapping, table: RecordTable) -> dict[str, str]:
    """The files a table of the HEPData record is made of (``numbers``: what a plot draws,
    ``cutflow``, ``fit`` or ``limits``) and, where it has one, its figure (``image``, when
    the plots are made as PNG)."""
    png = "png" in config["plots"]["formats"]
    if table.kind == "distribution":
        out = {"numbers": f"results/{table.key}.json", "image": f"results/{table.key}.png"}
    elif table.kind == "cutflow":
        out = {"cutflow": f"results/{table.key}.csv"}
    elif table.kind == "fit":
        folder = f"results/fit/{table.params['histogram']}"
        out = {"fit": f"{folder}/fit.json"}
        if table.params["table"] in ("impacts", "pulls"):
            out["image"] = f"{folder}/{table.params['table']}.png"
    else:
        folder = f"results/search/{table.params['search']}"
        out = {"limits": f"{folder}/limits.json", "image": f"{folder}/limits.png"}
    return {k: v for k, v in out.items() if png or k != "image"}


def hepdata_outputs(config: Mapping, folder: str = "results/hepdata") -> list[str]:
    """The files of the HEPData record in ``folder``: ``submission.yaml``, a YAML per table
    and, per table with a figure, its PNG and thumbnail."""
    out = [f"{folder}/submission.yaml"]
    for table in record_tables(config):
        out.append(f"{folder}/{table.stem}.yaml")
        if "image" in record_sources(config, table):
            out += [f"{folder}/{table.stem}.png", f"{folder}/thumb_{table.stem}.png"]
    return out


def hepdata_inputs(config: Mapping) -> list[str]:
    """Every file the HEPData record is made of (:func:`record_sources` of each table)."""
    return list(dict.fromkeys(path for table in record_tables(config)
                              for path in record_sources(config, table).values()))  # fmt: skip


NAME_LENGTH = 64
"""The longest table name HEPData takes (its submission schema; hepdata_lib refuses longer)."""


def record_problems(config: Mapping[str, Any]) -> list[str]:
    """What keeps the record's tables from being written (none: they can be): a name longer
    than HEPData takes, two tables that would be one file (names differing only in case, or
    in spaces and underscores)."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for table in record_tables(config):
        if len(table.name) > NAME_LENGTH:
            problems.append(
                f"the HEPData table of {table.key!r} would be named {table.name!r}, longer than "
                f"the {NAME_LENGTH} characters HEPData takes: shorten the region or histogram name"
            )
        first = seen.setdefault(table.stem, table.key)
        if first != table.key:
            problems.append(
                f"the HEPData tables of {first!r} and {table.key!r} would be one file "
                f"({table.stem}.yaml): rename a region or histogram so that their names differ "
                "in more than case"
            )
    return problems


def check_record(config: dict[str, Any]) -> None:
    """With a ``hepdata`` block (empty: the defaults): the record's tables can be written
    (:func:`record_problems`), ``locations`` names only tables the record has and the
    figures' images can be attached (``png`` among ``plots.formats``)."""
    if "hepdata" not in config:
        return
    if config["hepdata"] is None:  # `hepdata:` alone: the record, with the defaults
        config["hepdata"] = {"abstract": "", "reactions": [], "observables": [], "phrases": [],
                             "locations": {}}  # fmt: skip
    problems = record_problems(config)
    if problems:
        raise ConfigError(problems[0])
    keys = [t.key for t in record_tables(config)]
    for key in config["hepdata"].get("locations", {}):
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=3, cutoff=0.5) or keys[:3]
            raise ConfigError(
                f"hepdata.locations: no table {key!r} in the record (did you mean "
                f"{' or '.join(map(repr, close))}?); its tables are named by their outputs "
                "under results/ without the suffix"
            )
    if "png" not in config["plots"]["formats"]:
        raise ConfigError(
            "hepdata: the record attaches each figure as PNG with its thumbnail; add png to "
            "plots.formats"
        )
