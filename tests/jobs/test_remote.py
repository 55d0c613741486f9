"""Remote data against real XRootD servers (``xrootd`` fixture): root:// and http:// read
bin-for-bin like the local files; replicas fail over (down, truncated, stalled, damaged,
changed) within the timeout budget; every replica down fails naming each, or is skipped."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.config import load_config, validate
from brewflow.errors import InputError
from brewflow.jobs import preprocess
from brewflow.jobs.analyze import run
from brewflow.nanoevents import remote
from brewflow.nanoevents.reader import ChunkReadError
from tests.helpers import LFNS, ROOT, listening_addresses

DY = LFNS["nano_dy.root"]
DATA = LFNS["nano_dimuon.root"]
SECRET = "SECRETTOKEN"  # a credential in URLs, never in what brewflow writes or says
TIMEOUT = 2  # remote.timeout of these tests: a stalled replica costs 2 s x attempts


@pytest.fixture(autouse=True)
def _no_preferred_replica(monkeypatch):
    """Each test starts without the process's memory of which replica worked last."""
    monkeypatch.setattr(remote, "_PREFERRED", {})


def _config(shared_data, monkeypatch, datasets: dict, **settings) -> dict:
    """The real-data example (2018 UL payloads), 15-event chunks (3 per file), one
    systematic of each kind, with ``datasets`` replacing its datasets' files."""
    monkeypatch.chdir(ROOT)
    config = load_config(ROOT / "config" / "examples" / "cms_nanoaod.yaml")
    config["step_size"] = 15
    config["systematics"] = {k: config["systematics"][k] for k in ("lumi", "pileup", "jes")}
    for name, spec in config["datasets"].items():
        spec.update(datasets.get(name, {}))
    config["remote"] = {"timeout": TIMEOUT, "retries": 0, "backoff": 0.1, **settings}
    return validate(config)


def _local(shared_data, monkeypatch) -> dict:
    return _config(shared_data, monkeypatch, {})


def _results(config: dict, dataset: str, **options):
    files = preprocess.preprocess(config, dataset)["files"]
    systematics = ["nominal", "jesUp"] if dataset.startswith("DY") else ["nominal"]
    return files, run(config, dataset, systematics, files, scheduler="sync", **options)


def _same_histograms(a, b) -> None:
    assert a.histograms.keys() == b.histograms.keys()
    for name, h in a.histograms.items():
        assert np.array_equal(h.view(flow=True), b.histograms[name].view(flow=True)), name
    assert a.meta["events"] == b.meta["events"]


@pytest.fixture(scope="module")
def local_results(shared_data):
    with pytest.MonkeyPatch.context() as mp:
        config = _local(shared_data, mp)
        return {d: _results(config, d)[1] for d in config["datasets"]}


@pytest.mark.parametrize("scheme", ["root", "http"])
def test_urls_give_the_local_histograms(xrootd, shared_data, monkeypatch, local_results, scheme):
    config = _config(shared_data, monkeypatch, {
        "DYJetsToLL_M50": {"files": [xrootd.url(DY, "a", scheme)]},
        "SingleMuon_2018": {"files": [xrootd.url(DATA, "b", scheme)]},
    })  # fmt: skip
    for dataset, expected in local_results.items():
        files, result = _results(config, dataset)
        _same_histograms(result, expected)
        (record,) = files
        assert record["replica"] == record["path"] == config["datasets"][dataset]["files"][0]
        assert (
            record["size"]
            == (shared_data / "nanoaod" / record["path"].rsplit("/")[-1]).stat().st_size
        )
        assert [c["replica"] for c in result.meta["replicas"]] == [record["path"]] * 3
        lazy = result
        _, eager = _results(config, dataset, lazy=False)
        _same_histograms(eager, lazy)


@pytest.mark.parametrize("first", ["dead", "truncated", "stalled"])
def test_logical_names_fail_over_to_the_next_redirector(
    xrootd, shared_data, monkeypatch, local_results, first
):
    """The first redirector is down, serves a truncated copy, or never answers: the dataset
    is read from the second, and the stalled one costs at most timeout x attempts."""
    redirectors = [xrootd.redirector(first), xrootd.redirector("a")]
    config = _config(shared_data, monkeypatch, {
        "DYJetsToLL_M50": {"files": [DY], "redirectors": redirectors},
    })  # fmt: skip
    started = time.monotonic()
    files, result = _results(config, "DYJetsToLL_M50")
    elapsed = time.monotonic() - started
    _same_histograms(result, local_results["DYJetsToLL_M50"])
    (record,) = files
    assert record["path"] == DY
    assert record["replicas"] == [r.rstrip("/") + "/" + DY for r in redirectors]
    assert record["replica"] == record["replicas"][1]
    assert {c["replica"] for c in result.meta["replicas"]} == {record["replicas"][1]}
    if first == "stalled":  # preprocess (header, tree) and the job's preflight: a few opens
        assert elapsed < 4 * TIMEOUT + 20


def test_stalled_replica_costs_at_most_timeout_times_attempts(xrootd):
    from brewflow.locations import RemoteSettings
    from brewflow.nanoevents.inputs import open_replica

    settings = RemoteSettings(timeout=TIMEOUT, retries=1, backoff=0.0)
    urls = [xrootd.url(DY, "stalled"), xrootd.url(DY, "b")]
    started = time.monotonic()
    ttree, url, failures = open_replica(DY, urls, "Events", settings)
    elapsed = time.monotonic() - started
    assert url == urls[1]
    assert ttree.num_entries == 40
    assert [u for u, _ in failures] == [urls[0], urls[0]]  # two attempts on the stalled one
    assert elapsed <= TIMEOUT * settings.attempts + 1.5, elapsed


def test_a_chunk_read_error_fails_over_and_is_recorded(
    xrootd, shared_data, monkeypatch, local_results
):
    """A replica that opens (same UUID) but whose baskets are damaged: the chunk read fails
    over to the next replica; the result records, per chunk, where it was read and what
    failed."""
    redirectors = [xrootd.redirector("corrupt"), xrootd.redirector("b")]
    config = _config(shared_data, monkeypatch, {
        "DYJetsToLL_M50": {"files": [DY], "redirectors": redirectors},
    })  # fmt: skip
    files = preprocess.preprocess(config, "DYJetsToLL_M50")["files"]
    assert files[0]["replica"] == redirectors[1].rstrip("/") + "/" + DY  # genWeight read there
    remote._PREFERRED.clear()  # the analyze job is another process: it starts from the first
    result = run(config, "DYJetsToLL_M50", ["nominal", "jesUp"], files, scheduler="sync")
    _same_histograms(result, local_results["DYJetsToLL_M50"])
    reads = result.meta["replicas"]
    assert [[c["start"], c["stop"]] for c in reads] == files[0]["chunks"]
    assert {c["replica"] for c in reads} == {redirectors[1].rstrip("/") + "/" + DY}
    failed = [c["failed"] for c in reads if c["failed"]]  # the first chunk read; later ones
    assert len(failed) == 1  # start at the replica that worked (remembered per process)
    assert failed[0][0].startswith(redirectors[0].rstrip("/") + "/" + DY + ": ")


def test_a_replica_with_another_uuid_is_refused_as_changed(xrootd, shared_data, monkeypatch):
    config = _config(shared_data, monkeypatch, {
        "DYJetsToLL_M50": {"files": [DY], "redirectors": [xrootd.redirector("a")]},
    })  # fmt: skip
    files = preprocess.preprocess(config, "DYJetsToLL_M50")["files"]
    files[0]["replicas"] = [xrootd.url(DY, "other")]  # the file was replaced on the server
    with pytest.raises(InputError, match=r"UUID .* the inventory has .*changed since"):
        run(config, "DYJetsToLL_M50", "nominal", files, scheduler="sync")
    files[0]["replicas"] = [xrootd.url(DY, "other"), xrootd.url(DY, "b")]
    result = run(config, "DYJetsToLL_M50", "nominal", files, scheduler="sync")
    assert result.meta["events"] == 40
    assert {c["replica"] for c in result.meta["replicas"]} == {xrootd.url(DY, "b")}


def test_every_replica_down_is_named_or_skipped(xrootd, shared_data, monkeypatch):
    redirectors = [xrootd.redirector("dead"), xrootd.redirector("stalled")]
    datasets = {"DYJetsToLL_M50": {"files": [DY], "redirectors": redirectors}}
    config = _config(shared_data, monkeypatch, datasets)
    with pytest.raises(InputError) as error:
        preprocess.preprocess(config, "DYJetsToLL_M50")
    message = str(error.value)
    assert f"file {DY!r}" in message
    assert "every replica failed" in message
    for redirector in redirectors:
        assert redirector.rstrip("/") + "/" + DY in message
    assert "Connection error" in message  # the dead one; the stalled one timed out:
    assert "timeout" in message.lower() or "expired" in message.lower()
    assert "on_bad_file: skip" in message

    # a file whose servers go down after preprocessing: the job fails naming them, or skips
    good = _config(shared_data, monkeypatch, {
        "DYJetsToLL_M50": {"files": [DY], "redirectors": [xrootd.redirector("a")]},
    })  # fmt: skip
    files = preprocess.preprocess(good, "DYJetsToLL_M50")["files"]
    files[0]["replicas"] = [r.rstrip("/") + "/" + DY for r in redirectors]
    with pytest.raises(InputError, match="every replica failed"):
        run(good, "DYJetsToLL_M50", "nominal", files, scheduler="sync")
    good["on_bad_file"] = "skip"
    result = run(good, "DYJetsToLL_M50", "nominal", files, scheduler="sync")
    assert result.meta["events"] == 0
    assert [s["path"] for s in result.meta["skipped"]] == [DY] * len(files[0]["chunks"])
    assert "every replica failed" in result.meta["skipped"][0]["reason"]


def test_a_chunk_whose_replicas_all_fail_names_each(xrootd, shared_data, monkeypatch):
    config = _config(shared_data, monkeypatch, {
        "DYJetsToLL_M50": {"files": [DY], "redirectors": [xrootd.redirector("a")]},
    })  # fmt: skip
    files = preprocess.preprocess(config, "DYJetsToLL_M50")["files"]
    files[0]["replicas"] = [xrootd.url(DY, "corrupt")]  # opens (same UUID), reads fail
    remote._PREFERRED.clear()
    with pytest.raises(
        ChunkReadError, match=r"entries \[\d+, \d+\): every replica failed: root://"
    ):
        run(config, "DYJetsToLL_M50", "nominal", files, scheduler="sync")
    config["on_bad_file"] = "skip"
    result = run(config, "DYJetsToLL_M50", "nominal", files, scheduler="sync")
    assert result.meta["events"] == 0
    assert len(result.meta["skipped"]) == 3


def test_globs_on_an_xrootd_folder(xrootd, shared_data, monkeypatch):
    folder = DY.rsplit("/", 1)[0]
    config = _config(shared_data, monkeypatch, {
        "DYJetsToLL_M50": {"files": [xrootd.url(folder + "/*.root", "a")]},
    })  # fmt: skip
    inventory = preprocess.preprocess(config, "DYJetsToLL_M50")
    assert [f["path"] for f in inventory["files"]] == [xrootd.url(DY, "a")]
    config["datasets"]["DYJetsToLL_M50"]["files"] = [xrootd.url(folder + "/*.txt", "a")]
    with pytest.raises(InputError, match=r"matches no file"):
        preprocess.preprocess(config, "DYJetsToLL_M50")


def test_a_glob_with_credentials_reads_files_named_without_them(
    xrootd, shared_data, monkeypatch, local_results
):
    """A glob on an XRootD folder with user info and a token (the servers ignore both): its
    files are inventoried and read under redacted names, with the pattern's credentials."""
    folder = DY.rsplit("/", 1)[0]
    pattern = xrootd.url(f"{folder}/*.root?authz={SECRET}", "a")
    pattern = pattern.replace("root://", f"root://cms:{SECRET}@")
    config = _config(shared_data, monkeypatch, {"DYJetsToLL_M50": {"files": [pattern]}})
    files, result = _results(config, "DYJetsToLL_M50")
    name = xrootd.url(f"{DY}?authz=***", "a").replace("root://", "root://***@")
    assert [f["path"] for f in files] == [name]
    _same_histograms(result, local_results["DYJetsToLL_M50"])
    assert SECRET not in json.dumps([files, result.meta])


def test_the_servers_of_the_tests_accept_this_host_only(xrootd):
    """Python's test servers listen on 127.0.0.1; XRootD listens on every address (it has no
    directive to bind one) and refuses a peer that is not 127.0.0.1 or ::1 (.ci/xrootd.sh:
    ``xrd.allow``): a connection from 127.0.0.2 is closed unanswered."""
    import socket
    import struct

    assert listening_addresses(xrootd.ports["stalled"][0]) == ["127.0.0.1"]
    root, http = xrootd.ports["a"]
    hello = {root: struct.pack(">5i", 0, 0, 0, 4, 2012),  # XRootD's handshake
             http: b"HEAD /store HTTP/1.0\r\n\r\n"}  # fmt: skip
    for port, request in hello.items():
        answers = {}
        for peer in ("127.0.0.1", "127.0.0.2"):
            with socket.create_connection(("127.0.0.1", port), 5, (peer, 0)) as sock:
                sock.sendall(request)
                try:
                    answers[peer] = sock.recv(16)
                except ConnectionResetError:
                    answers[peer] = b""
        assert answers["127.0.0.1"], port
        assert answers["127.0.0.2"] == b"", port


def test_the_remote_inventory_is_cached_by_name_uuid_and_size(
    xrootd, shared_data, monkeypatch, tmp_path
):
    config = _config(shared_data, monkeypatch, {
        "DYJetsToLL_M50": {"files": [DY], "redirectors": [xrootd.redirector("a")]},
    })  # fmt: skip
    first = preprocess.preprocess(config, "DYJetsToLL_M50", cache=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1
    calls = []
    monkeypatch.setattr(preprocess, "inspect_file", lambda *a, **k: calls.append(a))
    again = preprocess.preprocess(config, "DYJetsToLL_M50", cache=tmp_path)
    assert calls == []
    assert again["files"] == first["files"]
    # another replica set is another cache entry
    config["datasets"]["DYJetsToLL_M50"]["redirectors"] = [xrootd.redirector("b")]
    monkeypatch.undo()
    monkeypatch.chdir(ROOT)
    third = preprocess.preprocess(config, "DYJetsToLL_M50", cache=tmp_path)
    assert third["files"][0]["replica"] == xrootd.url(DY, "b")
    assert third["files"][0]["uuid"] == first["files"][0]["uuid"]


@pytest.mark.parametrize("scheme", ["root", "http"])
def test_adl_command_reads_a_url(xrootd, shared_data, tmp_path, scheme):
    """``brewflow adl --output OUT.json root://host//path.root`` writes the local file's
    document, byte for byte."""
    outputs = {}
    for kind, source in (("local", str(shared_data / "nanoaod" / "nano_dy.root")),
                         ("remote", xrootd.url(DY, "a", scheme))):  # fmt: skip
        out = tmp_path / f"{kind}.json"
        subprocess.run([sys.executable, "-m", "brewflow", "adl", "--output", str(out), source],
                       check=True, capture_output=True)  # fmt: skip
        outputs[kind] = out.read_bytes()
    assert outputs["remote"] == outputs["local"]
    assert json.loads(outputs["remote"])["events"] == 40


def test_a_remote_tree_is_opened_once_per_process(xrootd):
    """The tree cache keys on the URL: every chunk of a remote file shares one open tree."""
    from brewflow.locations import RemoteSettings
    from brewflow.nanoevents import trees

    url = xrootd.url(DY, "a")
    first = trees.open_tree(url, "Events", RemoteSettings(timeout=TIMEOUT))
    assert trees.open_tree(url, "Events") is first
    trees.forget(url, "Events")
    assert trees.open_tree(url, "Events") is not first


def test_a_replica_cut_after_its_metadata_is_refused_when_opened(xrootd, tmp_path):
    """A copy cut short after the tree's metadata (uproot writes it first) opens fine; its
    size, below what its ROOT header records, gives it away, so the next replica is used
    before any read fails."""
    from brewflow.locations import RemoteSettings
    from brewflow.nanoevents import trees
    from brewflow.nanoevents.inputs import open_checked, open_replica

    whole = tmp_path / "whole.root"
    with uproot.recreate(whole) as out:
        out.mktree("Events", {"run": "uint32", "genWeight": "float32"})
        for start in range(0, 40_000, 10_000):  # four baskets after the metadata
            out["Events"].extend(
                {
                    "run": np.full(10_000, 1, np.uint32),
                    "genWeight": np.arange(start, start + 10_000, dtype=np.float32),
                }
            )
    data = whole.read_bytes()
    cut = tmp_path / "cut.root"
    cut.write_bytes(data[: len(data) // 2])
    assert trees.open_tree(str(cut), "Events").num_entries == 40_000  # uproot opens it
    trees.forget(str(cut), "Events")
    with pytest.raises(
        InputError, match=rf"truncated: \d+ bytes, its ROOT header says {len(data)}"
    ):
        open_checked(str(cut), "Events")
    for server, content in (("truncated", data[: len(data) // 2]), ("a", data)):
        served = xrootd.folders[server] / "store" / "cut.root"
        served.write_bytes(content)
        served.chmod(0o644)
    urls = [xrootd.url("/store/cut.root", server) for server in ("truncated", "a")]
    _, url, failures = open_replica("/store/cut.root", urls, "Events",
                                    RemoteSettings(timeout=TIMEOUT))  # fmt: skip
    assert url == urls[1]
    assert "truncated" in failures[0][1]


def test_a_server_that_stalls_mid_read_fails_over_within_the_timeout(
    xrootd, shared_data, local_results
):
    """The replica answers the open, then hangs on the reads (a proxy to a real server that
    stops forwarding): the chunk gives up on it after the request timeout and is read from the
    next replica; later chunks start there."""
    import dask
    import dask_awkward as dak

    from brewflow.locations import RemoteSettings
    from brewflow.nanoevents.reader import lazy_events
    from brewflow.nanoevents.remote import Locations
    from tests.helpers import StallingProxy

    proxy = StallingProxy(xrootd.ports["b"][0])
    try:
        hung = f"root://localhost:{proxy.port}/" + DY
        urls = (hung, xrootd.url(DY, "a"))
        settings = RemoteSettings(timeout=TIMEOUT, retries=0)
        locations = Locations({DY: urls}, {}, settings)
        events, reads = lazy_events([DY], steps={DY: [(0, 20), (20, 40)]},
                                    locations=locations, report=True)  # fmt: skip
        proxy.stall()  # the file is open (its metadata read through the proxy): reads hang
        started = time.monotonic()
        (total, report) = dask.compute(dak.sum(events.Muon.pt), reads, scheduler="sync")
        elapsed = time.monotonic() - started
    finally:
        proxy.close()
    expected = uproot.open(shared_data / "nanoaod" / "nano_dy.root")["Events"]["Muon_pt"].array()
    assert float(total) == pytest.approx(float(ak.sum(expected)))
    records = report.to_list()
    assert {r["replica"] for r in records} == {urls[1]}
    failed = sorted((r["failed"] for r in records), key=len)
    assert [len(f) for f in failed] == [0, 1]  # the chunk read second starts at "a"
    assert failed[1][0].startswith(hung + ": ")
    # measured 3.4-4.1 s with a 2 s timeout: a hung read costs up to about 2 x timeout per
    # attempt (a connection that never answers: at most timeout per attempt, tested above)
    assert elapsed <= 2 * TIMEOUT * settings.attempts + 2.0, (elapsed, failed)


def test_a_skim_reads_logical_names_at_the_redirectors(xrootd, shared_data, monkeypatch,
                                                       tmp_path):  # fmt: skip
    """Regression (issue 27 review): a skim of a dataset given as logical file names at
    redirectors looked for the logical name on the local disk ("does not exist"); it reads
    them where analyze does, and keeps the events a local skim keeps."""
    from brewflow.jobs.skims import write_skim

    skims = {"skims": {"z": {"region": "zmumu", "variables": ["mll"]}}}
    remote = _config(shared_data, monkeypatch, {
        "DYJetsToLL_M50": {"files": [DY], "redirectors": [xrootd.redirector("a")]},
    })  # fmt: skip
    local = _local(shared_data, monkeypatch)
    ledgers = []
    for name, config in (("remote", remote), ("local", local)):
        config = validate({**config, **skims})
        files = preprocess.preprocess(config, "DYJetsToLL_M50")["files"]
        ledgers.append(write_skim(config, "z", "DYJetsToLL_M50", files, tmp_path / name,
                                  progress_interval=None))  # fmt: skip
    assert ledgers[0]["events"] == ledgers[1]["events"] > 0
    assert ledgers[0]["events_read"] == ledgers[1]["events_read"] == 40
