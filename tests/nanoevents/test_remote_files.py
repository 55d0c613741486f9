"""Remote reads (brewflow.nanoevents.remote) against small servers of the tests: an HTTP server
that answers a ROOT file's URL with an HTML page, a server that is down; every such input
problem is a user error naming the URL, its credentials redacted; each read sends the
credential of its own URL; an XRootD glob refuses a file name that would read as user info.
(Reads of data against real XRootD servers: tests/jobs/test_remote.py.)"""

from __future__ import annotations

import http.server
import pickle
import shutil
import subprocess
import sys
import threading
from typing import ClassVar

import pytest
import yaml

from brewflow import secrets
from brewflow.cli import main
from brewflow.errors import InputError
from brewflow.locations import RemoteSettings, join
from brewflow.nanoevents import remote
from tests.helpers import free_port, listening_addresses

SECRET = "SECRETTOKEN"
PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Log in</body></html>\n"


class _LoginPage(http.server.BaseHTTPRequestHandler):
    """Answers every request with an HTML login page (status 200), as a portal in front of a
    file server does; ``requested``: the paths (with queries) asked for."""

    requested: ClassVar[list[str]] = []

    def do_HEAD(self) -> None:
        self.requested.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE) * 40))
        self.end_headers()

    def do_GET(self) -> None:
        self.do_HEAD()
        self.wfile.write(PAGE * 40)

    def log_message(self, *args) -> None:
        """Quiet."""


@pytest.fixture
def html_server():
    """An HTTP server on 127.0.0.1 (this host only) that answers with an HTML page."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LoginPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_html_test_server_listens_on_this_host_only(html_server):
    assert listening_addresses(int(html_server.rsplit(":", 1)[1])) == ["127.0.0.1"]


def test_an_html_page_for_a_root_url_is_a_named_replica_failure(html_server):
    url = f"{html_server}/store/nano_dy.root?authz={SECRET}"
    with pytest.raises(remote.NotRootFile) as caught:
        remote.open_file(url, RemoteSettings(timeout=5), "Events")
    message = str(caught.value)
    assert isinstance(caught.value, OSError)  # the next replica is tried
    assert message.startswith(f"{html_server}/store/nano_dy.root?authz=***: ")
    assert "not a ROOT file" in message
    assert "an HTML page" in message
    assert SECRET not in message


def _config(demo_set, tmp_path, files: list[str], on_bad_file: str = "fail"):
    """The small demo config with dataset ``dy`` read from ``files``."""
    config = yaml.safe_load(demo_set["path"].read_text())
    spec = config["datasets"]["dy"]
    spec.pop("generator", None)
    spec["files"] = files
    config["remote"] = {"timeout": 2, "retries": 0, "backoff": 0.1}
    config["on_bad_file"] = on_bad_file
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_preprocess_of_an_html_page_is_a_user_error_naming_the_url(
    demo_set, html_server, tmp_path, capsys
):
    url = f"{html_server}/store/nano_dy.root?authz={SECRET}"
    config = _config(demo_set, tmp_path, [url])
    argv = ["preprocess", "--config", str(config), "--dataset", "dy", "--output", "p.json"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "unexpected" not in err
    assert f"{html_server}/store/nano_dy.root?authz=***" in err
    assert "not a ROOT file" in err
    assert SECRET not in err


def test_a_server_down_is_named_without_the_credentials(demo_set, tmp_path):
    """The whole output of the command (log lines and the error), run as a workflow job runs
    it, names each URL with its credentials redacted."""
    port = free_port()  # nothing listens there
    urls = [f"root://user:{SECRET}@127.0.0.1:{port}//store/dy.root",
            f"http://127.0.0.1:{port}/store/dy2.root?authz={SECRET}"]  # fmt: skip
    for policy in ("fail", "skip"):
        config = _config(demo_set, tmp_path, urls, policy)
        run = subprocess.run(
            [sys.executable, "-m", "brewflow.cli", "-v", "preprocess", "--config", str(config),
             "--dataset", "dy", "--output", str(tmp_path / "p.json")],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert run.returncode == 2, run.stderr
        assert SECRET not in run.stderr + run.stdout
        assert "unexpected" not in run.stderr
        assert f"root://***@127.0.0.1:{port}//store/dy.root" in run.stderr
        if policy == "skip":  # logged as skipped, then none readable
            assert f"http://127.0.0.1:{port}/store/dy2.root?authz=***" in run.stderr


def test_a_worker_elsewhere_reads_with_the_credentials_of_the_users_config(
    html_server, tmp_path, monkeypatch
):
    """The remote settings made where the config was loaded name the files its credentials are
    in; a worker that does not inherit that process's environment (a dask worker on another
    node) gets them with the task and sends the user's token, read from the config file."""
    config = tmp_path / "config.yaml"
    config.write_text(f"datasets:\n  dy:\n    files: ['{html_server}/x.root?authz={SECRET}']\n")
    monkeypatch.setenv(secrets.ENV, str(config))
    task = pickle.dumps((f"{html_server}/x.root?authz=***", RemoteSettings(timeout=5)))
    code = (
        "import pickle, sys; from brewflow.nanoevents import remote; "
        "url, settings = pickle.loads(sys.stdin.buffer.read()); "
        "remote.open_file(url, settings, 'Events')"
    )
    _LoginPage.requested.clear()
    run = subprocess.run([sys.executable, "-c", code], input=task, capture_output=True,
                         env={"PATH": "/usr/bin:/bin"}, timeout=60, check=False)  # fmt: skip
    assert b"NotRootFile" in run.stderr  # it reached the server, which answered HTML
    assert _LoginPage.requested
    assert all(p == f"/x.root?authz={SECRET}" for p in _LoginPage.requested)


@pytest.fixture
def fresh_credentials(monkeypatch) -> None:
    """No credential known to the process, none to read again (restored after the test)."""
    for name in ("_KNOWN", "_FROM", "_BY_HOST"):
        monkeypatch.setattr(secrets, name, {})
    monkeypatch.setattr(secrets, "_SCANNED", set())
    monkeypatch.delenv(secrets.ENV, raising=False)


def test_two_tokens_on_one_server_each_read_sends_its_own(html_server, fresh_credentials):
    """A file URL with one token and a redirector with another on the same server (tokens
    scoped per path, as on EOS and dCache): each read sends the token it was written with
    (aiohttp asks for "//store" as "/store")."""
    concealed = secrets.conceal({
        "files": [f"{html_server}/data/a.root?authz={SECRET}1"],
        "redirectors": [f"{html_server}/?authz={SECRET}2"],
    })  # fmt: skip
    urls = [*concealed["files"], join(concealed["redirectors"][0], "/store/b.root")]
    assert urls == [
        f"{html_server}/data/a.root?authz=***",
        f"{html_server}//store/b.root?authz=***",
    ]
    _LoginPage.requested.clear()
    for url in urls:
        with pytest.raises(remote.NotRootFile):  # it reached the server, which answered HTML
            remote.open_file(url, RemoteSettings(timeout=5), "Events")
    assert set(_LoginPage.requested) == {f"/data/a.root?authz={SECRET}1",
                                         f"/store/b.root?authz={SECRET}2"}  # fmt: skip


def test_an_xrootd_glob_matching_a_name_with_an_at_sign_is_refused(xrootd):
    """Everything before a URL's last '@' is redacted as user info, so such a file could not be
    read back by its (redacted) name: the glob names it instead."""
    folder = xrootd.folders["a"] / "at-sign"
    folder.mkdir()
    folder.chmod(0o755)  # the server runs as the xrootd user
    try:
        for name in ("x@y.root", "z.root"):
            (folder / name).write_bytes(b"")
            (folder / name).chmod(0o644)
        pattern = xrootd.url("/at-sign/*.root", "a")
        with pytest.raises(
            InputError, match=r"matches \S*/at-sign/x@y\.root: a file name with '@'"
        ):
            remote.expand_glob(pattern, RemoteSettings(timeout=5))
    finally:
        shutil.rmtree(folder)
