"""Commands that check and explore: validate, inspect, adl, cluster."""

from __future__ import annotations

import argparse
from typing import Any

from brewflow import forked
from brewflow.cli._common import command, config, positive


def _validate(args: argparse.Namespace) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from brewflow.config import applicable_systematics, systematics_for
    from brewflow.jobs.validation import check_analysis, check_payloads

    settings = config(args.config)
    check_payloads(settings)
    check_analysis(settings, record=None)  # the analysis on a typetracer: cuts, variables
    table = Table(title=escape(f"{args.config}: valid"), box=box.SIMPLE_HEAD, pad_edge=False)
    eras = bool(settings.get("eras"))
    columns = ("dataset", *(["era"] if eras else []), "process", "type", "files", "xsec [pb]",
               "systematics", "variations")  # fmt: skip
    for column in columns:
        table.add_column(escape(column))  # "[pb]" is no markup tag
    for name, d in settings["datasets"].items():
        table.add_row(
            name,
            *([d["era"]] if eras else []),
            d.get("process", name),
            "data" if d["is_data"] else "MC",
            str(len(d["files"])),
            "" if d["is_data"] else f"{d['xsec']:g}",
            str(len(applicable_systematics(settings, name))),  # each: an up and a down
            str(len(systematics_for(settings, name))),  # with the nominal
        )
    table.caption = "variations: the nominal and an up and a down per systematic"
    console = Console()
    if not console.is_terminal:  # a file or a pipe: the whole table, no cell cut short
        wide = console.options.update_width(10_000)
        console = Console(width=max(console.width, console.measure(table, options=wide).maximum))
    console.print(table)


def _inspect(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from brewflow.errors import ConfigError

    if args.adl:
        from brewflow import adl

        reports = [adl.inspect(args.adl, queries=args.query)]
    elif args.config:
        from brewflow.jobs import inspection

        reports = inspection.inspect_config(config(args.config), args.dataset)
    else:
        raise ConfigError("give a CONFIG, or --adl FILE ... for the ADL queries")
    table = Table(title="columns read and task-graph layers (no event data read)")
    for column in ("dataset", "tree", "files", "layers before", "layers after", "columns"):
        table.add_column(column, overflow="fold")
    for r in reports:
        table.add_row(
            r["dataset"],
            r["tree"],
            str(r["files"]),
            str(r["layers_before"]),
            str(r["layers_after"]),
            f"{len(r['columns'])}: " + " ".join(r["columns"]),
        )
    Console(width=args.width).print(table)


def _adl(args: argparse.Namespace) -> None:
    from brewflow import adl

    adl.run_files(args.files, args.output, tree=args.tree, step_size=args.step_size,
                  scheduler=args.scheduler, workers=args.workers)  # fmt: skip


def _cluster(args: argparse.Namespace) -> None:
    from brewflow.jobs import clusters

    spec = clusters.ClusterSpec(
        kind=args.kind,
        jobs=args.jobs,
        cores=args.cores,
        processes=args.processes,
        memory=args.memory,
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        host=args.host,
        directives=args.directive,
        skip_directives=args.skip_directive,
    )
    if args.dry_run:
        print(clusters.job_script(spec))
    else:
        clusters.serve(spec, args.address_file)


def register(sub: Any) -> None:
    """Add the commands of this group to the ``brewflow`` parser."""
    p = command(sub, "adl", _adl, "the ADL benchmark queries Q1-Q8 in one pass, as JSON")
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="NanoAOD files or globs; root:// or http(s):// URLs (globs on XRootD)",
    )
    p.add_argument("-o", "--output", required=True, help="the JSON file to write")
    p.add_argument("--tree", default="Events")
    p.add_argument("--step-size", type=positive(int), default=100_000, help="events per partition")
    p.add_argument(
        "--scheduler",
        choices=["threads", "processes", "sync"],
        default="processes" if forked.available() else "threads",
        help="processes (the default where processes can be forked): whole partitions in "
        "worker processes forked once the graph is optimized, only histograms sent back "
        "(awkward's Python overhead holds the GIL: threads scale poorly); threads: dask's "
        "threads; sync: one thread, for debugging",
    )
    p.add_argument("--workers", type=positive(int), help="threads or processes (default: cores)")
    p = command(
        sub, "inspect", _inspect, "columns an analysis reads and its graph size, no data read"
    )
    p.add_argument("config", nargs="?", help="an analysis config")
    p.add_argument("--dataset", help="only this dataset")
    p.add_argument("--adl", nargs="+", metavar="FILE", help="inspect the ADL queries on FILEs")
    p.add_argument("--query", nargs="+", help="only these ADL queries (e.g. q8)")
    p.add_argument("--width", type=positive(int), default=140, help="table width in characters")
    p = command(sub, "cluster", _cluster, "serve one dask cluster (local, Slurm or HTCondor jobs)")
    p.add_argument("kind", choices=["local", "slurm", "htcondor"])
    p.add_argument(
        "--jobs", type=positive(int), default=1, help="batch jobs of workers (local: workers)"
    )
    p.add_argument("--cores", type=positive(int), default=1, help="cores per job")
    p.add_argument("--processes", type=positive(int), default=1, help="worker processes per job")
    p.add_argument("--memory", default="2GB", help="memory per job")
    p.add_argument("--walltime", default="01:00:00", help="HH:MM:SS per job")
    p.add_argument("--queue", help="Slurm partition")
    p.add_argument("--account", help="Slurm account")
    p.add_argument("--host", help="scheduler host/interface the workers can reach")
    p.add_argument(
        "--directive", action="append", default=[], help="extra job directive (repeatable)"
    )
    p.add_argument(
        "--skip-directive", action="append", default=[], help="drop a default directive, e.g. --mem"
    )
    p.add_argument("--address-file", default=".brewflow/scheduler", help="scheduler address")
    p.add_argument("--dry-run", action="store_true", help="print the job script and exit")
    p = command(sub, "validate", _validate, "check a config and list its datasets")
    p.add_argument("config")
