"""The fit's results as text: ``fit.md`` (Markdown) and ``fit.tex`` (LaTeX) of the table
:func:`brewflow.outputs.likelihood.fit_workspace` makes and :func:`brewflow.outputs.fit.fit_job`
completes (the data per channel, blinded where they must not show): the headline numbers,
why the observed and expected limits differ (in words, from this fit's numbers), pre- and
post-fit yields per channel, impacts, pulls and correlations. A number that rounds to zero
is printed without a sign ("0.000", never "-0.000").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from tabulate import tabulate

__all__ = ["latex", "limit_explanation", "markdown", "number", "value_error"]

_MD = {"mu": "μ", "muhat": "μ̂", "sigma": "σ", "pm": "±", "pct": "%", "minus": "−",
       "approx": "≈", "nll": "−2 Δln L"}  # fmt: skip
_TEX = {"mu": r"$\mu$", "muhat": r"$\hat{\mu}$", "sigma": r"$\sigma$", "pm": r"$\pm$",
        "pct": r"\%", "minus": "$-$", "approx": r"$\approx$",
        "nll": r"$-2\,\Delta\ln L$"}  # fmt: skip


def number(value: float, form: str) -> str:
    """``value`` in the format ``form``; one that rounds to zero without a sign ("0.000" for
    -0.0001 and "+.3f")."""
    text = format(value, form)
    if float(text) == 0:
        text = format(0.0, form.replace("+", "").replace("-", ""))
    return text


def value_error(value: float, error: float) -> str:
    """``value ± error`` with the error to two significant digits and the value to the same
    decimal place (the PDG's rounding, without its 354 rule)."""
    if error == 0:
        return f"{number(value, '.2f')} ± 0"
    if not (error > 0 and math.isfinite(error)):
        return number(value, ".4g")
    decimals = min(max(1 - math.floor(math.log10(error)), 0), 8)
    return f"{number(value, f'.{decimals}f')} ± {number(error, f'.{decimals}f')}"


def _count(value: float) -> str:
    """An observed count: an integer as one, else two decimals (a weighted Asimov)."""
    return number(value, ".0f" if float(value).is_integer() else ".2f")


def _failed_or(value: float | None, form: str, failed: bool, unit: str = "") -> str:
    if value is None:
        return "failed (see the warnings)" if failed else "undefined"
    return number(value, form) + unit


def _interval(table: Mapping[str, Any], index: int, sym: Mapping[str, str]) -> str:
    """The likelihood scan's interval ``index`` (0: 68%, 1: 95%) as ``[low, high]``, an end
    the signal strength's bound cuts marked."""
    scan = table["likelihood_scan"]
    if scan.get("failed"):
        return "failed (see the warnings)"
    interval, bounds = scan["intervals"][index], scan["bounds"]
    low = number(bounds[0], ".3g") + " (bound)" if interval["low"] is None else number(
        interval["low"], ".3f")  # fmt: skip
    high = number(bounds[1], ".3g") + " (bound)" if interval["high"] is None else number(
        interval["high"], ".3f")  # fmt: skip
    text = f"[{low}, {high}]"
    if index == 0 and interval["low"] is not None and interval["high"] is not None:
        up, down = interval["high"] - table["mu"], interval["low"] - table["mu"]
        text += f" ({sym['muhat']} {number(up, '+.3f')} {number(down, '+.3f')})"
    return text


def _summary_rows(table: Mapping[str, Any], sym: Mapping[str, str]) -> list[tuple[str, str]]:
    """(label, value) of the headline numbers."""
    limit, z = table["upper_limit"], table["significance"]
    cl = f"{100 * (1 - limit['level']):g}{sym['pct']}"
    exp = limit["expected"]
    z_failed, limit_failed = bool(z.get("failed")), bool(limit.get("failed"))
    sigma = " " + sym["sigma"]
    rows = [
        (f"signal strength {sym['mu']} (best fit {sym['pm']} HESSE)",
         f"{number(table['mu'], '.4f')} {sym['pm']} {number(table['mu_error'], '.4f')}"),
        (f"68.3{sym['pct']} CL interval (likelihood scan, {sym['nll']} = 1)",
         _interval(table, 0, sym)),
        (f"95{sym['pct']} CL interval (likelihood scan, {sym['nll']} = 3.84)",
         _interval(table, 1, sym)),
        ("observed significance", _failed_or(z["observed"], ".2f", z_failed, sigma)),
        (f"expected significance ({sym['mu']} = 1)",
         _failed_or(z["expected"], ".2f", z_failed, sigma)),
        (f"observed CLs upper limit ({cl} CL)", _failed_or(limit["observed"], ".3f", limit_failed)),
        (f"expected upper limit (median [{sym['minus']}1{sym['sigma']}, +1{sym['sigma']}])",
         _failed_or(None, "", limit_failed) if exp is None else
         f"{number(exp[0], '.3f')} [{number(exp[2], '.3f')}, {number(exp[3], '.3f')}]"),
    ]  # fmt: skip
    rows += [(f"free normalisation {n['name']} (best fit {sym['pm']} HESSE)",
              f"{number(n['value'], '.4f')} {sym['pm']} {number(n['error'], '.4f')}")
             for n in table.get("normalisations", [])]  # fmt: skip
    return rows


def _data_text(table: Mapping[str, Any]) -> str:
    """What the fitted observations are: data, or the Asimov dataset (where, and why)."""
    blinded = table["blinded_channels"]
    where = [*blinded, *(f"{_bins(bins)} of {name}"
                         for name, bins in table.get("blinded_bins", {}).items())]  # fmt: skip
    return table["data"] + (f" (Asimov in {'; '.join(where)})" if where else "")


def _bins(bins: Sequence[int]) -> str:
    """``bin 1`` or ``bins 1, 2``."""
    return ("bin " if len(bins) == 1 else "bins ") + ", ".join(map(str, bins))


def _position(observed: float, expected: Sequence[float], sym: Mapping[str, str]) -> str:
    """Where ``observed`` lies in the expected band (``expected``: median, -2, -1, +1, +2
    sigma), in words."""
    median, m2, m1, p1, p2 = expected
    s, minus = sym["sigma"], sym["minus"]
    if observed > p2:
        return f"above the expected band's +2{s} edge ({number(p2, '.3f')})"
    if observed < m2:
        return f"below the expected band's {minus}2{s} edge ({number(m2, '.3f')})"
    edges, at = [m2, m1, median, p1, p2], [-2.0, -1.0, 0.0, 1.0, 2.0]
    n = float(np.interp(observed, edges, at))
    where = "inside the ±1" if abs(n) <= 1 else "between the 1 and 2"
    return (f"{where}{s} band of the expected limit ({number(n, '+.1f')}{s} of the "
            "background-only outcomes)")  # fmt: skip


def limit_explanation(table: Mapping[str, Any], sym: Mapping[str, str] = _MD) -> str:
    """Why this fit's observed CLs limit differs from its expected one, in words from its
    numbers: what each is computed on, where the observed one lies in the expected band,
    and what in the data (the measured signal strength) puts it there."""
    limit = table["upper_limit"]
    observed, expected = limit["observed"], limit["expected"]
    if observed is None or expected is None:
        if table["no_background"]:
            return ("No limit exists: the background-only model expects no event in "
                    + ", ".join(table["no_background"]) + ".")  # fmt: skip
        return "No limit: its fits failed (see the warnings)."
    f3 = lambda x: number(x, ".3f")  # noqa: E731
    mu, err, z = table["mu"], table["mu_error"], table["significance"]["observed"]
    median, m2, m1, p1, p2 = expected
    pct, s, muhat = sym["pct"], sym["sigma"], sym["muhat"]
    text = (
        f"The expected limit, {f3(median)}, is the median limit of experiments without "
        f"signal: it is computed on the background-only Asimov dataset ({sym['mu']} = 0, "
        f"nuisances at their fit to the data at {sym['mu']} = 0), and 68{pct} of "
        f"background-only outcomes would give a limit in [{f3(m1)}, {f3(p1)}], 95{pct} in "
        f"[{f3(m2)}, {f3(p2)}]. "
    )
    if table["data"] == "asimov":
        text += (f"The observed limit, {f3(observed)}, is computed on the Asimov dataset of "
                 f"{sym['mu']} = 1 (the fit's asimov setting), not on data: it is the limit "
                 "a signal of the predicted size would give. ")  # fmt: skip
    else:
        text += f"The observed limit, {f3(observed)}, is computed on the data"
        if table["blinded_channels"] or table.get("blinded_bins"):
            text += (" (in the blinded channels and bins, the Asimov dataset of the nominal "
                     f"prediction, {sym['mu']} = 1)")  # fmt: skip
        text += ". "
    ratio = observed / median if median > 0 else math.inf
    text += (f"It is {number(ratio, '.2f')} times the expected median, "
             f"{_position(observed, expected, sym)}. ")  # fmt: skip
    pull = mu / err if err > 0 else 0.0
    measured = f"{muhat} = {f3(mu)} {sym['pm']} {f3(err)}"
    k = float(stats.norm.isf(limit["level"]))
    if pull >= 1:
        text += (f"The reason is the signal the data hold: the fit measures {measured}, "
                 f"{number(pull, '.1f')} times its uncertainty above 0")  # fmt: skip
        text += f" (observed significance {number(z, '.2f')} {s}). " if z is not None else ". "
        if pull >= 2:
            text += (f"A limit on a signal that is present lies near {muhat} + "
                     f"{number(k, '.2f')} {s}({muhat}) {sym['approx']} {f3(mu + k * err)} (where "
                     f"CLs+b = {number(limit['level'], 'g')} once CLb {sym['approx']} 1), not near "
                     "the background-only median. ")  # fmt: skip
        else:
            text += "An upper limit moves up with the measured signal strength. "
        if z is not None and z >= 3:
            text += (f"With an excess of {number(z, '.1f')} {s} the measured signal strength, "
                     "not the limit, is the result.")  # fmt: skip
    elif pull <= -1 or (observed < m1 and mu <= 1e-6 * max(err, 1.0)):
        text += (f"The reason is a deficit: the data hold fewer events than the background "
                 f"predicts where the signal would be ({measured}), so signal strengths "
                 "below the median expectation are excluded. CLs divides by CLb, which keeps "
                 "a deficit from excluding signals the analysis cannot see.")  # fmt: skip
    else:
        text += (f"The data agree with the background-only hypothesis within one standard "
                 f"deviation ({measured}): the limits differ by the data's fluctuation "
                 "around the background prediction.")  # fmt: skip
    return text.strip()


def _label(name: str, signal: Sequence[str]) -> str:
    return f"{name} (signal)" if name in signal else name


def _yield_rows(
    table: Mapping[str, Any], channel: str, sym: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """(process, pre-fit, post-fit) of a channel: each sample, the total background, the
    total, and the data ("blinded" where they must not show)."""
    yields = table["yields"][channel]
    samples = [n for n in yields["prefit"] if n not in ("background", "total")]

    def cell(stage: str, row: str) -> str:
        entry = yields[stage][row]
        return value_error(entry["sum"], entry["error"]).replace("±", sym["pm"])

    rows = [(_label(n, table["signal"]), cell("prefit", n), cell("postfit", n)) for n in samples]
    totals = (("background", "total background"), ("total", "total (signal + background)"))
    for row, label in totals:
        rows.append((label, cell("prefit", row), cell("postfit", row)))
    data = yields.get("data", {})
    if data.get("blinded") == "channel":
        text = "blinded"
    elif data.get("blinded"):
        text = f"blinded ({_bins(data['blinded'])})"
    elif data.get("sum") is None:
        text = "none"
    else:
        text = _count(data["sum"]) + (" (Asimov)" if data.get("asimov") else "")
    rows.append(("data", text, text))
    return rows


_YIELDS_NOTE = (
    "Pre-fit: every nuisance at its nominal value, {mu} = 1, uncertainties from the "
    "constraints; post-fit: the best fit, uncertainties from its covariance (correlations "
    "included). Sums over the channel's bins."
)


def markdown(table: Mapping[str, Any]) -> str:
    """``fit.md``: the headline numbers, why the limits differ, yields per channel, impacts,
    pulls and correlations."""
    sym = _MD
    rows = [list(r) for r in _summary_rows(table, sym)]
    rows.append(["data", _data_text(table)])
    text = "# Fit results\n\n"
    text += "".join(f"> **Warning:** {warning}\n>\n" for warning in table.get("warnings", ()))
    text += "\n" if table.get("warnings") else ""
    text += tabulate(rows, headers=["", ""], tablefmt="github") + "\n"
    if table["no_background"]:
        text += ("\nNo background is expected in " + ", ".join(table["no_background"])
                 + ": the background-only hypothesis has zero likelihood there, so no "
                 "significance or limit exists.\n")  # fmt: skip
    text += "\n## Observed and expected limits\n\n" + limit_explanation(table, sym) + "\n"
    text += "\n## Yields\n\n" + _YIELDS_NOTE.format(mu=sym["mu"]) + "\n"
    for channel in table["channels"]:
        text += f"\n### {channel}\n\n" + tabulate(
            _yield_rows(table, channel, sym), headers=["process", "pre-fit", "post-fit"],
            tablefmt="github", disable_numparse=True,
        ) + "\n"  # fmt: skip
    if table["impacts"]:
        text += "\n## Impacts\n\n" + _impacts_text(table) + "\n"
    text += "\n## Pulls\n\n" + _pulls_text(table) + "\n"
    text += "\n## Correlations\n\n" + _correlations_text(table) + "\n"
    return text


def _shift(value: float | None) -> str:
    return "failed" if value is None else number(value, "+.4f")


def _impacts_text(table: Mapping[str, Any]) -> str:
    """The impacts, largest first, with each nuisance's pull (combine's columns)."""
    pulls = {p["name"]: p for p in table["pulls"]}
    rows = [
        [r["name"], f"{number(pulls[r['name']]['pull'], '+.3f')} ± "
         f"{number(pulls[r['name']]['constraint'], '.3f')}", _shift(r["postfit_up"]),
         _shift(r["postfit_down"]), _shift(r["prefit_up"]), _shift(r["prefit_down"])]
        for r in table["impacts"]
    ]  # fmt: skip
    headers = ["nuisance", "pull", "Δμ post-fit +", "Δμ post-fit −", "Δμ pre-fit +",
               "Δμ pre-fit −"]  # fmt: skip
    intro = ("The change of μ̂ with the nuisance held at its best fit ± its post-fit (pre-fit) "
             "uncertainty and the rest refitted, largest first (impacts.png).")  # fmt: skip
    return intro + "\n\n" + tabulate(rows, headers=headers, tablefmt="github",
                                     disable_numparse=True)  # fmt: skip


def _pulls_text(table: Mapping[str, Any]) -> str:
    """The signal strength, then the pulls, largest first (pulls.png)."""
    rows = [[f"μ ({table['poi']}, free)", f"{number(table['mu'], '.3f')} (best fit)",
             f"{number(table['mu_error'], '.3f')} (its error)"]]  # fmt: skip
    rows += [[p["name"], number(p["pull"], "+.3f"), number(p["constraint"], ".3f")]
             for p in table["pulls"]]  # fmt: skip
    return ("(θ̂ − θ₀)/σ₀ and the post-fit constraint σ̂/σ₀ of each nuisance, the largest "
            "pull first (pulls.png).\n\n"
            + tabulate(rows, headers=["parameter", "pull", "constraint"], tablefmt="github",
                       disable_numparse=True))  # fmt: skip


def _correlations_text(table: Mapping[str, Any]) -> str:
    """The correlated pairs of the pruned matrix (correlations.png), largest first."""
    corr = table["correlations"]
    names, matrix = corr["names"], np.asarray(corr["matrix"])
    upper = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    correlated = [(i, j) for i, j in upper if abs(matrix[i, j]) >= corr["threshold"]]
    pairs = sorted(((names[i], names[j], matrix[i, j]) for i, j in correlated),
                   key=lambda p: -abs(p[2]))  # fmt: skip
    text = (f"Parameter pairs with |ρ| ≥ {number(corr['threshold'], 'g')} at the best fit "
            f"(correlations.png shows them; {corr['pruned']} parameters without such a "
            "correlation left out).")  # fmt: skip
    if not pairs:
        return text + " None."
    rows = [[a, b, number(rho, "+.3f")] for a, b, rho in pairs]
    return text + "\n\n" + tabulate(rows, headers=["parameter", "parameter", "ρ"],
                                    tablefmt="github", disable_numparse=True)  # fmt: skip


def _latex_text(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
               "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
               "^": r"\textasciicircum{}"}  # fmt: skip
    return "".join(special.get(c, c) for c in text)


def _tex_table(
    caption: str, header: Sequence[str] | None, rows: Sequence[Sequence[str]]
) -> list[str]:
    """A booktabs table (``header`` None: none), first column left, the others right."""
    columns = "l" + "r" * (len(rows[0]) - 1)
    top = [" & ".join(header) + r" \\", r"\midrule"] if header else []
    return [r"\begin{table}", r"\centering", rf"\caption{{{caption}}}",
            rf"\begin{{tabular}}{{{columns}}}", r"\toprule", *top,
            *(" & ".join(r) + r" \\" for r in rows), r"\bottomrule", r"\end{tabular}",
            r"\end{table}"]  # fmt: skip


def latex(table: Mapping[str, Any]) -> str:
    """``fit.tex``: the headline numbers, why the limits differ, and the yields per
    channel."""
    sym = _TEX
    warnings = [rf"\par\noindent\textbf{{Warning:}} {_latex_text(w)}\par"
                for w in table.get("warnings", ())]  # fmt: skip
    summary = [(_tex_label(label), _tex_label(value)) for label, value in _summary_rows(table, sym)]
    summary.append(("data", _latex_text(_data_text(table))))
    lines = [*warnings, *_tex_table("Fit results", None, summary)]
    lines += ["", r"\paragraph{Observed and expected limits}",
              _tex_label(limit_explanation(table, sym)), ""]  # fmt: skip
    for channel in table["channels"]:
        rows = [(_latex_text(p), a, b) for p, a, b in _yield_rows(table, channel, sym)]
        caption = (f"Pre- and post-fit yields, {_latex_text(channel)}. "
                   + _YIELDS_NOTE.format(mu=sym["mu"]))  # fmt: skip
        lines += _tex_table(caption, ["Process", "Pre-fit", "Post-fit"], rows)
    return "\n".join(lines) + "\n"


def _tex_label(text: str) -> str:
    """Text with TeX symbols already in it (``$...$``, ``\\%``): the Markdown-only characters
    left (Unicode) turned into TeX."""
    return (text.replace("Δ", r"$\Delta$").replace("±", r"$\pm$").replace("σ", r"$\sigma$")
            .replace("μ̂", r"$\hat{\mu}$").replace("μ", r"$\mu$"))  # fmt: skip
