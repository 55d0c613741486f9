"""Commands that write or show a run's outputs: cutflow, plot, shapes, fit, search, summary,
hepdata, status, provenance."""

from __future__ import annotations

import argparse
import json
from typing import Any

from brewflow.cli._common import command, job, positive, results


def _cutflow(args: argparse.Namespace) -> None:
    from brewflow.outputs import tables

    def write(view: Any) -> None:
        tables.write_tables(results(args.processes), results(args.datasets), args.region,
                            args.output_stem, config=view, era=args.era)  # fmt: skip

    if not args.config:
        write(None)
        return
    with job(args.config, "cutflow", region=args.region, era=args.era) as view:
        write(view)


def _plot(args: argparse.Namespace) -> None:
    from brewflow.outputs import region_plots

    params = {"region": args.region, "histogram": args.histogram, "era": args.era}
    with job(args.config, "plot", **params) as view:
        region_plots.plot_region(view, results(args.inputs), args.region, args.output_dir,
                          histogram=args.histogram, era=args.era)  # fmt: skip


def _shapes(args: argparse.Namespace) -> None:
    from brewflow.outputs import fit_inputs

    outputs = (args.output_root, args.output_card, args.output_pyhf)
    with job(args.config, "shapes", histogram=args.histogram) as view:
        fit_inputs.write_fit_inputs(view, results(args.inputs), args.histogram, *outputs)


def _fit(args: argparse.Namespace) -> None:
    from brewflow.outputs import fit

    with job(args.config, "fit", histogram=args.histogram) as view:
        fit.fit_job(view, args.histogram, args.workspace, args.output_dir)


def _search(args: argparse.Namespace) -> None:
    from brewflow.outputs import search

    with job(args.config, "search", search=args.search) as view:
        search.search_job(view, args.search, results(args.inputs), args.output_dir)


def _summary(args: argparse.Namespace) -> None:
    from brewflow.outputs import summary

    with job(args.config, "summary") as view:
        summary.write_summary(view, results(args.inputs), args.results, args.output_dir)


def _hepdata(args: argparse.Namespace) -> None:
    from brewflow.outputs import hepdata

    with job(args.config, "hepdata") as view:
        hepdata.write_record(view, args.output_dir, args.archive)


def _status(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from brewflow.outputs import status

    entries = status.collect(args.results)
    if args.json:
        print(json.dumps(entries, indent=1))
        return
    table = Table(title=f"event ledger of {args.results}/")
    for column in ("dataset", "state", "files read", "chunks read/skipped", "events read",
                   "fraction read"):  # fmt: skip
        table.add_column(column)
    for e in entries:
        files, chunks = e.get("files"), e.get("chunks")
        table.add_row(
            e["dataset"],
            e["state"],
            f"{files['read']}/{files['expected']}" if files else "",
            f"{chunks['read']}/{chunks['skipped']}" if chunks else "",
            f"{e['events']['read']}/{e['events']['expected']}",
            f"{100 * e['fraction']:.1f}%" if "fraction" in e else "",
        )
    console = Console(width=args.width)
    console.print(table)
    for e in entries:
        if "advice" in e:
            console.print(f"{e['dataset']}: {e['advice']}")
        for s in e["skipped"]:
            span = "" if s["start"] is None else f" entries [{s['start']}, {s['stop']})"
            console.print(f"{e['dataset']}: skipped {s['path']}{span}: {s['reason']}")


def _provenance(args: argparse.Namespace) -> None:
    from brewflow.results import provenance

    print(json.dumps(provenance.read_checked(args.file), indent=1, sort_keys=True))


def register(sub: Any) -> None:
    """Add the commands of this group to the ``brewflow`` parser."""
    p = command(sub, "cutflow", _cutflow, "cutflow tables of one region (CSV, Markdown, LaTeX)")
    p.add_argument("--region", required=True)
    p.add_argument("--processes", nargs="+", required=True, help="stacked process results")
    p.add_argument("--datasets", nargs="+", required=True, help="scaled dataset results")
    p.add_argument("--output-stem", required=True)
    p.add_argument("--config", help="the config (blinded regions and windows, era labels)")
    p.add_argument("--era", help="the tables of this era (default: all eras)")
    p = command(sub, "plot", _plot, "data/MC plots of every histogram in one region")
    p.add_argument("--config", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--histogram", help="only this histogram (default: all in the region)")
    p.add_argument("--inputs", nargs="+", required=True, help="stacked process results")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--era", help="the plots of this era (default: all eras)")
    p = command(sub, "shapes", _shapes, "combine shapes file (ROOT) and datacard of one histogram")
    p.add_argument("--config", required=True)
    p.add_argument("--histogram", required=True)
    p.add_argument("--inputs", nargs="+", required=True, help="stacked process results")
    p.add_argument("--output-root", required=True)
    p.add_argument("--output-card", required=True)
    p.add_argument("--output-pyhf", help="also a pyhf JSON workspace")
    p = command(sub, "fit", _fit, "maximum-likelihood fit of a workspace: table, pulls, impacts")
    p.add_argument("--config", required=True)
    p.add_argument("--histogram", required=True, help="the fitted histogram (plot labels)")
    p.add_argument("--workspace", required=True, help="its pyhf JSON workspace (brewflow shapes)")
    p.add_argument("--output-dir", required=True)
    p = command(sub, "search", _search, "a search: limits per mass point and the Brazil plot")
    p.add_argument("--config", required=True)
    p.add_argument("--search", required=True, help="its name (config key searches.<name>)")
    p.add_argument("--inputs", nargs="+", required=True, help="stacked process results")
    p.add_argument("--output-dir", required=True)
    p = command(sub, "summary", _summary, "ledger, systematics and provenance pages for the report")
    p.add_argument("--config", required=True)
    p.add_argument("--inputs", nargs="+", required=True, help="stacked process results")
    p.add_argument("--results", default="results", help="the results folder (for the ledger)")
    p.add_argument("--output-dir", required=True)
    p = command(sub, "hepdata", _hepdata, "the HEPData record of a run's figures and tables")
    p.add_argument("--config", required=True)
    p.add_argument("--output-dir", required=True, help="the record's folder (results/hepdata)")
    p.add_argument("--archive", help="also the upload archive (results/hepdata.tar.gz)")
    p = command(sub, "status", _status, "the event ledger: what was read, skipped and why")
    p.add_argument("results", nargs="?", default="results", help="a results folder")
    p.add_argument("--json", action="store_true", help="print the ledger as JSON")
    p.add_argument("--width", type=positive(int), default=140, help="table width in characters")
    p = command(sub, "provenance", _provenance, "what made an output: versions, config, inputs")
    p.add_argument("file", help="a result JSON, plot, table, shapes file or datacard")
