"""Remote reading: ADL Q1-Q8 on one file read locally, over root:// and over http:// from a real
XRootD server on this machine, side by side in one run.

    python benchmarks/remote.py                         # 400k replicated nano_dy, 3 rounds
    python benchmarks/remote.py --events 100000 --repeat 1   # quick

Needs ``../shared`` (the file is ``nano_dy.root`` replicated, every branch, ZLIB, clusters of
10k events, in a temporary folder) and an XRootD server (``.ci/xrootd.sh install``; started
and stopped here on free ports). Every measurement is a fresh process (``brewflow.adl.run``,
threaded scheduler, ``--workers`` threads), rounds interleaved, medians reported: the whole
process's wall time and its time after imports. Each remote run also reports the requests its
sources made (uproot's counters: requests, byte ranges, bytes) per chunk: the byte ranges of
a chunk's baskets go in vector reads (XRootD) or coalesced range requests (HTTP). The
histograms of all three are compared bin by bin. Writes ``benchmarks/results-remote.{md,json}``
and the section "Remote reading" of ``benchmarks/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "data" / "nanoaod" / "nano_dy.root"
SCRIPT = ROOT / ".ci" / "xrootd.sh"
sys.path.insert(0, str(HERE))
from report import replace_section  # noqa: E402

SECTION = "## Remote reading: ADL Q1-Q8 over XRootD and HTTP"


def _job(files: list[str], workers: int, step_size: int) -> dict:
    """One measured process: the ADL queries, then what the file sources requested."""
    from brewflow import adl
    from brewflow.nanoevents import trees

    started = time.perf_counter()
    document = adl.run(files, step_size=step_size, scheduler="threads", workers=workers)
    seconds = time.perf_counter() - started
    sources = {id(t.file.source): t.file.source for _, t in trees._CACHE.values()}
    requests = {
        "requests": sum(s.num_requests for s in sources.values()),
        "ranges": sum(s.num_requested_chunks for s in sources.values()),
        "bytes": sum(s.num_requested_bytes for s in sources.values()),
        "source": sorted({type(s).__name__ for s in sources.values()}),
    }
    hists = {k: v["values"] for k, v in document.items() if k != "events"}
    return {"seconds": seconds, "events": document["events"], "histograms": hists, **requests}


def _failover(name: str, good: str, bad: dict[str, str], timeout: float, retries: int) -> dict:
    """Seconds to open ``name`` from replicas ``[bad, good]``, per kind of bad replica."""
    from brewflow.locations import RemoteSettings
    from brewflow.nanoevents import remote, trees
    from brewflow.nanoevents.inputs import open_replica

    settings = RemoteSettings(timeout=timeout, retries=retries, backoff=0.0)
    out = {}
    for kind, url in bad.items():
        remote._PREFERRED.clear()
        trees.clear()
        started = time.perf_counter()
        _, chosen, failures = open_replica(name, [url, good], "Events", settings)
        out[kind] = {"seconds": time.perf_counter() - started, "attempts": len(failures),
                     "answered": chosen == good}  # fmt: skip
    return out


def _stalled() -> tuple[socket.socket, int]:
    """A socket that accepts connections and never answers (in this process)."""
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    kept: list = []
    threading.Thread(target=lambda: [kept.append(sock.accept()) for _ in iter(int, 1)],
                     daemon=True).start()  # fmt: skip
    return sock, sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--step-size", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=5.0, help="remote.timeout (failover)")
    parser.add_argument("--job", nargs=1, help=argparse.SUPPRESS)
    parser.add_argument("--failover-job", nargs=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(json.dumps(_job(**json.loads(args.job[0]))))
        return
    if args.failover_job:
        print(json.dumps(_failover(**json.loads(args.failover_job[0]))))
        return
    if not SHARED.is_file():
        sys.exit(f"{SHARED} not found: this benchmark replicates the shared NanoAOD sample")
    from inputs import replicate
    from run import measure

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="brewflow-remote-bench-"))
    work.chmod(0o755)  # the XRootD daemon runs as its own user
    path = work / "nano_dy.root"
    info = replicate(SHARED, path, args.events, compression="zlib", cluster=10_000)
    path.chmod(0o644)
    print(f"made {path.name}: {args.events} events, {info['bytes'] / 1e6:.0f} MB", flush=True)
    root, http, cut = _free_port(), _free_port(), _free_port()
    env = {**os.environ, "BREWFLOW_XROOTD_DIR": str(work / "run")}
    truncated = work / "truncated"
    truncated.mkdir(mode=0o755)
    (truncated / path.name).write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    (truncated / path.name).chmod(0o644)
    subprocess.run([str(SCRIPT), "start", str(work), str(root), str(http)], check=True, env=env)
    subprocess.run([str(SCRIPT), "start", str(truncated), str(cut)], check=True, env=env)
    stalled, stalled_port = _stalled()
    urls = {
        "local file": str(path),
        "root:// (XRootD on localhost)": f"root://localhost:{root}//{path.name}",
        "http:// (XrdHttp on localhost)": f"http://localhost:{http}/{path.name}",
    }
    try:
        runs: dict[str, list[dict]] = {name: [] for name in urls}
        for round_ in range(args.repeat):
            for name, url in urls.items():
                options = {"files": [url], "workers": args.workers, "step_size": args.step_size}
                command = [sys.executable, str(Path(__file__)), "--job", json.dumps(options)]
                runs[name].append(measure(command))
                last = runs[name][-1]
                print(f"  {name} | round {round_ + 1}: {last['wall']:.2f} s whole process, "
                      f"{last['seconds']:.2f} s after imports", flush=True)  # fmt: skip
        bad = {
            "down (nothing listening)": f"root://localhost:{_free_port()}//{path.name}",
            "truncated copy": f"root://localhost:{cut}//{path.name}",
            "stalled (accepts, never answers)": f"root://localhost:{stalled_port}//{path.name}",
        }
        options = {"name": f"/{path.name}", "good": urls["root:// (XRootD on localhost)"],
                   "bad": bad, "timeout": args.timeout, "retries": 1}  # fmt: skip
        command = [sys.executable, str(Path(__file__)), "--failover-job", json.dumps(options)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        failover = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        for port in (root, cut):
            subprocess.run([str(SCRIPT), "stop", str(port)], check=False, env=env)
        stalled.close()
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    reference = runs["local file"][0]["histograms"]
    for name, measured in runs.items():
        row = {k: statistics.median(r[k] for r in measured) for k in ("wall", "seconds", "rss")}
        last = measured[-1]
        row |= {k: last[k] for k in ("events", "requests", "ranges", "bytes", "source")}
        row["chunks"] = -(-last["events"] // args.step_size)
        row["identical"] = all(r["histograms"] == reference for r in measured)
        rows.append({"system": name, **row})
    local = rows[0]
    for row in rows:
        row["throughput_vs_local"] = local["wall"] / row["wall"]
        row["after_imports_vs_local"] = local["seconds"] / row["seconds"]
    settings = (
        f"{args.events} events (nano_dy replicated, ZLIB, 10k-event clusters, "
        f"{info['bytes'] / 1e6:.0f} MB), {args.workers} threads, step {args.step_size}, "
        f"median of {args.repeat}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores"
    )
    _write(rows, failover, args.timeout, settings, time.perf_counter() - started)
    for row in rows:
        print(f"{row['system']}: {row['wall']:.2f} s ({100 * row['throughput_vs_local']:.0f}% of "
              f"local), {row['requests'] / row['chunks']:.1f} requests per chunk")  # fmt: skip


def _write(rows: list[dict], failover: dict, timeout: float, settings: str, seconds: float) -> None:
    document = {"settings": settings, "rows": rows, "failover": failover, "timeout": timeout}
    (HERE / "results-remote.json").write_text(json.dumps(document, indent=1) + "\n")
    lines = [
        SECTION,
        "",
        f"`python benchmarks/remote.py` ({settings}; the whole benchmark took {seconds:.0f} s).",
        "Throughput relative to the local file, whole process (what a user waits for) and after "
        "imports; requests are those uproot's source made (opening included), per chunk of "
        "the run.",
        "",
        "| reading | whole process | after imports | throughput vs local | after imports vs "
        "local | requests | requests per chunk | byte ranges | MB requested | peak RSS | "
        "histograms |",
        "|---|" + "---:|" * 9 + "---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['wall']:.2f} s | {r['seconds']:.2f} s | "
            f"{100 * r['throughput_vs_local']:.0f}% | {100 * r['after_imports_vs_local']:.0f}% | "
            f"{r['requests']} | {r['requests'] / r['chunks']:.1f} | {r['ranges']} | "
            f"{r['bytes'] / 1e6:.1f} | {r['rss']:.0f} MB | "
            f"{'identical' if r['identical'] else 'DIFFER'} |"
        )
    lines += [
        "",
        f"Failover (`remote: {{timeout: {timeout:g}, retries: 1}}`): opening the file from "
        "replicas `[bad, good]`, one fresh process; the budget for a bad replica is timeout x "
        f"attempts = {2 * timeout:g} s.",
        "",
        "| first replica | seconds to the good one | failed attempts |",
        "|---|---:|---:|",
    ]
    for kind, r in failover.items():
        answered = "" if r["answered"] else " (the good one did not answer)"
        lines.append(f"| {kind} | {r['seconds']:.2f} s{answered} | {r['attempts']} |")
    text = "\n".join(lines) + "\n"
    (HERE / "results-remote.md").write_text("#" + text)
    replace_section(HERE / "results.md", SECTION, text)


if __name__ == "__main__":
    main()
