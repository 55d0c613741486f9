"""Never computing a chunk twice: a dataset's analyze job after files were added, and after a
server that was down came back.

    python benchmarks/incremental.py [--files 40] [--events 2500] [--repeat 1]

One MC dataset of ``--files`` generated files (the demo analysis, every systematic fused in
one analyze job, a chunk per file), read over ``root://`` from two real XRootD servers on this
machine (``.ci/xrootd.sh``, started and stopped here): one file in ten on the second server.
Each step is a fresh ``snakemake`` of the dataset's merged result, timed whole
(``/usr/bin/time``), with what its analyze job logged (its time, chunks read and from the
cache):

1. from scratch, ``--files`` files;
2. one file added (the run's cache of pieces: only the new file's chunks are read);
3. the same ``--files`` + 1 files from scratch in a fresh folder (the reference: bit for bit
   equal to step 2);
4. in a fresh folder: preprocessed, then the second server stopped, the run finishes with its
   files skipped (``on_bad_file: skip``); the server started again, a plain ``snakemake``
   reads only the skipped chunks (fill-in), equal bit for bit to the reference.

Writes ``benchmarks/results-incremental.{md,json}`` and its section of ``benchmarks/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRIPT = ROOT / ".ci" / "xrootd.sh"
sys.path.insert(0, str(HERE))
from planning import _env, _machine, analysis_config  # noqa: E402
from report import replace_section  # noqa: E402

from brewflow.demo.payloads import write_demo_corrections  # noqa: E402
from brewflow.pipeline import snakemake_command  # noqa: E402

SECTION = "## Never computing a chunk twice: files added, skipped chunks filled in"
TARGET = "results/merge/big.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


class Servers:
    """Two XRootD servers serving ``folder``: ``main`` and ``flaky`` (stopped and started)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**os.environ, "BREWFLOW_XROOTD_DIR": str(folder.parent / "xrootd-run")}
        self.ports = {name: (_free_port(), _free_port()) for name in ("main", "flaky")}
        for name in self.ports:
            self.start(name)

    def start(self, name: str) -> None:
        root, http = self.ports[name]
        subprocess.run([str(SCRIPT), "start", str(self.folder), str(root), str(http)],
                       check=True, env=self.env, capture_output=True)  # fmt: skip

    def halt(self, name: str) -> None:
        subprocess.run([str(SCRIPT), "stop", str(self.ports[name][0])], check=True,
                       env=self.env, capture_output=True)  # fmt: skip

    def url(self, name: str, file: str) -> str:
        return f"root://localhost:{self.ports[name][0]}//{file}"

    def close(self) -> None:
        for name in self.ports:
            subprocess.run([str(SCRIPT), "stop", str(self.ports[name][0])], check=False,
                           env=self.env, capture_output=True)  # fmt: skip


def _config(files: list[str], events: int, payloads: Path) -> dict:
    """The demo analysis on one MC dataset of ``files``, its payloads in ``payloads``."""
    config = analysis_config(1, 2, events, events)
    config = json.loads(json.dumps(config).replace("results/generated/", f"{payloads}/"))
    for path in config["generate"]["corrections"].values():
        if not Path(path).is_file():
            write_demo_corrections(path)
    for key in ("shapes", "fit", "generate"):
        config.pop(key, None)
    for era in config["eras"].values():  # MC only: no golden JSON
        era.pop("lumi_mask", None)
    config["datasets"] = {"big": {"files": files, "xsec": 1.0, "process": "top",
                                  "era": next(iter(config["eras"]))}}  # fmt: skip
    config["fuse_systematics"] = True
    config["on_bad_file"] = "skip"
    config["remote"] = {"timeout": 5, "retries": 0}
    return config


def _snakemake(work: Path, config: dict, *targets: str) -> dict:
    """One fresh ``snakemake`` of ``targets`` in ``work``: wall time, and what the analyze job
    logged (its seconds, chunks read and taken from the cache)."""
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    report = work / "time.txt"
    command = ["/usr/bin/time", "-f", "%e", "-o", str(report),
               *snakemake_command(work, work / "config.yaml", 2, *targets)]  # fmt: skip
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, env=_env())
    if done.returncode:
        raise RuntimeError(f"snakemake failed in {work}:\n{done.stderr[-3000:]}")
    out: dict = {"wall": float(report.read_text().split()[-1]), "analyze_s": None,
                 "read": None, "cached": 0}  # fmt: skip
    logs = sorted((work / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
    for log in logs:
        if "analyze" not in str(log) or log.stat().st_mtime < time.time() - out["wall"] - 1:
            continue
        text = log.read_text()
        if found := re.findall(r"big/all systematics: (\d+) events in ([\d.]+) s", text):
            out["analyze_s"] = float(found[-1][1])
        if found := re.findall(r"(\d+) chunks read, (\d+) from the cache", text):
            out["read"], out["cached"] = int(found[-1][0]), int(found[-1][1])
        elif found := re.findall(r"(\d+) chunks to read", text):
            out["read"] = int(found[-1])
    return out


def _body(path: Path) -> str:
    """A result document without its checksum line's prefix: histograms, ledger, provenance."""
    text = path.read_text()
    return "{" + text[text.index('",') + 2 :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--events", type=int, default=2500, help="events per file")
    parser.add_argument("--output", type=Path, default=HERE / "results-incremental.md")
    args = parser.parse_args()
    from brewflow.demo.generate import generate_mc

    base = Path(tempfile.mkdtemp(prefix="brewflow-incremental-"))
    base.chmod(0o755)
    folder = base / "files"
    folder.mkdir(mode=0o755)
    names = [f"f{i:04d}.root" for i in range(args.files + 1)]
    for i, name in enumerate(names):
        generate_mc("ttbar", [str(folder / name)], args.events, seed=2000 + i)
        (folder / name).chmod(0o644)
    servers = Servers(folder)
    try:
        urls = [servers.url("flaky" if i % 10 == 5 else "main", n) for i, n in enumerate(names)]
        rows = {}
        work = base / "run"
        work.mkdir()
        rows["from scratch"] = _snakemake(work, _config(urls[:-1], args.events, base), TARGET)
        rows["one file added"] = _snakemake(work, _config(urls, args.events, base), TARGET)
        reference = base / "reference"
        reference.mkdir()
        rows["reference: all files from scratch"] = _snakemake(
            reference, _config(urls, args.events, base), TARGET
        )
        kept = list((reference / ".brewflow" / "cache" / "analyze").glob("*.json"))
        disk = {"pieces": len(kept), "mb": sum(p.stat().st_size for p in kept) / 1e6}
        flaky = base / "flaky"
        flaky.mkdir()
        _snakemake(flaky, _config(urls, args.events, base), "results/preprocess/big.json")
        servers.halt("flaky")
        try:
            rows["a server down (its chunks skipped)"] = _snakemake(
                flaky, _config(urls, args.events, base), TARGET
            )
        finally:
            servers.start("flaky")
        back = _snakemake(flaky, _config(urls, args.events, base), TARGET)
        rows["the server back: fill-in"] = back
        same = {
            "one file added": _body(work / TARGET) == _body(reference / TARGET),
            "the server back: fill-in": _body(flaky / TARGET) == _body(reference / TARGET),
        }
    finally:
        servers.close()
        shutil.rmtree(base, ignore_errors=True)
    results = {"machine": _machine(), "files": args.files, "events": args.events,
               "rows": rows, "identical": same, "disk": disk}  # fmt: skip
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    text = render(results)
    args.output.write_text(text)
    replace_section(HERE / "results.md", SECTION, text.replace("# Never", "## Never", 1))
    print(text)


def render(results: dict) -> str:
    n, events = results["files"], results["events"]
    lines = [
        SECTION.removeprefix("#"),
        "",
        f"`python benchmarks/incremental.py --files {n} --events {events}`  ",
        f"machine: {results['machine']}",
        "",
        f"One MC dataset of {n} generated files of {events} events (the demo analysis, every "
        "systematic in one fused analyze job, a chunk per file) over `root://` from two XRootD "
        "servers on this machine (one file in ten on the second). Each row: a fresh "
        "`snakemake` of the dataset's merged result (wall time by `/usr/bin/time`) and what "
        "its analyze job logged.",
        "",
        "| step | files | snakemake [s] | analyze job [s] | chunks read | from the cache |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, row in results["rows"].items():
        files = n if label == "from scratch" else n + 1
        job = "" if row["analyze_s"] is None else f"{row['analyze_s']:.1f}"
        read = "" if row["read"] is None else str(row["read"])
        lines.append(f"| {label} | {files} | {row['wall']:.1f} | {job} | {read} | "
                     f"{row['cached']} |")  # fmt: skip
    disk = results["disk"]
    lines += ["", f"The cache of pieces of the reference run: {disk['pieces']} pieces (one per "
              f"file), {disk['mb']:.1f} MB ({disk['mb'] / max(disk['pieces'], 1):.2f} MB a "
              "piece: every histogram of every variation of the demo analysis)."]  # fmt: skip
    lines += ["", "Bit for bit equal to the reference (the merged result's histograms and "
              "ledger): " + ", ".join(f"{k}: {'yes' if v else 'NO'}"
                                      for k, v in results["identical"].items())]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
