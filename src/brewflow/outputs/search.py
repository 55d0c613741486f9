"""A search (``searches.<name>``): a fit per signal hypothesis (mass point) of one histogram,
the 95% CL upper limit on the signal strength and, through the signal's cross section, on the
cross section, against mass: the limit table (JSON, Markdown, LaTeX) and the "Brazil" plot
(expected median with its 1 and 2 sigma bands, the observed limit once unblinded, the signal's
cross section) in ``results/search/<name>/`` (``brewflow search``, the workflow's ``search``
rules).

Each point's workspace holds the backgrounds and that point's signal only; its observations
are the data, and in blinded bins the background-only Asimov (the other hypotheses and the
point's own signal never enter them). While any channel is blinded, no observed limit is
reported (the data there are the Asimov): unblinding is removing the ``blind`` of the config.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from tabulate import tabulate

from brewflow.config import fit_channels
from brewflow.errors import InputError
from brewflow.files import atomic_write
from brewflow.outputs.fit_inputs import Channel, fit_channels_of, pyhf_workspace
from brewflow.outputs.likelihood import FitFailed, asimov_data, expects_signal, upper_limit
from brewflow.outputs.mle import load, maximum_likelihood
from brewflow.outputs.plots import cms_label, lumi_label, save_figure
from brewflow.results import provenance
from brewflow.results.model import Result

__all__ = ["POI_BOUND", "Point", "brazil_plot", "point_workspace", "search_job", "search_points"]

log = logging.getLogger(__name__)

POI_BOUND = 100.0
"""The signal strength's upper bound in a point's fit (a limit above it is a failed point)."""

BANDS = ("median", "-2", "-1", "+1", "+2")
"""The expected limit's quantiles, in the order :func:`~brewflow.outputs.likelihood.upper_limit`
returns them."""


@dataclass(frozen=True)
class Point:
    """One signal hypothesis: its ``process``, ``mass`` and cross section ``xsec`` (pb)."""

    process: str
    mass: float
    xsec: float


def search_points(config: Mapping[str, Any], name: str) -> list[Point]:
    """The hypotheses of search ``name``, by mass (the cross section: their datasets')."""
    signals = config["searches"][name]["signals"]
    xsec = {d.get("process", n): d["xsec"] for n, d in config["datasets"].items()
            if d.get("process", n) in signals}  # fmt: skip
    points = [Point(p, float(mass), float(xsec[p])) for p, mass in signals.items()]
    return sorted(points, key=lambda p: p.mass)


def _with_signal(channel: Channel, signal: Sequence[Result]) -> Channel:
    return Channel(channel.name, channel.region, [*channel.processes, *signal],
                   blind=channel.blind, window=channel.window)  # fmt: skip


def point_workspace(
    config: Mapping[str, Any], inputs: Sequence[Result], name: str, point: Point
) -> dict[str, Any]:
    """The pyhf workspace of one hypothesis: every channel of the search's histogram (region
    x era) with the backgrounds and ``point``'s signal (signal strength ``mu``, bounded by
    :data:`POI_BOUND`); observations: the data, the background-only Asimov where blinded."""
    histogram = config["searches"][name]["histogram"]
    background = fit_channels_of(config, inputs, histogram)  # the hypotheses left out
    signal_of = {
        channel: [p for p in inputs if p.process == point.process and p.meta.get("era") == era]
        for channel, _, era in fit_channels(config, histogram)
    }
    if not any(signal_of.values()):
        raise InputError(f"search {name!r}: no stacked process {point.process!r} given")
    channels = [_with_signal(c, signal_of[c.name]) for c in background]
    spec = pyhf_workspace(channels, histogram, [point.process])
    observations = []
    for channel in background:
        observed = channel.observed(histogram)
        if observed is not None:
            observations.append({"name": channel.name, "data": observed.values().tolist()})
    spec["observations"] = observations if len(observations) == len(background) else []
    spec["measurements"][0]["config"]["parameters"] = [
        {"name": "mu", "bounds": [[0.0, POI_BOUND]], "inits": [1.0]}
    ]
    return spec


def _limits(spec: Mapping[str, Any], level: float) -> dict[str, Any]:
    """Observed and expected limits on mu of one point's workspace (None and why on failure)."""
    workspace, model = load(spec)
    if spec.get("observations"):
        data = np.asarray(workspace.data(model), dtype=float)
    else:  # no data at all (MC only): the background-only Asimov
        data = asimov_data(model, 0.0)
    if not expects_signal(model):
        channels = ", ".join(model.config.channels)
        return {"mu": None, "observed": None, "expected": None,
                "failed": f"the signal expects no event in the channels ({channels})"}  # fmt: skip
    try:
        best = maximum_likelihood(model, data, what="the best fit")
        mu, error = best[model.config.poi_name]
        observed, expected = upper_limit(model, data, level, guess=(mu, error))
    except FitFailed as err:
        return {"mu": None, "observed": None, "expected": None, "failed": str(err)}
    bands = dict(zip(BANDS, map(float, expected), strict=True))
    return {"mu": float(mu), "observed": float(observed), "expected": bands, "failed": None}


def _clean(value: float) -> float:
    """``value`` without a negative zero."""
    return value + 0.0


def search_job(
    config: Mapping[str, Any], name: str, inputs: Sequence[Result], output_dir: str | Path
) -> dict[str, Any]:
    """Search ``name``: each point's workspace (``<process>.pyhf.json``), the limit table
    (``limits.json``, ``.md``, ``.tex``) and the Brazil plot (``limits.<format>``) in
    ``output_dir``. Returns the table."""
    search = config["searches"][name]
    histogram = search["histogram"]
    level = search.get("cls", 0.05)
    channels = fit_channels_of(config, inputs, histogram)
    blinded = [c.name for c in channels if c.blind or c.window is not None]
    out = Path(output_dir)
    points = search_points(config, name)
    current = {f"{p.process}.pyhf.json" for p in points}
    for stale in out.glob("*.pyhf.json"):  # a hypothesis no longer in the search
        if stale.name not in current:
            stale.unlink()
    rows = []
    for point in points:
        spec = point_workspace(config, inputs, name, point)
        atomic_write(out / f"{point.process}.pyhf.json", json.dumps(spec, indent=1) + "\n")
        limits = _limits(spec, level)
        if limits["failed"]:
            log.warning("search %s, %s: %s", name, point.process, limits["failed"])
        if blinded:  # the data of the blinded bins are the Asimov: nothing observed
            limits["observed"] = limits["mu"] = None
        expected, observed = limits["expected"], limits["observed"]
        rows.append({
            "process": point.process, "mass": point.mass, "xsec": point.xsec, **limits,
            "xsec_observed": None if observed is None else _clean(observed * point.xsec),
            "xsec_expected": None if expected is None
            else {k: _clean(v * point.xsec) for k, v in expected.items()},
        })  # fmt: skip
        log.info("search %s, %s (mass %g): expected mu < %s, observed %s", name, point.process,
                 point.mass, limits["expected"] and f"{limits['expected']['median']:.3g}",
                 "blinded" if blinded else limits["observed"])  # fmt: skip
    table = {"search": name, "histogram": histogram, "level": level, "blinded": blinded,
             "points": rows}  # fmt: skip
    stamp = provenance.stamp(inputs)
    atomic_write(out / "limits.json", json.dumps(table, indent=1, sort_keys=True) + "\n")
    mark = f"{provenance.MARK}: {stamp}"
    atomic_write(out / "limits.md", limits_markdown(table, search) + f"\n<!-- {mark} -->\n")
    atomic_write(out / "limits.tex", limits_latex(table, search) + f"% {mark}\n")
    formats = config["plots"]["formats"]
    fig = brazil_plot(table, label=search.get("label", name),
                      xlabel=search.get("mass_label", "mass [GeV]"),
                      rlabel=lumi_label(config), cms=config["plots"]["label"])  # fmt: skip
    save_figure(fig, [out / f"limits.{ext}" for ext in formats], stamp)
    return table


def _g(value: float | None) -> str:
    """Three significant digits (no "-0"); a dash for None."""
    return "—" if value is None else f"{_clean(float(f'{value:.3g}')):g}"


def _rows(table: Mapping[str, Any]) -> list[list[str]]:
    out = []
    for p in table["points"]:
        exp, sig = p["expected"], p["xsec_expected"]
        failed = "failed" if p["failed"] else "—"
        out.append([
            f"{p['mass']:g}", _g(p["xsec"]),
            _g(exp["median"]) if exp else failed,
            f"[{_g(exp['-1'])}, {_g(exp['+1'])}]" if exp else failed,
            f"[{_g(exp['-2'])}, {_g(exp['+2'])}]" if exp else failed,
            "blinded" if table["blinded"] else _g(p["observed"]),
            _g(sig["median"]) if sig else failed,
            "blinded" if table["blinded"] else _g(p["xsec_observed"]),
        ])  # fmt: skip
    return out


HEADERS = ["mass", "σ (pb)", "expected μ", "±1σ", "±2σ", "observed μ", "expected σ (pb)",
           "observed σ (pb)"]  # fmt: skip


def limits_markdown(table: Mapping[str, Any], search: Mapping[str, Any]) -> str:
    """The limit table as Markdown, with what the numbers are."""
    cl = f"{100 * (1 - table['level']):g}"
    label = search.get("label", table["search"])
    lines = [
        f"# Search {table['search']}: {cl}% CL upper limits",
        "",
        f"Upper limits on the signal strength μ of {label} and on its cross section σ "
        f"(μ × the signal's σ) from a fit of histogram `{table['histogram']}` per mass point "
        "(CLs, asymptotic). Expected: the median and bands of the limit on background-only "
        "pseudo-data.",
        "",
    ]
    if table["blinded"]:
        lines += [f"Blinded ({', '.join(table['blinded'])}): no observed limit; the data of the "
                  "blinded bins are the background-only Asimov.", ""]  # fmt: skip
    lines.append(tabulate(_rows(table), headers=HEADERS, tablefmt="github", disable_numparse=True))
    failed = [f"- mass {p['mass']:g}: {p['failed']}" for p in table["points"] if p["failed"]]
    if failed:
        lines += ["", "Failed points:", *failed]
    return "\n".join(lines) + "\n"


def limits_latex(table: Mapping[str, Any], search: Mapping[str, Any]) -> str:
    """The limit table as a LaTeX tabular."""
    cl = f"{100 * (1 - table['level']):g}"
    head = [r"mass", r"$\sigma$ (pb)", r"exp.\ $\mu$", r"$\pm1\sigma$", r"$\pm2\sigma$",
            r"obs.\ $\mu$", r"exp.\ $\sigma$ (pb)", r"obs.\ $\sigma$ (pb)"]  # fmt: skip
    body = [" & ".join(row).replace("σ", r"$\sigma$").replace("—", "--") + r" \\"
            for row in _rows(table)]  # fmt: skip
    return "\n".join([
        f"% search {table['search']}: {cl}% CL upper limits (CLs, asymptotic)",
        r"\begin{tabular}{" + "r" * len(head) + "}",
        r"\hline",
        " & ".join(head) + r" \\",
        r"\hline",
        *body,
        r"\hline",
        r"\end{tabular}",
    ]) + "\n"  # fmt: skip


GREEN, YELLOW = "#607641", "#F5BB54"
"""CMS's colours of the expected limit's 1 and 2 sigma bands."""


def brazil_plot(table: Mapping[str, Any], *, label: str, xlabel: str, rlabel: str, cms: str) -> Any:
    """The limit on the cross section against mass: expected median (dashed) with its 1 and 2
    sigma bands, the observed limit (solid, with markers; absent while blinded) and the
    signal's cross section. Returns the figure."""
    import mplhep as mh

    points = [p for p in table["points"] if p["xsec_expected"] is not None]
    plt.style.use(mh.style.CMS)
    fig, ax = plt.subplots(figsize=(10, 9))
    cms_label(ax, cms, rlabel, data=True)
    if not points:  # every point failed (limits.md says why)
        ax.text(0.5, 0.5, "no limit: every mass point failed\n(see limits.md)",
                ha="center", va="center", transform=ax.transAxes)  # fmt: skip
        ax.set_xlabel(xlabel)
        return fig
    mass = np.array([p["mass"] for p in points])
    band = {k: np.array([p["xsec_expected"][k] for p in points]) for k in BANDS}
    if len(points) == 1:  # one point: each curve a short segment over +-2% of its mass
        mass = np.array([0.98, 1.02]) * mass[0]
        band = {k: np.repeat(v, 2) for k, v in band.items()}
        points = points * 2
    cl = f"{100 * (1 - table['level']):g}"
    ax.fill_between(mass, band["-2"], band["+2"], color=YELLOW, lw=0, label="95% expected")
    ax.fill_between(mass, band["-1"], band["+1"], color=GREEN, lw=0, label="68% expected")
    ax.plot(mass, band["median"], "k--", lw=2, label="Median expected")
    if not table["blinded"]:
        observed = np.array([p["xsec_observed"] for p in points], dtype=float)
        ax.plot(mass, observed, "k-", marker="o", lw=2, label="Observed")
    xsec = np.array([p["xsec"] for p in points])
    ax.plot(mass, xsec, color="#e42536", lw=2, label=rf"$\sigma$({label})")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(rf"{cl}% CL upper limit on $\sigma$ [pb]")
    if len(mass) > 1:
        ax.set_xlim(mass.min(), mass.max())
    else:  # one point: drawn over a short span around it
        ax.set_xlim(0.9 * mass[0], 1.1 * mass[0])
    if len(mass):
        low = min(band["-2"].min(), xsec.min())
        high = max(band["+2"].max(), xsec.max())
        ax.set_ylim(low / 2, high * (2 * high / low) ** 0.9)  # the legend above the curves
    handles, labels = ax.get_legend_handles_labels()
    order = ["Observed", "Median expected", "68% expected", "95% expected"]  # CMS's order
    rank = {name: i for i, name in enumerate(order)}
    ranked = sorted(zip(handles, labels, strict=True), key=lambda hl: rank.get(hl[1], len(rank)))
    title = f"{cl}% CL upper limits" + (" (blinded)" if table["blinded"] else "")
    ax.legend(*zip(*ranked, strict=True), loc="upper right", title=title, ncols=2,
              fontsize="small", title_fontsize="small")  # fmt: skip
    return fig
