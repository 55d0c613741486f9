"""The ``brewflow`` command line: one subcommand per workflow stage (each rule calls one)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brewflow import __version__

__all__ = ["main"]

log = logging.getLogger("brewflow")


def _generate(args: argparse.Namespace) -> None:
    from brewflow.config import load_config
    from brewflow.demo_payloads import write_demo_corrections
    from brewflow.generate import generate_data, generate_mc

    config = load_config(args.config)
    settings = config.get("generate", {"events": 40000, "seed": 42})
    if settings.get("corrections"):
        write_demo_corrections(settings["corrections"])
    events = args.events or settings["events"]
    seed = settings["seed"] if args.seed is None else args.seed
    for name, dataset in config["datasets"].items():
        model = dataset.get("generator")
        if model is None or (args.datasets and name not in args.datasets):
            continue
        if model == "data":
            n = generate_data(
                dataset["files"],
                config["luminosity"],
                seed=seed,
                lumi_mask=dataset.get("lumi_mask"),
            )
        else:
            n = generate_mc(model, dataset["files"], events, seed=seed)
        log.info("generated %s (%s): %d events in %d files", name, model, n, len(dataset["files"]))
    if settings.get("bdt"):
        from brewflow.demo import train_demo_bdt

        n = train_demo_bdt(config, seed=seed)
        log.info("trained the demo BDT on %d events -> %s", n, settings["bdt"])


def _preprocess(args: argparse.Namespace) -> None:
    from brewflow import preprocess
    from brewflow.config import load_config

    config = load_config(args.config)
    inventory = preprocess.preprocess(
        config, _dataset(config, args.dataset), cache=preprocess.CACHE
    )
    preprocess.save(inventory, args.output)


def _dataset(config: dict, name: str) -> str:
    from brewflow.config import ConfigError

    if name not in config["datasets"]:
        raise ConfigError(f"unknown dataset {name!r}; config has: {', '.join(config['datasets'])}")
    return name


def _analyze(args: argparse.Namespace) -> None:
    from brewflow import preprocess, provenance, results, runner
    from brewflow.config import ConfigError, load_config, payload_files

    config = load_config(args.config)
    dataset = _dataset(config, args.dataset)
    inventory = preprocess.load(args.preprocess)
    if args.all_systematics:
        systematics = runner.systematics_for(config, dataset)
    else:
        systematics = args.systematic or ["nominal"]
    files = inventory["files"]
    if args.group is not None:
        groups = preprocess.groups(files, config["events_per_job"])
        if not 0 <= args.group < len(groups):
            raise ConfigError(
                f"dataset {dataset!r} has {len(groups)} chunk group(s) of "
                f"events_per_job={config['events_per_job']}; no group {args.group}"
            )
        files = groups[args.group]
    result = runner.run(
        config,
        dataset,
        systematics,
        files,
        scheduler=args.scheduler,
        workers=args.threads,
        progress_interval=args.progress_interval,
    )
    if args.group is not None:
        result.meta["group"] = [args.group, len(groups)]
    result.meta["provenance"] = provenance.record(
        config=config, inputs=files, payloads=payload_files(config, dataset)
    )
    if args.output:
        results.save(result, args.output)
    else:
        results.save_split(result, args.outdir)


def _split(args: argparse.Namespace) -> None:
    from brewflow import results
    from brewflow.config import ConfigError

    result = results.load(args.input)
    unknown = [s for s in args.systematic if s not in result.systematics]
    if unknown:
        raise ConfigError(f"{args.input} has no systematic {unknown}; it has {result.systematics}")
    results.save_split(result, args.outdir, args.systematic)


def _merge(args: argparse.Namespace) -> None:
    from brewflow import preprocess, provenance, results
    from brewflow.inputs import InputError

    try:
        loaded = {path: results.load(path) for path in args.inputs}
        by_systematics: dict[tuple[str, ...], list[str]] = {}
        for path, result in loaded.items():
            by_systematics.setdefault(tuple(result.systematics), []).append(path)
        parts = [  # chunk groups of one systematic add up; then the systematics side by side
            results.add_chunks([loaded[p] for p in paths], paths)
            if len(paths) > 1
            else loaded[paths[0]]
            for paths in by_systematics.values()
        ]
        merged = results.merge_systematics(parts)
        inventory = preprocess.load(args.preprocess) if args.preprocess else None
        if inventory is not None:
            books = [results.ledger(part, inventory) for part in parts]
            for part, book in zip(parts[1:], books[1:], strict=True):
                if book["skipped"] != books[0]["skipped"]:
                    raise ValueError(
                        f"systematics {part.systematics} and {parts[0].systematics} skipped "
                        "different chunks (a transient read error?); rerun the analyze jobs"
                    )
            merged.meta["ledger"] = books[0]
    except ValueError as err:
        raise InputError(f"merge of {len(args.inputs)} result(s): {err}") from None
    if inventory is not None and not inventory["is_data"] and books[0]["complete"]:
        merged.meta["sumw"] = inventory["sumw"]
    merged.meta["provenance"] = provenance.of(loaded.values())
    results.save(merged, args.output)


def _scale(args: argparse.Namespace) -> None:
    from brewflow import preprocess, provenance, results
    from brewflow.config import load_config
    from brewflow.inputs import InputError

    config = load_config(args.config)
    result = results.load(args.input)
    name = _dataset(config, result.dataset)
    spec = config["datasets"][name]
    book = result.meta.get("ledger")
    meta: dict[str, Any] = {"provenance": provenance.of([result], config=config)}
    sumw = None if spec["is_data"] else preprocess.load(args.preprocess)["sumw"]
    if book is not None and not book["complete"]:
        if not spec["allow_partial"]:
            raise InputError(
                f"dataset {name!r} is incomplete ({results.describe(book)}): not normalised. "
                "`brewflow status` lists what was skipped and why; fix or remove those files "
                f"and rerun, or set datasets.{name}.allow_partial: true to normalise what was "
                "read"
            )
        meta["fraction"] = book["fraction"]
        sumw = book["sumw"]["read"] if not spec["is_data"] else None
        log.warning("%s: partial (allow_partial): %s", name, results.describe(book))
    if spec["is_data"]:
        scaled = results.scale(result, 1.0, luminosity=config["luminosity"], **meta)
    else:
        factor = spec["xsec"] * config["luminosity"] / sumw if sumw else 0.0
        if not sumw:
            log.warning("%s: no events read; it contributes nothing", name)
        scaled = results.scale(
            result,
            factor,
            xsec=spec["xsec"],
            luminosity=config["luminosity"],
            sumw_total=sumw,
            **meta,
        )
        log.info(
            "%s: xsec %g pb x L %g /pb / sumw %g = %g",
            name,
            spec["xsec"],
            config["luminosity"],
            sumw,
            factor,
        )
    results.save(scaled, args.output)


def _stack(args: argparse.Namespace) -> None:
    from brewflow import provenance, results

    parts = [results.load(p) for p in args.inputs]
    stacked = results.stack(parts, args.process)
    stacked.meta["provenance"] = provenance.of(parts)
    results.save(stacked, args.output)


def _cutflow(args: argparse.Namespace) -> None:
    from brewflow import results, tables

    tables.write_tables(
        [results.load(p) for p in args.processes],
        [results.load(p) for p in args.datasets],
        args.region,
        args.output_stem,
    )


def _plot(args: argparse.Namespace) -> None:
    from brewflow import plots, results
    from brewflow.config import ConfigError, load_config

    config = load_config(args.config)
    stacked = [results.load(p) for p in args.inputs]
    styles: dict[str, dict[str, str]] = {}
    for name, dataset in config["datasets"].items():
        style = styles.setdefault(dataset.get("process", name), {})
        for key in ("label", "color"):
            if key in dataset:
                style.setdefault(key, dataset[key])
    region = config["regions"][args.region]
    for name, definition in config["histograms"].items():
        if args.histogram not in (None, name):
            continue
        if args.region not in (definition.get("regions") or config["regions"]):
            if args.histogram:
                raise ConfigError(f"histogram {name!r} is not filled in region {args.region!r}")
            continue
        plots.data_mc(
            stacked,
            name,
            args.region,
            [Path(args.output_dir) / f"{name}.{ext}" for ext in config["plots"]["formats"]],
            styles=styles,
            luminosity=config["luminosity"],
            energy=config["energy"],
            label=config["plots"]["label"],
            log_y=definition["log"],
            ratio_range=config["plots"]["ratio_range"],
            region_label=region.get("label"),
        )
        if config["plots"]["systematics"]:
            plots.systematics_pdf(
                stacked,
                name,
                args.region,
                Path(args.output_dir) / f"{name}_systematics.pdf",
                luminosity=config["luminosity"],
                energy=config["energy"],
                label=config["plots"]["label"],
                region_label=region.get("label"),
                descriptions={
                    k: v.get("description", "") for k, v in config["systematics"].items()
                },
            )


def _adl(args: argparse.Namespace) -> None:
    import glob
    import json

    from dask.diagnostics import ProgressBar

    from brewflow import adl
    from brewflow.inputs import InputError
    from brewflow.results import atomic_write

    files = []
    for pattern in args.files:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise InputError(f"no file matches {pattern!r}")
        files += matches
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise InputError(f"input file(s) not found: {', '.join(missing)}")
    from brewflow.kinematics import CombinatoricsError

    try:
        with ProgressBar(minimum=5, dt=0.25):
            document = adl.run(
                files,
                tree=args.tree,
                step_size=args.step_size,
                scheduler=args.scheduler,
                workers=args.workers,
            )
    except CombinatoricsError as err:  # raised in a task: the chunk's file is not known there
        where = f"file {files[0]!r}" if len(files) == 1 else f"one of {len(files)} files"
        raise CombinatoricsError(f"{where}: {err}") from None
    atomic_write(args.output, json.dumps(document) + "\n")
    log.info(
        "ADL Q1-Q8 on %d events of %d file(s) -> %s", document["events"], len(files), args.output
    )


def _shapes(args: argparse.Namespace) -> None:
    from brewflow import results, shapes
    from brewflow.config import ConfigError, load_config

    config = load_config(args.config)
    if args.histogram not in config["histograms"]:
        raise ConfigError(f"unknown histogram {args.histogram!r}")
    stacked = [results.load(p) for p in args.inputs]
    definition = config["histograms"][args.histogram]
    regions = list(definition.get("regions") or config["regions"])
    shapes.write_shapes(stacked, args.histogram, regions, args.output_root)
    text = shapes.datacard(stacked, args.histogram, regions, Path(args.output_root).name,
                           config["shapes"]["signal"])  # fmt: skip
    shapes.write_datacard(text, args.output_card)
    if args.output_pyhf:
        workspace = shapes.pyhf_workspace(
            stacked, args.histogram, regions, config["shapes"]["signal"]
        )
        results.atomic_write(args.output_pyhf, json.dumps(workspace, indent=1) + "\n")


def _inspect(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from brewflow import inspect
    from brewflow.config import ConfigError, load_config

    if args.adl:
        reports = [
            {
                "dataset": "ADL " + ",".join(args.query or ["q1-q8"]),
                **inspect.inspect_adl(args.adl, queries=args.query),
            }
        ]
    elif args.config:
        config = load_config(args.config)
        names = [_dataset(config, args.dataset)] if args.dataset else list(config["datasets"])
        reports = [inspect.inspect_dataset(config, name) for name in names]
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


def _cluster(args: argparse.Namespace) -> None:
    from brewflow import clusters

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
        return
    clusters.serve(spec, args.address_file)


def _validate(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from brewflow.config import load_config
    from brewflow.runner import systematics_for
    from brewflow.workflow import check_payloads

    config = load_config(args.config)
    check_payloads(config)
    table = Table(title=f"{args.config}: valid")
    for column in ("dataset", "process", "type", "files", "xsec [pb]", "systematics"):
        table.add_column(column)
    for name, d in config["datasets"].items():
        table.add_row(
            name,
            d.get("process", name),
            "data" if d["is_data"] else "MC",
            str(len(d["files"])),
            "" if d["is_data"] else f"{d['xsec']:g}",
            str(len(systematics_for(config, name))),
        )
    Console().print(table)


def _status(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from brewflow import status

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


def _skim(args: argparse.Namespace) -> None:
    from brewflow import preprocess, skims
    from brewflow.config import ConfigError, load_config

    config = load_config(args.config)
    dataset = _dataset(config, args.dataset)
    if args.skim not in config["skims"]:
        raise ConfigError(f"unknown skim {args.skim!r}; config has: {', '.join(config['skims'])}")
    inventory = preprocess.load(args.preprocess)
    skims.write_skim(config, args.skim, dataset, inventory["files"], args.output_dir,
                     scheduler=args.scheduler, workers=args.threads)  # fmt: skip


def _summary(args: argparse.Namespace) -> None:
    from brewflow import results, summary
    from brewflow.config import load_config

    config = load_config(args.config)
    stacked = [results.load(p) for p in args.inputs]
    summary.write_summary(config, stacked, args.results, args.output_dir)


def _provenance(args: argparse.Namespace) -> None:
    from brewflow import provenance
    from brewflow.inputs import InputError

    try:
        record = provenance.read(args.file)
    except (ValueError, OSError, KeyError) as err:
        raise InputError(f"{args.file}: {err}") from None
    print(json.dumps(record, indent=1, sort_keys=True))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brewflow", description=__doc__)
    parser.add_argument("--version", action="version", version=f"brewflow {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = command("adl", _adl, "the ADL benchmark queries Q1-Q8 in one pass, as JSON")
    p.add_argument("files", nargs="+", metavar="FILE", help="NanoAOD files or globs")
    p.add_argument("--output", required=True, help="the JSON file to write")
    p.add_argument("--tree", default="Events")
    p.add_argument("--step-size", type=int, default=100_000, help="events per partition")
    p.add_argument("--scheduler", choices=["threads", "processes", "sync"], default="threads")
    p.add_argument("--workers", type=int, help="threads or processes (default: cores)")
    p = command("shapes", _shapes, "combine shapes file (ROOT) and datacard of one histogram")
    p.add_argument("--config", required=True)
    p.add_argument("--histogram", required=True)
    p.add_argument("--inputs", nargs="+", required=True, help="stacked process results")
    p.add_argument("--output-root", required=True)
    p.add_argument("--output-card", required=True)
    p.add_argument("--output-pyhf", help="also a pyhf JSON workspace")
    p = command("inspect", _inspect, "columns an analysis reads and its graph size, no data read")
    p.add_argument("config", nargs="?", help="an analysis config")
    p.add_argument("--dataset", help="only this dataset")
    p.add_argument("--adl", nargs="+", metavar="FILE", help="inspect the ADL queries on FILEs")
    p.add_argument("--query", nargs="+", help="only these ADL queries (e.g. q8)")
    p.add_argument("--width", type=int, default=140, help="table width in characters")
    p = command("cluster", _cluster, "serve one dask cluster (local, Slurm or HTCondor jobs)")
    p.add_argument("kind", choices=["local", "slurm", "htcondor"])
    p.add_argument("--jobs", type=int, default=1, help="batch jobs of workers (local: workers)")
    p.add_argument("--cores", type=int, default=1, help="cores per job")
    p.add_argument("--processes", type=int, default=1, help="worker processes per job")
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
    p = command("status", _status, "the event ledger: what was read, skipped and why")
    p.add_argument("results", nargs="?", default="results", help="a results folder")
    p.add_argument("--json", action="store_true", help="print the ledger as JSON")
    p.add_argument("--width", type=int, default=140, help="table width in characters")
    p = command("skim", _skim, "a region's events to parquet or ROOT, with a ledger")
    p.add_argument("--config", required=True)
    p.add_argument("--skim", required=True, help="a name under config key 'skims'")
    p.add_argument("--dataset", required=True)
    p.add_argument("--preprocess", required=True, help="the dataset's preprocess JSON")
    p.add_argument("--output-dir", required=True, help="the skim folder to write")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scheduler", help="as for analyze")
    p = command("summary", _summary, "ledger, systematics and provenance pages for the report")
    p.add_argument("--config", required=True)
    p.add_argument("--inputs", nargs="+", required=True, help="stacked process results")
    p.add_argument("--results", default="results", help="the results folder (for the ledger)")
    p.add_argument("--output-dir", required=True)
    p = command("provenance", _provenance, "what made an output: versions, config, inputs")
    p.add_argument("file", help="a result JSON, plot, table, shapes file or datacard")
    p = command("validate", _validate, "check a config and list its datasets")
    p.add_argument("config")
    p = command("generate", _generate, "write the demo datasets named in a config")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--events", type=int, help="MC events per dataset (default: config)")
    p.add_argument("--seed", type=int, help="random seed (default: config)")
    p.add_argument("--datasets", nargs="*", help="only these datasets")
    p = command("preprocess", _preprocess, "inventory a dataset: entries, sum of weights")
    p.add_argument("--config", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--output", required=True)
    p = command("analyze", _analyze, "run the analysis on one dataset (one graph, one read)")
    p.add_argument("--config", required=True)
    p.add_argument("--dataset", required=True)
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--systematic", action="append", help="a systematic (repeatable; default nominal)"
    )
    which.add_argument(
        "--all-systematics", action="store_true", help="every variation of the dataset"
    )
    p.add_argument("--preprocess", required=True, help="the dataset's preprocess JSON")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", help="one result file (all its systematics)")
    where.add_argument("--outdir", help="one result file per systematic: <outdir>/<syst>.json")
    p.add_argument("--group", type=int, help="only this chunk group (config events_per_job)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--scheduler",
        help="threads, processes, sync, distributed or tcp://host:port "
        "(default: $BREWFLOW_SCHEDULER, else config 'scheduler')",
    )
    p.add_argument(
        "--progress-interval", type=float, default=10.0, help="seconds between progress lines"
    )
    p = command("split", _split, "one result file per systematic of a multi-systematic result")
    p.add_argument("--input", required=True)
    p.add_argument("--outdir", required=True, help="writes <outdir>/<systematic>.json")
    p.add_argument("--systematic", action="append", default=[], help="only these (repeatable)")
    p = command("merge", _merge, "merge one dataset's results (systematics, chunk groups)")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--preprocess", help="check every event of this inventory counted once")
    p = command("scale", _scale, "normalise MC to xsec x luminosity / sum of genWeight")
    p.add_argument("--config", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--preprocess", required=True)
    p.add_argument("--output", required=True)
    p = command("stack", _stack, "sum the scaled datasets of one process")
    p.add_argument("--process", required=True)
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--output", required=True)
    p = command("cutflow", _cutflow, "cutflow tables of one region (CSV, Markdown, LaTeX)")
    p.add_argument("--region", required=True)
    p.add_argument("--processes", nargs="+", required=True, help="stacked process results")
    p.add_argument("--datasets", nargs="+", required=True, help="scaled dataset results")
    p.add_argument("--output-stem", required=True)
    p = command("plot", _plot, "data/MC plots of every histogram in one region")
    p.add_argument("--config", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--histogram", help="only this histogram (default: all in the region)")
    p.add_argument("--inputs", nargs="+", required=True, help="stacked process results")
    p.add_argument("--output-dir", required=True)
    return parser


def _os_error(err: OSError, args: argparse.Namespace) -> str:
    """One line for an operating-system error, naming the path (the command's output when the
    error does not carry one, as for a full disk) and what to check."""
    import errno

    path = err.filename or next(
        (str(getattr(args, k)) for k in ("output", "outdir") if getattr(args, k, None)), None
    )
    where = f" {path!r}" if path else ""
    if isinstance(err, ConnectionError | TimeoutError):
        return f"network error{where}: {err}; check that the server is up and reachable"
    if err.errno == errno.ENOSPC:
        return f"cannot write{where}: no space left on the device; free some space and rerun"
    return (
        f"cannot access{where}: {err.strerror or err}; check that the path exists and is writable"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brewflow`` command."""
    from rich.logging import RichHandler

    from brewflow.errors import BrewflowError

    args = _parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(show_path=False)
        logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    else:  # log files of workflow jobs: one plain line per message
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except BrewflowError as err:  # says what failed and what to do
        if args.debug:
            raise
        print(f"brewflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        return 0
    except OSError as err:  # e.g. an output folder that is not writable, a full disk
        if args.debug:
            raise
        print(f"brewflow {args.command}: error: {_os_error(err, args)}", file=sys.stderr)
        return 2
    except Exception as err:  # one line, not a traceback, unless --debug
        if args.debug:
            raise
        print(
            f"brewflow {args.command}: error: {type(err).__name__}: {err}\n"
            f"(unexpected; `brewflow --debug {args.command} ...` shows the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
