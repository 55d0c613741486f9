"""Kill the workflow (Snakemake and every job, SIGKILL) mid-way, resume: finished jobs are kept,
nothing is counted twice, and the results equal an uninterrupted run bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from brewflow.workflow import snakemake_command
from tests.conftest import assert_same_results, snakemake, tiny_workflow_config

pytestmark = pytest.mark.slow


def _config(workdir: Path) -> None:
    config = tiny_workflow_config(Path("results/generated"))
    config["fuse_systematics"] = False  # 22 analyze jobs: some finish before the kill
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def _analyze_outputs(workdir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (workdir / "results" / "analyze").rglob("*.json")}


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for workdir in (reference, killed):
        workdir.mkdir()
        _config(workdir)
    run = snakemake(reference)
    assert run.returncode == 0, run.stderr[-3000:]

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with (killed / "first.log").open("w") as log:
        process = subprocess.Popen(
            snakemake_command(killed, killed / "config.yaml", 2), env=env, stdout=log,
            stderr=log, start_new_session=True,  # its own process group: Snakemake + jobs
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while len(_analyze_outputs(killed)) < 6 and time.monotonic() < deadline:
            assert process.poll() is None, (killed / "first.log").read_text()[-3000:]
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    done = _analyze_outputs(killed)
    assert 6 <= len(done) < 22, "the kill came too late to test resuming"
    assert not (killed / "results" / "stack").exists()

    # resume: release Snakemake's lock left by the killed run, redo only what is missing
    assert snakemake(killed, "--unlock").returncode == 0
    resumed = snakemake(killed, "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _analyze_outputs(killed)
    assert len(after) == 22
    assert {p: after[p] for p in done} == done  # finished jobs were not recomputed
    reran = resumed.stderr.count("rule analyze:")
    assert reran == 22 - len(done)
    assert_same_results(reference, killed, ["data", "dy", "ttbar"])
    for table in ("zmumu.csv", "ttbar_emu.csv"):
        path = Path("results") / "cutflow" / table
        assert (killed / path).read_bytes() == (reference / path).read_bytes()
