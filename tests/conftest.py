"""Shared fixtures: a small generated demo set, and the real NanoAOD samples in ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from brewflow.demo.generate import generate_data, generate_mc
from brewflow.demo.payloads import write_demo_corrections
from brewflow.demo.physics import train_demo_bdt
from tests.helpers import SHARED, SMALL_EVENTS, SMALL_LUMI, era_config, small_config, snakemake


@pytest.fixture(autouse=True)
def _environment():
    """Each test starts from the session's environment: a dask LocalCluster of processes sets
    OMP_NUM_THREADS=1 (and other thread limits) in os.environ, which later subprocesses (e.g.
    Slurm started by tests/jobs/test_clusters.py) would otherwise inherit."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _preprocess_cache(tmp_path_factory, monkeypatch) -> None:
    """Tests keep preprocessing's per-file cache in a temporary folder, not the checkout."""
    from brewflow.jobs import recordcache

    monkeypatch.setattr(recordcache, "CACHE", tmp_path_factory.getbasetemp() / "preprocess-cache")


@pytest.fixture(autouse=True)
def _tree_cache(tmp_path_factory, monkeypatch) -> None:
    """Tests keep the tree metadata cache (brewflow.nanoevents.metadata) in a temporary
    folder, not the user's ~/.cache (subprocesses inherit it)."""
    monkeypatch.setenv("BREWFLOW_CACHE", str(tmp_path_factory.getbasetemp() / "brewflow-cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CMS samples and payloads (skipped where ../shared is absent)."""
    if not (SHARED / "nanoaod" / "nano_dy.root").is_file():
        pytest.skip(f"real NanoAOD samples not found at {SHARED} (only CI and developers have it)")
    return SHARED


@pytest.fixture(scope="session")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small generated demo dataset and its config (files written once per session)."""
    directory = tmp_path_factory.mktemp("demo")
    config = small_config(directory)
    write_demo_corrections(config["generate"]["corrections"])
    for dataset in config["datasets"].values():
        model = dataset["generator"]
        if model == "data":
            generate_data(dataset["files"], SMALL_LUMI, seed=7, lumi_mask=dataset["lumi_mask"])
        else:
            generate_mc(model, dataset["files"], SMALL_EVENTS, seed=7)
    train_demo_bdt(config, seed=7)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return {"config": config, "path": path, "directory": directory}


@pytest.fixture(scope="session")
def eras_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One Snakemake run of :func:`tests.helpers.era_config` (two eras, blinding, the fit) per
    session: ``workdir`` and the resolved ``config``. tests/test_eras_workflow.py checks its
    outputs, tests/test_report.py its report."""
    import json

    workdir = tmp_path_factory.mktemp("eras")
    (workdir / "config.yaml").write_text(yaml.safe_dump(era_config()))
    done = snakemake(workdir)
    assert done.returncode == 0, done.stderr[-4000:]
    resolved = json.loads((workdir / ".brewflow" / "config.json").read_text())["config"]
    return {"workdir": workdir, "config": resolved}


@pytest.fixture(scope="session")
def xrootd(shared_data: Path):
    """Real XRootD servers on localhost serving the shared samples under CMS-like logical names
    (:data:`tests.helpers.LFNS`): ``a`` and ``b`` (two good replicas), ``truncated`` (files cut
    short), ``corrupt`` (baskets overwritten, same ROOT UUID), ``other`` (different files under
    the same names); plus a ``stalled`` socket that never answers and a ``dead`` port. Skipped
    without an XRootD server installed; with ``CI`` set, a missing server fails."""
    import shutil
    import tempfile

    import uproot

    from tests.helpers import LFNS, StalledServer, XRootDServers, corrupt_baskets, free_port

    if shutil.which("xrootd") is None or shutil.which("xrdfs") is None:
        message = "no XRootD server installed (.ci/xrootd.sh install: Debian's xrootd-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI runs the remote-data tests against real servers")
        pytest.skip(message)
    base = Path(tempfile.mkdtemp(prefix="brewflow-xrootd-"))  # readable by the xrootd user
    base.chmod(0o755)
    for kind in ("good", "truncated", "corrupt", "other"):
        for name, lfn in LFNS.items():
            target = base / kind / lfn.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            source = shared_data / "nanoaod" / name
            if kind == "truncated":
                target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
            elif kind == "other":
                with uproot.recreate(target) as out:
                    out["Events"] = {"nMuon": uproot.open(source)["Events"]["nMuon"].array()}
            else:
                shutil.copyfile(source, target)
                if kind == "corrupt":
                    corrupt_baskets(target)
    for path in [base, *base.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    servers = XRootDServers(base / "run")
    stalled = StalledServer()
    try:
        servers.start("a", base / "good")
        servers.start("b", base / "good")
        for kind in ("truncated", "corrupt", "other"):
            servers.start(kind, base / kind)
        servers.ports["stalled"] = (stalled.port, stalled.port)
        dead = free_port()
        servers.ports["dead"] = (dead, dead)
        yield servers
    finally:
        servers.stop()
        stalled.close()
        shutil.rmtree(base, ignore_errors=True)
