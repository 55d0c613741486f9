"""Cutflow tables per region: a tidy CSV and readable Markdown / LaTeX (pandas, tabulate).

Weighted yields are normalised to the luminosity (after ``scale``); ``events`` are raw counts.
Efficiencies: ``eff`` relative to the previous step, ``cum_eff`` relative to all events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from brewflow.config import era_settings
from brewflow.config.blinding import Blinding
from brewflow.files import atomic_write
from brewflow.results import provenance
from brewflow.results.ledger import partial_note
from brewflow.results.model import Result

__all__ = ["cutflow_frame", "write_tables"]


def _efficiency(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        previous = np.concatenate([[values[0]], values[:-1]])
        return values / previous, values / values[0]


def cutflow_frame(
    results: Sequence[Result], region: str, level: str, systematic: str = "nominal"
) -> pd.DataFrame:
    """One row per (result, step): events, sumw, its stat. error and efficiencies."""
    rows = []
    for result in results:
        name = result.dataset if level == "dataset" else result.process
        fraction = (
            result.meta.get("fraction", 1.0)
            if level == "dataset"
            else min(result.meta.get("partial", {}).values(), default=1.0)
        )
        flow = result.cutflow(region, systematic)
        sumw = np.asarray(flow["sumw"])
        events = np.asarray(flow["events"])
        eff, cum = _efficiency(sumw)
        eff_n, cum_n = _efficiency(events)
        for step, cut in enumerate(flow["cuts"]):
            rows.append(
                {
                    "region": region,
                    "level": level,
                    "name": name,
                    "is_data": result.is_data,
                    "step": step,
                    "cut": cut,
                    "events": round(events[step]),
                    "events_eff": eff_n[step],
                    "events_cum_eff": cum_n[step],
                    "sumw": sumw[step],
                    "sumw_err": float(np.sqrt(flow["sumw2"][step])),
                    "eff": eff[step],
                    "cum_eff": cum[step],
                    "fraction_read": fraction,
                }
            )
    return pd.DataFrame(rows)


def _wide(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    table = frame.pivot_table(index=["step", "cut"], columns="name", values=value, sort=False)
    table = table.reset_index(level="step", drop=True)
    table.columns.name = None
    return table


def _yield_text(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["text"] = [
        f"{int(e)}" if d else f"{w:.1f} ± {s:.1f} ({100 * c:.1f}%)"
        for d, e, w, s, c in zip(
            frame.is_data, frame.events, frame.sumw, frame.sumw_err, frame.cum_eff, strict=True
        )
    ]
    table = frame.pivot(index=["step", "cut"], columns="name", values="text")
    table = table.reset_index(level="step", drop=True)
    table.columns.name = None
    names = list(dict.fromkeys(frame["name"]))
    return table[names]


_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {"\\": r"\textbackslash{}"}


def _latex(table: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table environment: cells escaped by tabulate (a ``%`` or ``_`` in a cut
    name or a percentage would otherwise end the line or break the document), ``±`` as
    ``$\\pm$``."""
    rows = table.reset_index().astype(str).values.tolist()
    headers = [str(table.index.name or ""), *map(str, table.columns)]
    body = tabulate(rows, headers=headers, tablefmt="latex_booktabs", disable_numparse=True)
    body = body.replace("±", r"$\pm$")
    caption = "".join(_LATEX_SPECIAL.get(c, c) for c in caption)
    head = rf"\begin{{table}}" "\n" r"\centering" "\n" rf"\caption{{{caption}}}" "\n"
    return head + rf"\label{{{label}}}" "\n" + body + "\n" + r"\end{table}" + "\n"


def write_tables(
    processes: Sequence[Result],
    datasets: Sequence[Result],
    region: str,
    stem: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    era: str | None = None,
) -> list[Path]:
    """Write ``<stem>.csv`` (tidy), ``<stem>.md`` and ``<stem>.tex``; return the paths. With
    the ``config``: the tables of a blinded region, or of one with a blinded window, have no
    data column (nor rows in the CSV), the title says so (and names the windows) and names
    the ``era``."""
    stem = Path(stem)
    blinding = Blinding.of(config) if config is not None else None
    blind = blinding is not None and blinding.hides_cutflow(region)
    if blind:
        processes = [p for p in processes if not p.is_data]
        datasets = [d for d in datasets if not d.is_data]
    tidy = pd.concat(
        [cutflow_frame(processes, region, "process"), cutflow_frame(datasets, region, "dataset")],
        ignore_index=True,
    )
    by_process = _yield_text(tidy[tidy.level == "process"])
    raw = _wide(tidy[tidy.level == "dataset"], "events").astype(int)
    title = f"Cutflow, region {region}"
    if era is not None and config is not None:
        title += f", {era_settings(config, era)['label']}"
    note = partial_note(datasets)
    if note:
        title += f" ({note} of the events)"
    if blinding is not None and (left := blinding.left_out(region)):
        title += f" (data blinded: a window, {left})"
    elif blind:
        title += " (data blinded)"
    markdown = (
        f"# {title}\n\n## Yields per process (weighted, normalised; cumulative efficiency)\n\n"
        f"{by_process.to_markdown()}\n\n## Events per dataset (unweighted)\n\n"
        f"{raw.to_markdown()}\n"
    )
    latex = (
        f"% {title}\n"
        + _latex(by_process, f"{title}: yields per process", f"tab:cf_{region}")
        + _latex(raw, f"{title}: events per dataset", f"tab:cf_{region}_raw")
    )
    origin = provenance.stamp([*processes, *datasets])
    markdown += f"\n<!-- {provenance.MARK}: {origin} -->\n"
    latex += f"% {provenance.MARK}: {origin}\n"
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    for path, text in zip(paths, (tidy.to_csv(index=False), markdown, latex), strict=True):
        atomic_write(path, text)
    return paths
