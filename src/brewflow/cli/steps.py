"""Commands that are the jobs of a run: generate, preprocess, analyze, split, merge, scale,
stack, skim."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from brewflow.cli._common import command, is_resolved, job, non_negative, positive, results

log = logging.getLogger("brewflow.analyze")


def _generate(args: argparse.Namespace) -> None:
    from brewflow.demo.generate import generate_demo

    with job(args.config, "generate") as view:
        generate_demo(view, events=args.events, seed=args.seed, datasets=args.datasets)


def _preprocess(args: argparse.Namespace) -> None:
    from brewflow.jobs import preprocess, recordcache
    from brewflow.results.inventory import write_inventory

    with job(args.config, "preprocess", dataset=args.dataset) as view:
        inventory = preprocess.preprocess(view, args.dataset, cache=recordcache.CACHE)
        write_inventory(inventory, args.output)


def _analyze(args: argparse.Namespace) -> None:
    from brewflow.config import incomplete, load_config, rates
    from brewflow.config.specs import job_spec
    from brewflow.jobs.analyze import analyze_job
    from brewflow.jobs.piececache import CACHE
    from brewflow.locations import reads_remotely
    from brewflow.results.arithmetic import save_split
    from brewflow.results.inventory import read_inventory
    from brewflow.results.model import save

    part = "" if args.group is None else f".part{args.group}"
    which = "all" if args.all_systematics else "+".join(args.systematic or ["nominal"])
    name = f"{args.dataset}{part}.{which}"
    with job(args.config, "analyze", name, dataset=args.dataset) as view:
        started = time.perf_counter()
        result = analyze_job(
            view,
            args.dataset,
            args.preprocess,
            None if args.all_systematics else args.systematic or ["nominal"],
            group=args.group,
            pieces=CACHE if is_resolved(args.config) else None,  # a workflow's job
            scheduler=args.scheduler,
            workers=args.threads,
            progress_interval=args.progress_interval,
        )
        if args.output:
            save(result, args.output)
        else:
            save_split(result, args.outdir)
        if is_resolved(args.config):  # a workflow's job: its rate is the next plan's hint;
            # chunks it skipped are read by the next run (brewflow.config.incomplete)
            seconds = time.perf_counter() - started
            rates.record(args.dataset, which, result.meta["events"], seconds, args.threads)
            spec = job_spec("analyze", load_config(args.config), dataset=args.dataset)
            remote = {f["path"] for f in read_inventory(args.preprocess)["files"]
                      if reads_remotely(f)}  # fmt: skip
            skipped = [[s["path"], s["start"], s["stop"]] for s in result.meta["skipped"]
                       if s["path"] in remote]  # fmt: skip
            runs = incomplete.record(args.dataset, name, spec.fingerprint(), skipped)
            if runs >= incomplete.ATTEMPTS:
                log.warning("%s: %d chunk(s) of remote files skipped in %d runs in a row: no "
                            "longer retried by the next run (`snakemake --forcerun` this job "
                            "to try again)", name, len(skipped), runs)  # fmt: skip


def _split(args: argparse.Namespace) -> None:
    from brewflow.results.arithmetic import save_split

    save_split(results([args.input])[0], args.outdir, args.systematic)


def _merge(args: argparse.Namespace) -> None:
    from brewflow.jobs.combine import merge_dataset

    merge_dataset(args.inputs, args.output, args.preprocess)


def _scale(args: argparse.Namespace) -> None:
    from brewflow.jobs.combine import normalise

    with job(args.config, "scale", dataset=args.dataset) as view:
        normalise(view, args.input, args.preprocess, args.output, dataset=args.dataset)


def _stack(args: argparse.Namespace) -> None:
    from brewflow.jobs.combine import sum_process

    sum_process(args.inputs, args.process, args.output)


def _skim(args: argparse.Namespace) -> None:
    from brewflow.jobs.skims import skim_job

    with job(args.config, "skim", skim=args.skim, dataset=args.dataset) as view:
        skim_job(view, args.skim, args.dataset, args.preprocess, args.output_dir,
                 scheduler=args.scheduler, workers=args.threads)  # fmt: skip


def register(sub: Any) -> None:
    """Add the commands of this group to the ``brewflow`` parser."""
    p = command(sub, "generate", _generate, "write the demo datasets named in a config")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--events", type=positive(int), help="MC events per dataset (default: config)")
    p.add_argument("--seed", type=non_negative(int), help="random seed (default: config)")
    p.add_argument("--datasets", nargs="*", help="only these datasets")
    p = command(sub, "preprocess", _preprocess, "inventory a dataset: entries, sum of weights")
    p.add_argument("--config", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--output", required=True)
    p = command(sub, "analyze", _analyze, "run the analysis on one dataset (one graph, one read)")
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
    p.add_argument(
        "--group", type=non_negative(int), help="only this chunk group (config events_per_job)"
    )
    p.add_argument("--threads", type=positive(int), default=1)
    p.add_argument(
        "--scheduler",
        help="threads, processes, sync, distributed or tcp://host:port "
        "(default: $BREWFLOW_SCHEDULER, else config 'scheduler')",
    )
    p.add_argument(
        "--progress-interval",
        type=non_negative(float),
        default=10.0,
        help="seconds between progress lines (0: a line per chunk)",
    )
    p = command(sub, "split", _split, "one result file per systematic of a multi-systematic result")
    p.add_argument("--input", required=True)
    p.add_argument("--outdir", required=True, help="writes <outdir>/<systematic>.json")
    p.add_argument("--systematic", action="append", default=[], help="only these (repeatable)")
    p = command(sub, "merge", _merge, "merge one dataset's results (systematics, chunk groups)")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--preprocess", help="check every event of this inventory counted once")
    p = command(sub, "scale", _scale, "normalise MC to xsec x luminosity / sum of genWeight")
    p.add_argument("--config", required=True)
    p.add_argument("--dataset", required=True, help="the dataset of --input")
    p.add_argument("--input", required=True)
    p.add_argument("--preprocess", required=True)
    p.add_argument("--output", required=True)
    p = command(sub, "stack", _stack, "sum the scaled datasets of one process")
    p.add_argument("--process", required=True)
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--output", required=True)
    p = command(sub, "skim", _skim, "a region's events to parquet or ROOT, with a ledger")
    p.add_argument("--config", required=True)
    p.add_argument("--skim", required=True, help="a name under config key 'skims'")
    p.add_argument("--dataset", required=True)
    p.add_argument("--preprocess", required=True, help="the dataset's preprocess JSON")
    p.add_argument("--output-dir", required=True, help="the skim folder to write")
    p.add_argument("--threads", type=positive(int), default=1)
    p.add_argument("--scheduler", help="as for analyze")
