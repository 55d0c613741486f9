"""Helpers the tests share: paths, small configs, running the workflow, building results and
checking them against the per-event reference (:mod:`tests.reference`). Fixtures live in
``conftest.py``; test modules import helpers from here."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from brewflow import histograms as H
from brewflow.pipeline import snakemake_command
from brewflow.results.model import Result, load
from tests import reference

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEMO_CONFIG = ROOT / "config" / "config.yaml"

SMALL_EVENTS = 1500
SMALL_LUMI = 0.5  # pb^-1 -> about 2000 data events


def snakemake(
    workdir: Path, *args: str, cores: int = 2, env: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run this repository's workflow on ``workdir/config.yaml`` (brewflow's bin dir on PATH)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        snakemake_command(workdir, workdir / "config.yaml", cores, *args),
        capture_output=True, text=True, env={**os.environ, "PATH": path, **(env or {})},
        check=False, **kwargs,
    )  # fmt: skip


def computed(array):
    """``array`` computed (dask's single-threaded scheduler) when lazy, else itself: one
    assertion for the lazy and the eager path of a physics function."""
    return array.compute(scheduler="sync") if hasattr(array, "compute") else array


def tiny_workflow_config(directory: Path) -> dict:
    """A small, fast workflow: 3 datasets, 2 systematics, 1 histogram, all variations of a
    dataset in one job, chunk groups of 700 events (2 per dataset)."""
    config = small_config(directory)
    config["datasets"] = {k: config["datasets"][k] for k in ("data", "dy", "ttbar")}
    config["systematics"] = {k: config["systematics"][k] for k in ("lumi", "jes")}
    config["histograms"] = {"mll": config["histograms"]["mll"]}
    config["shapes"] = {"histograms": ["mll"], "signal": ["top"]}
    config["plots"]["formats"] = ["png"]
    config["fuse_systematics"] = True
    config["events_per_job"] = 700
    return config


def assert_same_results(first: Path, second: Path, datasets) -> None:
    """Every merged histogram of two workflow runs is bin-identical (values and variances)."""
    for dataset in datasets:
        a = load(first / "results" / "merge" / f"{dataset}.json")
        b = load(second / "results" / "merge" / f"{dataset}.json")
        assert a.systematics == b.systematics
        assert a.meta["events"] == b.meta["events"]
        for name, h in a.histograms.items():
            assert np.array_equal(h.view(flow=True), b.histograms[name].view(flow=True)), (
                f"{dataset} {name}"
            )


def flat_demo_config() -> dict:
    """The demo config as one implicit era: its 2018 datasets, the top-level luminosity and
    corrections of 2018, no eras, no fit, no search (tests that need eras, the fit or a
    search say so)."""
    config = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text()))
    era = config.pop("eras")["2018"]
    config["luminosity"] = era["luminosity"]
    config["corrections"] = {**era["corrections"], **config["corrections"]}
    config["datasets"] = {name: spec for name, spec in config["datasets"].items()
                          if spec.pop("era") == "2018"}  # fmt: skip
    config["datasets"]["data"]["lumi_mask"] = "results/generated/golden.json"
    config.pop("fit")
    config.pop("hepdata")  # tests that write the record say how (tests/test_eras_workflow.py)
    searched = {p for search in config.pop("searches").values() for p in search["signals"]}
    config["datasets"] = {name: spec for name, spec in config["datasets"].items()
                          if spec.get("process", name) not in searched}  # fmt: skip
    for key in ("pileup", "inject"):
        config["generate"].pop(key)
    payload = "results/generated/corrections/demo.json.gz"
    config["generate"]["corrections"] = payload
    for spec in [*config["corrections"].values(), config["jets"]]:
        spec["file"] = payload
    return config


def small_config(directory: Path) -> dict:
    """The demo config, shrunk: fewer events, files under ``directory``."""
    config = flat_demo_config()
    config["luminosity"] = SMALL_LUMI
    config["step_size"] = 700
    config["fuse_systematics"] = False  # the dataset x systematic fan-out (the demo fuses)
    payload = str(directory / "corrections" / "demo.json.gz")
    bdt = str(directory / "bdt.ubj")
    config["generate"] = {"events": SMALL_EVENTS, "seed": 7, "corrections": payload, "bdt": bdt}
    config["models"] = {"bdt": bdt}
    config.pop("skims")  # tests that skim say how (tests/jobs/test_skims.py)
    for spec in [*config["corrections"].values(), config["jets"]]:
        spec["file"] = payload
    for name, dataset in config["datasets"].items():
        n = 2
        dataset["files"] = [str(directory / name / f"{name}_{i}.root") for i in range(n)]
        if "lumi_mask" in dataset:
            dataset["lumi_mask"] = str(directory / "golden.json")
    return config


# the eras workflow (tests/conftest.py, fixture `eras_run`; tests/test_eras_workflow.py and
# tests/test_report.py read its outputs)
INJECTED = 1.5  # the ttbar signal strength in the pseudo-data
EVENTS = 3000  # MC events per dataset
ERAS = {"2017": 3.0, "2018": 4.0}  # luminosities in pb^-1


def era_config() -> dict:
    """The demo config, small: two eras of data, Drell-Yan and ttbar (ttbar scaled by
    INJECTED in the data); region ttbar_emu fitted, its high-mass part ttbar_blind blinded, a
    blinded m_ll window in zmumu, and a search there for a 90 GeV Z'."""
    from brewflow.demo.events import zprime_xsec

    config = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text()))
    for era, lumi in ERAS.items():
        config["eras"][era]["luminosity"] = lumi
    keep = {"data", "dy", "ttbar", "data_2017", "dy_2017", "ttbar_2017"}
    config["datasets"] = {k: v for k, v in config["datasets"].items() if k in keep}
    for era, suffix in (("2018", ""), ("2017", "_2017")):  # a Z' inside zmumu's window
        config["datasets"][f"zprime{suffix}"] = {
            "era": era, "xsec": zprime_xsec(90), "process": "zprime", "generator": "zprime_m90"
        }  # fmt: skip
    for name, spec in config["datasets"].items():
        spec["files"] = [f"results/generated/{name}/{name}_{i}.root" for i in range(2)]
    config["generate"].update(events=EVENTS, inject={"ttbar": INJECTED})
    config["systematics"] = {k: config["systematics"][k] for k in ("lumi", "pileup", "jes")}
    emu = config["regions"]["ttbar_emu"]  # its high-mass part, blinded (a region of its own:
    # a region with all of a blinded region's cuts must be blinded too)
    config["regions"]["ttbar_blind"] = {**emu, "cuts": [*emu["cuts"], "high_mass"], "blind": True}
    config["histograms"] = {
        "mll": {**config["histograms"]["mll"], "blind": [85, 95], "regions": ["zmumu"]},
        "met": config["histograms"]["met"],
        "nj": {"variable": "njets", "edges": [1.5, 7.5], "regions": ["ttbar_emu"]},
        "nj_blind": {"variable": "njets", "edges": [1.5, 7.5], "regions": ["ttbar_blind"]},
    }
    config["shapes"] = {"histograms": ["nj", "nj_blind"], "signal": ["top"]}
    # a search of the zmumu m_ll (its window blinded) for a 90 GeV Z'
    config["searches"] = {"zp": {"histogram": "mll", "signals": {"zprime": 90}}}
    config["fit"] = {"histograms": ["nj", "nj_blind"], "impacts": 2}
    config["plots"] = {"formats": ["png"], "label": "Test", "systematics": False}
    config["hepdata"] = {
        "abstract": "Two eras, a blinded region, a window and a search.",
        "locations": {"plots/zmumu/mll": "Figure 1", "search/zp": "Figure 2"},
    }
    config["fuse_systematics"] = True
    config["step_size"] = 4000
    config.pop("models")
    config["generate"].pop("bdt")
    config["skims"] = {  # data skims of a blinded region and of a region with a window
        "blind": {"region": "ttbar_blind", "datasets": ["data", "ttbar"]},
        "window": {"region": "zmumu", "variables": ["mll"], "format": "root",
                   "datasets": ["data", "data_2017"]},
    }  # fmt: skip
    return config


DEFS = {"x": {"variable": "x", "bins": 3, "start": 0.0, "stop": 3.0}}
REGIONS = {"r": ["c1"]}


def make_result(dataset: str, systematic: str, x, w, *, process="p", is_data=False) -> Result:
    """A small result with one histogram x (3 bins on [0, 3]) and one cut (x > 1)."""
    hists = H.book(DEFS, ["r"], [systematic], lazy=False)
    hists.update(H.book_cutflow(REGIONS, [systematic], lazy=False))
    x, w = np.asarray(x, float), np.asarray(w, float)
    hists["x"].fill(region="r", systematic=systematic, x=x, weight=w)
    passed = (x > 1).astype(int)
    hists[H.CUTFLOW].fill(region="r", systematic=systematic, passed=passed, weight=w)
    hists[H.CUTFLOW_EVENTS].fill(region="r", systematic=systematic, passed=passed)
    return Result(dataset, process, is_data, hists, {"r": ["c1"]}, {"events": len(x)})


def _edges(definition: dict) -> np.ndarray:
    if "edges" in definition:
        return np.asarray(definition["edges"], dtype=float)
    return np.linspace(definition["start"], definition["stop"], definition["bins"] + 1)


def _inside(event: dict, window) -> bool:
    value = event[window.variable]
    values = value if isinstance(value, list) else [value]
    return any(v is not None and window.low <= v < window.high for v in values)


def check_result(result, config, events, systematic):
    """``result`` against the reference ``events``; for data, as the config blinds them (a
    blinded region: nothing; a window: its events out of the region, and no cutflow)."""
    from brewflow.config.blinding import Blinding

    blinding = Blinding.of(config) if result.is_data else Blinding.none()

    def admitted(region: str) -> list:
        if blinding.is_blind(region):
            return []
        vetoes = blinding.vetoes(region)
        return [e for e in events if not any(_inside(e, w) for w in vetoes)]

    for name, definition in config["histograms"].items():
        h = result.histograms[name]
        for region in definition.get("regions") or config["regions"]:
            cuts = config["regions"][region]["cuts"]
            values, variances = reference.histogram(
                admitted(region), definition["variable"], cuts, _edges(definition), systematic
            )
            got = h[{"region": region, "systematic": systematic}]
            np.testing.assert_allclose(
                got.values(), values, rtol=1e-9, atol=1e-9, err_msg=f"{name} in {region}"
            )
            np.testing.assert_allclose(got.variances(), variances, rtol=1e-9, atol=1e-9)
    for region, spec in config["regions"].items():
        counts, sumw = reference.cutflow(events, spec["cuts"], systematic)
        if blinding.hides_cutflow(region):
            counts, sumw = [0] * len(counts), [0.0] * len(sumw)
        flow = result.cutflow(region, systematic)
        assert flow["events"] == counts, region
        np.testing.assert_allclose(flow["sumw"], sumw, rtol=1e-9, atol=1e-9)


XROOTD_SCRIPT = ROOT / ".ci" / "xrootd.sh"
LFNS = {  # the shared samples as logical file names on the test servers
    "nano_dy.root": "/store/mc/RunIISummer20UL18NanoAODv9/DYJetsToLL_M-50/nano_dy.root",
    "nano_dimuon.root": "/store/data/Run2018A/SingleMuon/NANOAOD/nano_dimuon.root",
}


def free_port() -> int:
    """A TCP port nothing listens on (yet)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_addresses(port: int) -> list[str]:
    """The local addresses TCP ``port`` is listened on (``ss -ltn``)."""
    lines = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                           check=True).stdout.splitlines()  # fmt: skip
    return [line.split()[3].rsplit(":", 1)[0] for line in lines]


class StalledServer:
    """A socket that accepts connections and never answers (a hung server); subclasses say
    what to do with each connection (:meth:`_serve`)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections: list = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)
            self._serve(connection)

    def _serve(self, connection) -> None:
        """Nothing: the connection stays open, unanswered."""

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.sock.close()


class XRootDServers:
    """Real XRootD daemons (``.ci/xrootd.sh``) on localhost, each serving a folder over
    ``root://`` and ``http://``; ``url(lfn, server, scheme)`` is a file's URL on one,
    ``redirector(server, scheme)`` the server's address (``stalled`` and ``dead`` name a socket
    that never answers and a port nothing listens on)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.ports: dict[str, tuple[int, int]] = {}
        self.folders: dict[str, Path] = {}  # what each server serves

    def start(self, name: str, folder: Path, ports: tuple[int, int] | None = None) -> None:
        """Start server ``name`` serving ``folder`` (on ``ports``, root and http: e.g. those of
        a server :meth:`halt`-ed; default free ones)."""
        root, http = ports or (free_port(), free_port())
        subprocess.run([str(XROOTD_SCRIPT), "start", str(folder), str(root), str(http)],
                       check=True, capture_output=True, text=True,
                       env={**os.environ, "BREWFLOW_XROOTD_DIR": str(self.base)})  # fmt: skip
        self.ports[name] = (root, http)
        self.folders[name] = folder

    def redirector(self, name: str, scheme: str = "root") -> str:
        root, http = self.ports[name]
        return f"root://localhost:{root}/" if scheme == "root" else f"http://localhost:{http}/"

    def url(self, lfn: str, name: str, scheme: str = "root") -> str:
        return self.redirector(name, scheme).rstrip("/") + "/" + lfn

    def halt(self, name: str) -> None:
        """Stop server ``name`` (its ports kept: :meth:`start` it again on them)."""
        subprocess.run([str(XROOTD_SCRIPT), "stop", str(self.ports[name][0])], check=True,
                       capture_output=True,
                       env={**os.environ, "BREWFLOW_XROOTD_DIR": str(self.base)})  # fmt: skip

    def stop(self) -> None:
        for name, (root, _) in self.ports.items():
            if name in ("stalled", "dead"):
                continue
            subprocess.run([str(XROOTD_SCRIPT), "stop", str(root)], check=False,
                           capture_output=True,
                           env={**os.environ, "BREWFLOW_XROOTD_DIR": str(self.base)})  # fmt: skip


def corrupt_baskets(path: Path) -> None:
    """Overwrite the data of ``path``'s baskets (TTree metadata intact, same ROOT UUID): the
    file opens, every read of its events fails."""
    import uproot

    with uproot.open(path) as handle:
        tree = handle["Events"]
        seeks = [int(s) for b in tree.branches for s in b.member("fBasketSeek")[: b.num_baskets]]
        end = min(int(handle.key("Events").fSeekKey), int(handle.file.fSeekInfo))
    data = bytearray(path.read_bytes())
    start = min(seeks)
    data[start:end] = bytes(end - start)
    path.write_bytes(bytes(data))


class StallingProxy(StalledServer):
    """A TCP proxy to a real server that forwards both ways until ``stall()``: from then on it
    keeps the connections open and forwards nothing (a server that answered the open, then
    hangs on the reads)."""

    def __init__(self, upstream_port: int) -> None:
        import threading

        self.upstream = upstream_port
        self.stalled = threading.Event()
        super().__init__()

    def _serve(self, client) -> None:
        import socket
        import threading

        server = socket.create_connection(("127.0.0.1", self.upstream))
        self.connections.append(server)
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source, target) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if self.stalled.is_set():
                continue  # swallowed: the other side waits forever
            try:
                target.sendall(data)
            except OSError:
                return

    def stall(self) -> None:
        self.stalled.set()


def forge_cache_entry(entry: Path, edit, *, fix_checksum: bool) -> None:
    """Edit an entry of a brewflow cache (:class:`brewflow.nanoevents.identity.VerifiedCache`)
    by hand: ``edit(value)`` in place; with ``fix_checksum`` its SHA-256 recomputed, as
    whoever can write the cache folder can."""
    import hashlib
    import json

    document = json.loads(entry.read_text())
    old = document.pop("checksum")
    edit(document["value"])
    body = json.dumps(document, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(body.encode()).hexdigest() if fix_checksum else old[len("sha256:") :]
    entry.write_text(f'{{"checksum":"sha256:{digest}",{body[1:]}\n')


def clean_environment() -> dict[str, str]:
    """This process's environment without the user's settings of glibc's allocator."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}  # fmt: skip


PAGE_FAULTS = """
import ctypes, resource
import numpy as np

def faults() -> int:
    \"\"\"Minor page faults of 20 rounds of a chunk's steps (a few arrays of MB alive at once,
    then freed), after a first round (its pages faulted in either way); in 4 kB pages whatever
    the machine's transparent huge pages (PR_SET_THP_DISABLE, this process only).\"\"\"
    ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)

    def step() -> float:
        arrays = [np.ones(1 << 20) for _ in range(4)]
        return sum(float(a.sum()) for a in arrays)

    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""
"""Source defining ``faults()``, for the scripts that count page faults in fresh processes."""
ARRAY_PAGES = (1 << 20) * 8 // 4096
"""One of :data:`PAGE_FAULTS`' 8 MB arrays in 4 kB pages."""
