"""Cutflow tables per region: a tidy CSV and readable Markdown / LaTeX (pandas, tabulate).

Weighted yields are normalised to the luminosity (after ``scale``); ``events`` are raw counts.
Efficiencies: ``eff`` relative to the previous step, ``cum_eff`` relative to all events. The
readable tables round each yield by its statistical uncertainty (the PDG rule,
:func:`pdg_round`), add the total MC and, where data are shown, data/MC, and open the data
columns with the certified-luminosity row: the events read and those in certified lumi blocks
(the golden JSON), as the data gate recorded them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from brewflow.config import era_settings, hypotheses
from brewflow.config.blinding import Blinding
from brewflow.files import atomic_write
from brewflow.results import provenance
from brewflow.results.ledger import partial_note
from brewflow.results.model import Result

__all__ = [
    "CERTIFIED_ROW",
    "DATA_OVER_MC",
    "TOTAL_MC",
    "cutflow_frame",
    "data_over_mc",
    "luminosity_counts",
    "pdg_round",
    "write_tables",
]

TOTAL_MC = "total MC"
"""The column (and the CSV's ``level``-``total`` rows' name) of the summed MC processes."""
DATA_OVER_MC = "data/MC"
"""The column of the data (all data processes) over the total MC, with its stat. uncertainty."""
CERTIFIED_ROW = "certified luminosity"
"""The first row of the data columns: events in certified lumi blocks of the events read."""


def pdg_round(value: float, uncertainty: float) -> tuple[str, str]:
    """``value`` and ``uncertainty`` as text, rounded by the PDG rule (Review of Particle
    Physics, Introduction, "Rounding"): the three highest-order digits of the uncertainty
    decide its significant digits, 100-354: two, 355-949: one, 950-999: rounded up to 1000,
    two; the value is rounded to the same decimal place (halves away from zero). A zero
    uncertainty leaves the value as given (``%g``)."""
    if not (math.isfinite(value) and math.isfinite(uncertainty)) or uncertainty < 0:
        raise ValueError(f"cannot round {value} ± {uncertainty}: not a finite value and error")
    if uncertainty == 0:
        return f"{value:g}", "0"
    error = Decimal(repr(float(uncertainty)))  # the decimal digits as written, no binary tail
    leading = error.adjusted()  # the decimal exponent of its first significant digit
    three = int(error.scaleb(2 - leading).to_integral_value(rounding=ROUND_FLOOR))
    digits = 2 if three <= 354 else 1
    if three >= 950:
        error, leading, digits = Decimal(1).scaleb(leading + 1), leading + 1, 2
    quantum = Decimal(1).scaleb(leading - digits + 1)
    out = []
    context = Context(prec=400)  # any value to the error's decimal place (floats reach 1e308)
    for number in (Decimal(repr(float(value))), error):
        rounded = number.quantize(quantum, rounding=ROUND_HALF_UP, context=context)
        out.append(format(rounded.copy_abs() if rounded == 0 else rounded, "f"))
    return out[0], out[1]


def _measured(value: float, uncertainty: float) -> str:
    rounded, error = pdg_round(value, uncertainty)
    return f"{rounded} ± {error}"


def _percent(fraction: float) -> str:
    """A fraction in per cent to three significant digits (``0.0474%``, ``52.0%``, ``100%``;
    ``0%``; empty when undefined: nothing before)."""
    if not math.isfinite(fraction):
        return ""
    return "0%" if fraction == 0 else f"{100 * fraction:#.3g}".rstrip(".") + "%"


def _efficiency(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        previous = np.concatenate([[values[0]], values[:-1]])
        return values / previous, values / values[0]


def luminosity_counts(datasets: Sequence[Result], level: str) -> dict[str, tuple[int, int]]:
    """Per data dataset (``level`` ``"dataset"``) or data process (``"process"``: summed
    over its datasets), ``(events read, events in certified lumi blocks)``, as the data gate
    recorded them (``events_certified``; data without a golden JSON, ``lumi_mask: all``: every
    event read)."""
    out: dict[str, tuple[int, int]] = {}
    for result in datasets:
        if not result.is_data:
            continue
        read = int(result.meta["events"])
        certified = int(result.meta.get("events_certified", read))
        name = str(result.dataset if level == "dataset" else result.process)
        before = out.get(name, (0, 0))
        out[name] = (before[0] + read, before[1] + certified)
    return out


def cutflow_frame(
    results: Sequence[Result],
    region: str,
    level: str,
    systematic: str = "nominal",
    luminosity: Mapping[str, tuple[int, int]] | None = None,
) -> pd.DataFrame:
    """One row per (result, step): events, sumw, its stat. error and efficiencies, the
    events read and, for data, those in certified lumi blocks (``luminosity``: name ->
    both, :func:`luminosity_counts`; default the results' own, at the dataset level)."""
    if luminosity is None:
        luminosity = luminosity_counts(results, level) if level == "dataset" else {}
    rows = []
    for result in results:
        name = result.dataset if level == "dataset" else result.process
        fraction = (
            result.meta.get("fraction", 1.0)
            if level == "dataset"
            else min(result.meta.get("partial", {}).values(), default=1.0)
        )
        read, certified = luminosity.get(str(name), (result.meta.get("events", np.nan), np.nan))
        if not result.is_data:
            certified = np.nan
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
                    "events_read": read,
                    "events_certified": certified,
                }
            )
    frame = pd.DataFrame(rows)
    if rows:  # counts: integers, empty where not known (MC: no certified luminosity)
        frame = frame.astype({"events_read": "Int64", "events_certified": "Int64"})
    return frame


def _total_mc(processes: pd.DataFrame) -> pd.DataFrame:
    """The ``total`` rows: the MC processes' rows summed per step (sumw, events, events
    read; the uncertainties in quadrature), efficiencies of the sums."""
    mc = processes[~processes.is_data.astype(bool)]
    if mc.empty:
        return mc
    steps = mc.assign(variance=mc.sumw_err**2).groupby("step", sort=True)
    out = steps.agg(
        region=("region", "first"), cut=("cut", "first"), events=("events", "sum"),
        sumw=("sumw", "sum"), variance=("variance", "sum"),
        fraction_read=("fraction_read", "min"), events_read=("events_read", "sum"),
    ).reset_index()  # fmt: skip
    out["eff"], out["cum_eff"] = _efficiency(out.sumw.to_numpy())
    out["events_eff"], out["events_cum_eff"] = _efficiency(out.events.to_numpy(dtype=float))
    out["sumw_err"] = np.sqrt(out.pop("variance"))
    out = out.assign(level="total", name=TOTAL_MC, is_data=False)
    out["events_certified"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out[list(processes.columns)]


def _columns(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Name -> its rows in step order, names in the frame's order."""
    return {str(name): rows.sort_values("step") for name, rows in frame.groupby("name", sort=False)}


def _yields(rows: pd.DataFrame) -> list[str]:
    """Data: the events per step; MC: the rounded yield ± its stat. uncertainty and the
    cumulative efficiency."""
    if rows.is_data.iloc[0]:
        return [str(int(e)) for e in rows.events]
    return [
        f"{_measured(w, s)} ({_percent(c)})"
        for w, s, c in zip(rows.sumw, rows.sumw_err, rows.cum_eff, strict=True)
    ]


def data_over_mc(
    data: np.ndarray, mc: np.ndarray, mc_err: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """data / MC per step and its uncertainty (the data's Poisson sqrt(N) and the MC's stat.
    uncertainty, uncorrelated); NaN where the MC is not positive."""
    data, mc, mc_err = (np.asarray(a, dtype=float) for a in (data, mc, mc_err))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mc > 0, data / mc, np.nan)
        error = np.hypot(np.sqrt(data) / mc, ratio * mc_err / mc)
    return ratio, np.where(mc > 0, error, np.nan)


def _ratio(data: np.ndarray, mc: np.ndarray, mc_err: np.ndarray) -> list[str]:
    """:func:`data_over_mc` per step, rounded; empty where the MC is not positive."""
    ratio, error = data_over_mc(data, mc, mc_err)
    return ["" if np.isnan(r) else _measured(r, e) for r, e in zip(ratio, error, strict=True)]


def _table(
    frame: pd.DataFrame, luminosity: Mapping[str, tuple[int, int]], weighted: bool,
    apart: Collection[str] = (),
) -> pd.DataFrame:  # fmt: skip
    """The readable table of one level: a row per step (first the certified-luminosity row,
    where data have one), a column per result, MC first, then data. ``weighted``: yields
    (:func:`_yields`), with the total MC after the MC (the processes ``apart``, a search's
    signal hypotheses, after it and not in it) and data/MC after the data; else the events
    per step."""
    columns = _columns(frame)
    data = [n for n, rows in columns.items() if rows.is_data.iloc[0]]
    mc = [n for n in columns if n not in data and n not in apart]
    signals = [n for n in columns if n in apart]
    cuts = list(next(iter(columns.values())).cut)
    if not weighted:
        cells = {n: [str(int(e)) for e in columns[n].events] for n in [*mc, *signals, *data]}
    else:
        cells = {n: _yields(columns[n]) for n in mc}
        total = _total_mc(frame[~frame.name.isin(apart)])
        if mc:
            cells[TOTAL_MC] = _yields(total)
        cells |= {n: _yields(columns[n]) for n in [*signals, *data]}
        if mc and data:
            observed = np.sum([columns[n].events.to_numpy(dtype=float) for n in data], axis=0)
            cells[DATA_OVER_MC] = _ratio(observed, total.sumw.to_numpy(),
                                         total.sumw_err.to_numpy())  # fmt: skip
    certified = {n: luminosity[n] for n in data if n in luminosity}
    if certified:
        first = {n: f"{certified[n][1]} of {certified[n][0]} read" if n in certified else ""
                 for n in cells}  # fmt: skip
        cells = {n: [first[n], *column] for n, column in cells.items()}
        cuts = [CERTIFIED_ROW, *cuts]
    return pd.DataFrame(cells, index=pd.Index(cuts, name="cut"))


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
    """Write ``<stem>.csv`` (tidy: a row per process, dataset and the total MC, ``level``
    ``total``, x step), ``<stem>.md`` and ``<stem>.tex`` (yields per process with the total
    MC and data/MC; events per dataset; each opening the data columns with the certified
    luminosity row, from the ``datasets``); return the paths. With the ``config``: the tables
    of a blinded region, or of one with a blinded window, have no data column (nor rows in
    the CSV, nor data/MC, nor certified-luminosity row), the title says so (and names the
    windows) and names the ``era``."""
    stem = Path(stem)
    blinding = Blinding.of(config) if config is not None else None
    blind = blinding is not None and blinding.hides_cutflow(region)
    if blind:
        processes = [p for p in processes if not p.is_data]
        datasets = [d for d in datasets if not d.is_data]
    by_process = luminosity_counts(datasets, "process")
    by_dataset = luminosity_counts(datasets, "dataset")
    per_process = cutflow_frame(processes, region, "process", luminosity=by_process)
    per_dataset = cutflow_frame(datasets, region, "dataset", luminosity=by_dataset)
    apart = hypotheses(config) if config is not None else set()  # not in the total MC
    total = _total_mc(per_process[~per_process.name.isin(apart)])
    tidy = pd.concat([per_process, total, per_dataset], ignore_index=True)
    yields = _table(per_process, by_process, weighted=True, apart=apart)
    raw = _table(per_dataset, by_dataset, weighted=False)
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
        f"# {title}\n\n## Yields per process (weighted, normalised, ± stat. uncertainty; "
        f"cumulative efficiency)\n\n"
        f"{yields.to_markdown()}\n\n## Events per dataset (unweighted)\n\n"
        f"{raw.to_markdown()}\n"
    )
    latex = (
        f"% {title}\n"
        + _latex(yields, f"{title}: yields per process", f"tab:cf_{region}")
        + _latex(raw, f"{title}: events per dataset", f"tab:cf_{region}_raw")
    )
    origin = provenance.stamp([*processes, *datasets])
    markdown += f"\n<!-- {provenance.MARK}: {origin} -->\n"
    latex += f"% {provenance.MARK}: {origin}\n"
    paths = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    for path, text in zip(paths, (tidy.to_csv(index=False), markdown, latex), strict=True):
        atomic_write(path, text)
    return paths
