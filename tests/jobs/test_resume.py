"""Kill the workflow (Snakemake and every job, SIGKILL) mid-way, resume: finished jobs are kept,
nothing is counted twice, and the results equal an uninterrupted run bit for bit."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from brewflow.pipeline import snakemake_command
from brewflow.results.documents import read_document
from tests.helpers import assert_same_results, snakemake, tiny_workflow_config

pytestmark = pytest.mark.slow


def _config(workdir: Path) -> None:
    config = tiny_workflow_config(Path("results/generated"))
    config["fuse_systematics"] = False  # 22 analyze jobs: some finish before the kill
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def _analyze_outputs(workdir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (workdir / "results" / "analyze").rglob("*.json")}


def _marked_incomplete(workdir: Path) -> set[Path]:
    """The outputs of jobs Snakemake had not recorded as finished (it marks an output when its
    job starts and unmarks it once the job's process has exited). A job killed after renaming
    its output into place but before it ended may be rerun on resuming: it had not recorded
    what its output was made from (:func:`brewflow.jobs.guard.guarded`), so its dataset's
    spec file, planned before the workflow generated the payloads it digests, is written anew
    (found under load in CI). Snakemake's file persistence names each marker by the urlsafe
    base64 of the output's path (split into ``@``-prefixed folders beyond a name's length)."""
    markers = workdir / ".snakemake" / "incomplete"
    assert markers.is_dir(), f"no {markers}: has Snakemake's persistence layout changed?"
    names = ("".join(part.lstrip("@") for part in m.relative_to(markers).parts)
             for m in markers.rglob("*") if m.is_file())  # fmt: skip
    return {(workdir / base64.urlsafe_b64decode(n).decode()).resolve() for n in names}


def _started(workdir: Path, stage: str) -> bool:
    """A ``stage`` job (merge, plot) has started: Snakemake created its log file."""
    return any((workdir / "logs" / stage).rglob("*.log"))


def _kill_when(workdir: Path, ready, name: str, *args: str) -> None:
    """Run the workflow in its own process group and SIGKILL all of it when ``ready()``."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    log_path = workdir / f"{name}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            snakemake_command(workdir, workdir / "config.yaml", 2, *args), env=env, stdout=log,
            stderr=log, start_new_session=True,  # its own process group: Snakemake + jobs
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while not ready() and time.monotonic() < deadline:
            assert process.poll() is None, f"finished before the kill ({name})"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _no_half_written_results(workdir: Path) -> None:
    """Every visible brewflow JSON under results/ is whole (its checksum verifies; a pyhf
    workspace, whose schema leaves no room for a checksum, parses)."""
    for path in (workdir / "results").rglob("*.json"):
        if "generated" in path.parts or path.name.startswith("."):
            continue
        if path.name.endswith(".pyhf.json"):
            assert json.loads(path.read_text())["channels"], path
        else:
            read_document(path)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run of the test workflow."""
    workdir = tmp_path_factory.mktemp("reference")
    _config(workdir)
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    return workdir


def _same_outputs(reference: Path, workdir: Path) -> None:
    assert_same_results(reference, workdir, ["data", "dy", "ttbar"])
    outputs = [p.relative_to(reference) for p in (reference / "results").rglob("*")
               if p.is_file() and "generated" not in p.parts]  # fmt: skip
    for path in outputs:  # stacks, scaled results, tables, plots, shapes: byte for byte
        assert (workdir / path).read_bytes() == (reference / path).read_bytes(), path


def test_killed_run_resumes_to_the_uninterrupted_result(reference, tmp_path):
    """SIGKILL during analyze, then during merge, then during plotting; each time
    ``--unlock`` and ``--rerun-incomplete``: finished jobs are kept, every output equals the
    uninterrupted run byte for byte, and no temporary file is left."""
    killed = tmp_path / "killed"
    killed.mkdir()
    _config(killed)
    # a run of the analyze jobs alone (their outputs as targets: in a whole run Snakemake may
    # start a dataset's merge, scale and stack before 6 analyze outputs exist, found in CI),
    # killed mid-way
    targets = [str(p.relative_to(reference)) for p in _analyze_outputs(reference)]
    _kill_when(killed, lambda: len(_analyze_outputs(killed)) >= 6, "analyze", *targets)
    written = _analyze_outputs(killed)
    assert 6 <= len(written) < 22, "the kill came too late to test resuming"
    assert snakemake(killed, "--unlock").returncode == 0  # the killed run's lock
    unfinished = _marked_incomplete(killed)  # written, but the kill came before Snakemake knew
    assert len(unfinished) <= 2, unfinished  # at most one job per core was running
    done = {p: t for p, t in written.items() if p.resolve() not in unfinished}
    assert len(done) >= 4
    assert not (killed / "results" / "stack").exists()
    _no_half_written_results(killed)

    for stage in ("merge", "plot"):
        assert snakemake(killed, "--unlock").returncode == 0  # the killed run's lock
        shutil.rmtree(killed / "logs" / stage, ignore_errors=True)
        _kill_when(killed, lambda s=stage: _started(killed, s), stage, "--rerun-incomplete")
        _no_half_written_results(killed)
    assert not (killed / "results" / "plots" / "zmumu" / "mll.png").exists()

    # a temporary file as a job killed while writing leaves it: swept when the run starts
    stale = killed / "results" / "merge" / ".dy.json.k1ll3d.tmp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text('{"half": ')
    assert snakemake(killed, "--unlock").returncode == 0
    resumed = snakemake(killed, "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _analyze_outputs(killed)
    assert len(after) == 22
    assert {p: after[p] for p in done} == done  # finished jobs were not recomputed
    assert not list((killed / "results").rglob(".*tmp*"))
    _same_outputs(reference, killed)


def test_second_concurrent_run_is_refused(reference, tmp_path):
    """A second run in the same folder while one runs (here with another luminosity) is
    refused (by Snakemake's lock, or by the first run's outputs marked incomplete), changes
    nothing, and the first run ends as if alone."""
    workdir = tmp_path / "concurrent"
    workdir.mkdir()
    _config(workdir)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with (workdir / "first.log").open("w") as log:
        first = subprocess.Popen(
            snakemake_command(workdir, workdir / "config.yaml", 2), env=env, stdout=log,
            stderr=log,
        )  # fmt: skip
        try:
            _second_is_refused(first, workdir, env)
            assert first.wait(timeout=600) == 0, (workdir / "first.log").read_text()[-3000:]
        finally:  # a failed check leaves no workflow running behind the test
            if first.poll() is None:
                first.kill()
                first.wait()
    _same_outputs(reference, workdir)


def _second_is_refused(first: subprocess.Popen, workdir: Path, env: dict) -> None:
    """Once ``first`` preprocesses, a second run with another config is refused and changes
    nothing."""
    deadline = time.monotonic() + 120
    while not _started(workdir, "preprocess") and time.monotonic() < deadline:
        time.sleep(0.05)
    resolved = (workdir / ".brewflow" / "config.json").read_text()
    other = yaml.safe_load((workdir / "config.yaml").read_text())
    other["luminosity"] *= 2
    (workdir / "other.yaml").write_text(yaml.safe_dump(other))
    second = subprocess.run(
        snakemake_command(workdir, workdir / "other.yaml", 2), env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert first.poll() is None, "the first run ended before the second started"
    assert second.returncode != 0
    said = second.stdout + second.stderr  # refused by the lock, or, when the first run's
    # running jobs are seen first, by their outputs marked incomplete
    assert "cannot be locked" in said or "Incomplete files" in said, said[-2000:]
    assert (workdir / ".brewflow" / "config.json").read_text() == resolved


def test_clean_rebuild_is_byte_identical(reference, tmp_path):
    """Everything under results/ - generated inputs, BDT, inventories, histograms, tables,
    plots (PNG, PDF), shapes (ROOT), datacards - is rebuilt from clean with the same bytes."""
    first = tmp_path / "first"
    shutil.copytree(reference / "results", first)
    for name in ("results", "logs", ".snakemake", ".brewflow"):
        shutil.rmtree(reference / name)
    rebuilt = snakemake(reference)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(
        p.relative_to(reference / "results") for p in (reference / "results").rglob("*")
        if p.is_file()
    )  # fmt: skip
    assert {p.suffix for p in files} >= {".root", ".json", ".png", ".pdf", ".csv", ".ubj"}
    rebuilt_bytes = lambda p: (reference / "results" / p).read_bytes()  # noqa: E731
    different = [p for p in files if (first / p).read_bytes() != rebuilt_bytes(p)]
    assert not different


def test_advice_for_a_damaged_or_deleted_intermediate_regenerates_it(reference, tmp_path):
    """Regression (issue 16.11): "delete it and rerun" left Snakemake with "Nothing to be done"
    (what was made from the file is up to date). The advice is followed as a user would."""
    import re
    import subprocess
    import sys

    workdir = tmp_path / "w"
    shutil.copytree(reference, workdir, symlinks=True)  # mtimes kept: everything up to date
    merged = Path("results") / "merge" / "dy.json"
    original = (workdir / merged).read_bytes()
    brewflow = [sys.executable, "-m", "brewflow.cli"]
    for damage in ("truncate", "delete"):
        if damage == "truncate":
            (workdir / merged).write_bytes(original[: len(original) // 2])
        else:
            (workdir / merged).unlink()
            assert "Nothing to be done" in snakemake(workdir, "-n").stdout  # the trap
        status = subprocess.run([*brewflow, "status", "results"], cwd=workdir,
                                capture_output=True, text=True, check=False)  # fmt: skip
        said = " ".join((status.stdout + status.stderr).split())
        command = re.search(r"`snakemake (--cores 2 --forcerun \S+)`", said)
        assert command is not None, said
        assert command.group(1).endswith(str(merged))
        rerun = snakemake(workdir, *command.group(1).split()[2:])
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert (workdir / merged).read_bytes() == original
        assert "Nothing to be done" in snakemake(workdir, "-n").stdout
