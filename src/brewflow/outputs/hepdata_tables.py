"""The tables of a HEPData record (``hepdata_lib``), each made of the numbers its figure or
table was made of: a data/MC plot of its :class:`~brewflow.outputs.distribution.Distribution`,
a cutflow of its tidy CSV, the fit's tables of ``fit.json``, a search's limits of
``limits.json``. Nothing here reads data the outputs did not show: the inputs passed the data
gate (a blinded region has no data column, a window's bins are ``-``).

Values keep :data:`DIGITS` significant digits; uncertainties are as drawn: Garwood intervals
for data (asymmetric), the prediction's statistical (symmetric) and systematic (asymmetric)
uncertainties apart (the band drawn is their sum in quadrature).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from hepdata_lib import Table, Uncertainty, Variable

from brewflow.outputs.distribution import Distribution, axis_unit, blinded_bins
from brewflow.outputs.points import garwood
from brewflow.outputs.tables import TOTAL_MC, data_over_mc

__all__ = [
    "DIGITS",
    "HIDDEN",
    "cutflow_table",
    "distribution_table",
    "fit_results_table",
    "impacts_table",
    "limits_table",
    "pulls_table",
    "yields_table",
]

DIGITS = 8
"""Significant digits of every number in the record (hepdata_lib's default is 5: 8 keep the
drawn numbers to 1e-8 relative)."""
HIDDEN = "-"
"""The value of a bin or row whose data are not shown (a blinded window; a failed fit)."""
GARWOOD = "Poisson (Garwood) 68.3% interval"
"""The label of the data's uncertainty."""

Qualifiers = Sequence[tuple[str, Any, str]]
"""(name, value, units) of the qualifiers each dependent variable carries (energy, luminosity,
region)."""


def _table(name: str, description: str, location: str, keywords: Mapping[str, list]) -> Table:
    table = Table(name)
    table.description, table.location = description, location
    table.keywords = {k: list(v) for k, v in keywords.items() if v}
    return table


def _variable(
    name: str, values: Sequence[Any], *, units: str = "", independent: bool = False,
    binned: bool = False, qualifiers: Qualifiers = (),
) -> Variable:  # fmt: skip
    var = Variable(name, is_independent=independent, is_binned=binned, units=units,
                   zero_uncertainties_warning=False)  # fmt: skip
    var.digits = DIGITS
    var.values = [_number(v) for v in values] if not binned else list(values)
    for qualifier, value, unit in qualifiers if not independent else ():
        var.add_qualifier(qualifier, value, unit)
    return var


def _number(value: Any) -> Any:
    """A finite number as a float (an integer as an int); NaN or None: :data:`HIDDEN`."""
    if isinstance(value, str):
        return value
    if value is None or not np.isfinite(value):
        return HIDDEN
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _symmetric(var: Variable, label: str, errors: Sequence[float | None]) -> None:
    unc = Uncertainty(label, is_symmetric=True)
    unc.values = [None if e is None or not np.isfinite(e) else float(e) for e in errors]
    var.add_uncertainty(unc)


class _Gapped(Uncertainty):
    """An asymmetric uncertainty that some values lack (None): hepdata_lib writes no error
    there (its writer skips None; its setter accepts none)."""

    def __init__(self, label: str) -> None:
        super().__init__(label, is_symmetric=False)

    @property
    def values(self) -> list:
        return self._values

    @values.setter
    def values(self, values: Sequence[tuple[float, float] | None]) -> None:
        self._values = [None if v is None else (float(v[0]), float(v[1])) for v in values]


def _asymmetric(
    var: Variable, label: str, minus: Sequence[float | None], plus: Sequence[float | None]
) -> None:
    """An uncertainty ``(minus, plus)`` per value: signed shifts (``minus`` the downward one,
    negative for a lower edge)."""
    unc = _Gapped(label)
    unc.values = [
        None if m is None or p is None or not (np.isfinite(m) and np.isfinite(p))
        else (float(m), float(p))
        for m, p in zip(minus, plus, strict=True)
    ]  # fmt: skip
    var.add_uncertainty(unc)


def _axis_name(label: str) -> str:
    """An axis title without its unit (``'$m_{\\ell\\ell}$ [GeV]'``: ``'$m_{\\ell\\ell}$'``)."""
    unit = axis_unit(label)
    return label[: label.rindex("[")].strip() if unit else label


def distribution_table(
    dist: Distribution, name: str, *, description: str, location: str,
    keywords: Mapping[str, list], qualifiers: Qualifiers,
) -> Table:  # fmt: skip
    """A data/MC plot: x in bins (its unit), then the data with their Garwood intervals (none
    when blinded; :data:`HIDDEN` in a window's bins), each stacked process, the total
    prediction with ``stat`` and ``syst`` uncertainties and each signal hypothesis, in the y
    axis' units (``dist.ytitle``)."""
    table = _table(name, description, location, keywords)
    edges = dist.edges
    bins = list(itertools.pairwise(edges))
    table.add_variable(_variable(_axis_name(dist.xlabel), bins, units=axis_unit(dist.xlabel),
                                 independent=True, binned=True))  # fmt: skip
    units = dist.ytitle.replace("Events", "events", 1)

    def column(label: str, values: np.ndarray) -> Variable:
        return _variable(label, list(values), units=units, qualifiers=qualifiers)

    if dist.data is not None:
        assert dist.data_low is not None
        assert dist.data_high is not None
        hidden = blinded_bins(edges, dist.window)
        empty = np.isnan(dist.data) & ~hidden  # not drawn: no event where MC predicts none
        low, high = garwood(np.zeros(1))
        value = np.where(empty, 0.0, dist.data)
        lower = np.where(empty, low[0] / dist.widths, dist.data_low) - value
        upper = np.where(empty, high[0] / dist.widths, dist.data_high) - value
        data = column("Data", value)
        _asymmetric(data, GARWOOD, list(lower), list(upper))
        table.add_variable(data)
    for component in reversed(dist.stacked):  # the stack's top (the largest) first
        table.add_variable(column(component.label, component.values))
    total = column("Total prediction", dist.total)
    _symmetric(total, "stat", list(dist.stat))
    if dist.has_syst:
        _asymmetric(total, "syst", list(-dist.syst_down), list(dist.syst_up))
    table.add_variable(total)
    for signal in dist.signals:
        table.add_variable(column(f"{signal.label} (not stacked)", signal.values))
    return table


def cutflow_table(
    tidy: pd.DataFrame, name: str, *, labels: Mapping[str, str], hypotheses: Sequence[str],
    description: str, location: str, keywords: Mapping[str, list], qualifiers: Qualifiers,
) -> Table:  # fmt: skip
    """A cutflow's yields per process (the CSV's ``process`` rows): per step the yield of each
    MC process with its statistical uncertainty, the total MC, the ``hypotheses`` (a search's
    signals, not in the total), the data's events (their certified luminosity as qualifiers)
    and data/MC, as the tables show them, unrounded."""
    table = _table(name, description, location, keywords)
    rows = tidy[tidy.level.isin(["process", "total"])]
    columns = {str(n): r.sort_values("step") for n, r in rows.groupby("name", sort=False)}
    if not columns:
        raise ValueError(f"{name}: the cutflow has no process rows")
    cuts = [str(c) for c in next(iter(columns.values())).cut]
    table.add_variable(_variable("Selection", cuts, independent=True))
    data = [n for n, r in columns.items() if r.is_data.astype(bool).iloc[0]]
    mc = [n for n in columns if n not in data and n not in hypotheses and n != TOTAL_MC]
    order = [*mc, *([TOTAL_MC] if TOTAL_MC in columns else []),
             *(n for n in columns if n in hypotheses)]  # fmt: skip
    for process in order:
        r = columns[process]
        label = "Total MC" if process == TOTAL_MC else labels.get(process, process)
        label += " (not in the total)" if process in hypotheses else ""
        var = _variable(label, list(r.sumw), units="events", qualifiers=qualifiers)
        _symmetric(var, "stat", list(r.sumw_err))
        table.add_variable(var)
    if data:
        observed = np.sum([columns[n].events.to_numpy(dtype=float) for n in data], axis=0)
        read = sum(int(columns[n].events_read.iloc[0]) for n in data)
        certified = [columns[n].events_certified.iloc[0] for n in data]
        extra = [("Events read", read, "")]
        if all(pd.notna(c) for c in certified):
            extra.append(("Events in certified luminosity blocks", int(sum(certified)), ""))
        table.add_variable(_variable("Data", list(observed), units="events",
                                     qualifiers=[*qualifiers, *extra]))  # fmt: skip
        if TOTAL_MC in columns:
            total = columns[TOTAL_MC]
            ratio, error = data_over_mc(observed, total.sumw.to_numpy(),
                                        total.sumw_err.to_numpy())  # fmt: skip
            var = _variable("Data / total MC", list(ratio), qualifiers=qualifiers)
            _symmetric(var, "stat", list(error))
            table.add_variable(var)
    return table


def fit_results_table(
    fit: Mapping[str, Any], name: str, *, description: str, location: str,
    keywords: Mapping[str, list], qualifiers: Qualifiers,
) -> Table:  # fmt: skip
    """The fit's results (``fit.json``): the signal strength with its HESSE uncertainty and its
    likelihood-scan intervals, the significances, the CLs upper limits (the expected one with
    its 1 and 2 sigma bands) and each free normalisation."""
    table = _table(name, description, location, keywords)
    rows: list[tuple[str, float | None, list[tuple[str, Any]]]] = []
    rows.append(("signal strength $\\hat{\\mu}$", fit["mu"], [("HESSE", fit["mu_error"])]))
    for interval in fit.get("likelihood_scan", {}).get("intervals", []):
        level = f"{100 * interval['level']:.1f}% CL interval (likelihood scan)"
        rows.append(
            (
                f"signal strength $\\hat{{\\mu}}$, {level}",
                fit["mu"],
                [(level, (interval["low"] - fit["mu"], interval["high"] - fit["mu"]))],
            )
        )
    significance = fit["significance"]
    rows.append(("observed significance [$\\sigma$]", significance["observed"], []))
    rows.append(("expected significance ($\\mu = 1$) [$\\sigma$]", significance["expected"], []))
    limit = fit["upper_limit"]
    cl = f"{100 * (1 - limit['level']):g}% CL"
    rows.append((f"observed upper limit on $\\mu$ ({cl}, CLs)", limit["observed"], []))
    expected = limit["expected"]  # [median, -2, -1, +1, +2]
    median = expected[0] if expected else None
    bands = []
    if expected and median is not None:
        bands = [("1 sigma", (expected[2] - median, expected[3] - median)),
                 ("2 sigma", (expected[1] - median, expected[4] - median))]  # fmt: skip
    rows.append((f"expected upper limit on $\\mu$ ({cl}, CLs)", median, bands))
    for norm in fit.get("normalisations", []):
        rows.append((f"free normalisation {norm['name']}", norm["value"],
                     [("HESSE", norm["error"])]))  # fmt: skip
    table.add_variable(_variable("Quantity", [r[0] for r in rows], independent=True))
    var = _variable("Value", [r[1] for r in rows], qualifiers=qualifiers)
    labels = list(dict.fromkeys(label for _, _, errors in rows for label, _ in errors))
    for label in labels:
        found = [dict(errors).get(label) for _, _, errors in rows]
        if any(isinstance(e, tuple) for e in found):
            _asymmetric(var, label, [None if e is None else e[0] for e in found],
                        [None if e is None else e[1] for e in found])  # fmt: skip
        else:
            _symmetric(var, label, found)
    table.add_variable(var)
    return table


def yields_table(
    fit: Mapping[str, Any], stage: str, name: str, *, labels: Mapping[str, str],
    description: str, location: str, keywords: Mapping[str, list], qualifiers: Qualifiers,
) -> Table:  # fmt: skip
    """The ``stage`` (``prefit``, ``postfit``) yields of ``fit.json`` per channel, summed over
    its bins: each sample, the total background and the total with their uncertainties, and
    the data (:data:`HIDDEN` where blinded)."""
    table = _table(name, description, location, keywords)
    channels = list(fit["channels"])
    table.add_variable(_variable("Channel", channels, independent=True))
    yields = {c: fit["yields"][c][stage] for c in channels}
    samples = list(dict.fromkeys(s for c in channels for s in yields[c]
                                 if s not in ("background", "total")))  # fmt: skip
    signal = set(fit.get("signal", []))
    for sample in [*samples, "background", "total"]:
        label = {"background": "Total background", "total": "Total (signal + background)"}.get(
            sample, labels.get(sample, sample) + (" (signal)" if sample in signal else "")
        )
        found = [yields[c].get(sample) for c in channels]
        var = _variable(label, [None if f is None else f["sum"] for f in found], units="events",
                        qualifiers=qualifiers)  # fmt: skip
        _symmetric(var, "fit" if stage == "postfit" else "pre-fit",
                   [None if f is None else f["error"] for f in found])  # fmt: skip
        table.add_variable(var)
    data = [fit["yields"][c]["data"]["sum"] for c in channels]
    table.add_variable(_variable("Data" if fit["data"] != "asimov" else "Asimov data", data,
                                 units="events", qualifiers=qualifiers))  # fmt: skip
    return table


def impacts_table(
    fit: Mapping[str, Any], name: str, *, description: str, location: str,
    keywords: Mapping[str, list], qualifiers: Qualifiers,
) -> Table:  # fmt: skip
    """The impact ranking (``fit.json``'s ``impacts``, largest first): per nuisance its pull
    with its post-fit constraint and the change of the signal strength with it held at its
    best fit +- its post-fit and pre-fit uncertainty (:data:`HIDDEN`: the refit failed)."""
    table = _table(name, description, location, keywords)
    rows = fit["impacts"]
    pulls = {p["name"]: p for p in fit["pulls"]}
    table.add_variable(_variable("Nuisance parameter", [r["name"] for r in rows],
                                 independent=True))  # fmt: skip
    pull = _variable(
        "Pull $(\\hat{\\theta} - \\theta_0) / \\sigma_0$",
        [pulls.get(r["name"], {}).get("pull") for r in rows],
        qualifiers=qualifiers,
    )
    _symmetric(pull, "post-fit constraint",
               [pulls.get(r["name"], {}).get("constraint") for r in rows])  # fmt: skip
    table.add_variable(pull)
    for key, text in (
        ("postfit_up", "+1 sigma post-fit"),
        ("postfit_down", "-1 sigma post-fit"),
        ("prefit_up", "+1 sigma pre-fit"),
        ("prefit_down", "-1 sigma pre-fit"),
    ):
        table.add_variable(_variable(f"$\\Delta\\hat{{\\mu}}$, {text}", [r[key] for r in rows],
                                     qualifiers=qualifiers))  # fmt: skip
    return table


def pulls_table(
    fit: Mapping[str, Any], name: str, *, description: str, location: str,
    keywords: Mapping[str, list], qualifiers: Qualifiers,
) -> Table:  # fmt: skip
    """The pulls (``fit.json``'s ``pulls``, largest first) with their post-fit constraints."""
    table = _table(name, description, location, keywords)
    rows = fit["pulls"]
    table.add_variable(_variable("Nuisance parameter", [r["name"] for r in rows],
                                 independent=True))  # fmt: skip
    pull = _variable("Pull $(\\hat{\\theta} - \\theta_0) / \\sigma_0$", [r["pull"] for r in rows],
                     qualifiers=qualifiers)  # fmt: skip
    _symmetric(pull, "post-fit constraint", [r["constraint"] for r in rows])
    table.add_variable(pull)
    return table


def limits_table(
    limits: Mapping[str, Any], name: str, *, mass_label: str, signal: str, description: str,
    location: str, keywords: Mapping[str, list], qualifiers: Qualifiers,
) -> Table:  # fmt: skip
    """A search's limits against mass (``limits.json``): the observed limit on the cross
    section (:data:`HIDDEN` while blinded or where the point failed), the expected median with
    its 1 and 2 sigma bands, the signal's cross section, and the same limits on the signal
    strength."""
    table = _table(name, description, location, keywords)
    points = limits["points"]
    cl = f"{100 * (1 - limits['level']):g}% CL"
    table.add_variable(_variable(_axis_name(mass_label), [p["mass"] for p in points],
                                 units=axis_unit(mass_label), independent=True))  # fmt: skip

    def expected(key: str, what: str, units: str) -> Variable:
        bands = [p[key] or {} for p in points]
        var = _variable(
            f"expected upper limit on {what} ({cl}, median)",
            [b.get("median") for b in bands],
            units=units,
            qualifiers=qualifiers,
        )
        for sigma in ("1", "2"):
            _asymmetric(
                var,
                f"{sigma} sigma",
                [b[f"-{sigma}"] - b["median"] if b else None for b in bands],
                [b[f"+{sigma}"] - b["median"] if b else None for b in bands],
            )
        return var  # fmt: skip

    for key, what, units in (("xsec", "$\\sigma$", "pb"), ("", "$\\mu$", "")):
        observed = [p[f"{key}_observed" if key else "observed"] for p in points]
        table.add_variable(_variable(f"observed upper limit on {what} ({cl})", observed,
                                     units=units, qualifiers=qualifiers))  # fmt: skip
        table.add_variable(expected(f"{key}_expected" if key else "expected", what, units))
        if key:
            table.add_variable(_variable(f"$\\sigma$({signal})", [p["xsec"] for p in points],
                                         units=units, qualifiers=qualifiers))  # fmt: skip
    return table
