"""Credentials in URLs (brewflow.secrets): redacted in any text, kept per process by the config
loader, restored only for the read, from the user's config files in a process that never
read them."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest

from brewflow import secrets
from brewflow.secrets import MASK, TOKEN_PARAMETERS, redact

SECRET = "SECRETTOKEN"


@pytest.fixture(autouse=True)
def _fresh_memory(monkeypatch):
    """Each test starts with no credential known to the process and none to read again."""
    for name in ("_KNOWN", "_FROM", "_BY_HOST"):
        monkeypatch.setattr(secrets, name, {})
    monkeypatch.setattr(secrets, "_SCANNED", set())
    monkeypatch.delenv(secrets.ENV, raising=False)


@pytest.mark.parametrize(
    "name", [*TOKEN_PARAMETERS, "X-Amz-Signature", "X-Amz-Credential", "X-Goog-Signature"]
)
def test_each_token_parameter_is_redacted_in_any_case(name):
    for spelled in (name, name.upper(), name.lower()):
        url = f"https://host.example/nano/x.root?{spelled}={SECRET}"
        assert redact(url) == f"https://host.example/nano/x.root?{spelled}={MASK}"
        after = f"https://host.example/x.root?a=1&{spelled}={SECRET}&b=2"
        assert redact(after) == f"https://host.example/x.root?a=1&{spelled}={MASK}&b=2"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"root://user:{SECRET}@eos.cern.ch//eos/x.root", "root://***@eos.cern.ch//eos/x.root"),
        (f"root://{SECRET}@eos.cern.ch:1094//x.root", "root://***@eos.cern.ch:1094//x.root"),
        (f"https://me:p@ss{SECRET}@h.org/x.root", "https://***@h.org/x.root"),  # '@' in it
        (f"davs://u:{SECRET}@h/x?authz={SECRET}", "davs://***@h/x?authz=***"),
    ],
)
def test_user_info_of_any_url_is_redacted(url, expected):
    assert redact(url) == expected


def test_several_urls_in_one_text_are_each_redacted_and_the_rest_kept():
    text = (
        f"file 'root://u:{SECRET}@a.org//store/x.root' failed (after 2.0 s); "
        f"reading 'https://b.org/y.root?access_token={SECRET}&n=1' from "
        f"root://{SECRET}@c.org:1094//z.root, see results/merge/dy.json"
    )
    assert redact(text) == (
        "file 'root://***@a.org//store/x.root' failed (after 2.0 s); "
        "reading 'https://b.org/y.root?access_token=***&n=1' from "
        "root://***@c.org:1094//z.root, see results/merge/dy.json"
    )


def test_redaction_is_idempotent_and_keeps_json_and_html_well_formed():
    document = {"path": f"root://u:{SECRET}@h//x.root", "q": f'https://h/x?sig={SECRET}"q'}
    once = redact(json.dumps(document))
    assert redact(once) == once
    assert json.loads(once) == {"path": "root://***@h//x.root", "q": 'https://h/x?sig=***"q'}
    page = f"<a href='https://h/x.root?a=1&amp;token={SECRET}'>x</a>"
    assert redact(page) == "<a href='https://h/x.root?a=1&amp;token=***'>x</a>"


@pytest.mark.parametrize(
    "text",
    [
        "/store/mc/RunIISummer20UL18NanoAODv9/DY/NANOAODSIM/f1.root",
        "root://cmsxrootd.fnal.gov//store/x.root",
        "https://host.example/nano/run2018A.root",
        "results/histograms/dy/jesUp.json",
        "user@host:/data/x.root and jdoe@cern.ch",  # no URL scheme: not user info
        "https://host/x.root?tokens=1&mytoken=2&x-amzfoo=3",  # not token parameters
        "weight=genWeight, pt>25 & eta<2.4",
    ],
)
def test_text_without_credentials_is_left_alone(text):
    assert redact(text) == text
    assert not secrets.holds_secret({"files": [text]})


def _concealed() -> dict:
    files = [f"root://u:{SECRET}@a.org:1094//store/f.root",
             f"https://b.org/nano/x.root?authz={SECRET}&n=1"]  # fmt: skip
    redirectors = [f"root://r:{SECRET}2@red.org/"]
    return secrets.conceal({"files": files, "redirectors": redirectors}, ["/cfg/config.yaml"])


def test_conceal_hands_out_redacted_strings_and_reveal_restores_them():
    config = _concealed()
    assert SECRET not in json.dumps(config)
    assert config["files"] == ["root://***@a.org:1094//store/f.root",
                               "https://b.org/nano/x.root?authz=***&n=1"]  # fmt: skip
    assert secrets.reveal(config["files"][0]) == f"root://u:{SECRET}@a.org:1094//store/f.root"
    assert secrets.reveal(config["files"][1]) == f"https://b.org/nano/x.root?authz={SECRET}&n=1"
    # a logical name at the redirector, a file an XRootD glob matched: the credential of the
    # one URL seen for that server
    assert secrets.reveal("root://***@red.org//store/mc/y.root") == (
        f"root://r:{SECRET}2@red.org//store/mc/y.root"
    )
    assert secrets.reveal("root://***@a.org:1094//store/g.root") == (
        f"root://u:{SECRET}@a.org:1094//store/g.root"
    )
    assert secrets.reveal("/local/x.root") == "/local/x.root"
    assert secrets.credential_sources(config) == ["/cfg/config.yaml"]


def test_a_credential_nobody_has_is_named_not_guessed():
    _concealed()
    secrets.conceal({"f": [f"root://other:{SECRET}3@a.org:1094//x.root"]})  # two users, one host
    for url in ("root://***@a.org:1094//store/g.root", "root://***@elsewhere.org//x.root"):
        with pytest.raises(secrets.UnknownCredential, match=r"\*\*\*@.*config it came from"):
            secrets.reveal(url)


def test_a_worker_process_reads_the_credentials_again_from_the_users_files(tmp_path):
    """A process that never loaded the config (a job reading the resolved config, its dask
    workers) finds the real URLs in the files named by $BREWFLOW_CREDENTIALS_FROM: YAML scalars
    (quoted or not) and file-list lines, never a file brewflow wrote."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "datasets:\n  dy:\n    files:\n"
        f"      - 'root://u:{SECRET}@a.org:1094//store/f.root'\n"
        f"      - https://b.org/x.root?authz={SECRET}\n"
        f'    redirectors: ["root://r:{SECRET}@red.org/", root://open.org/]\n'
    )
    listing = tmp_path / "files.txt"
    listing.write_text(f"# from dasgoclient\nroot://l:{SECRET}@list.org//store/g.root\n")
    wanted = ["root://***@a.org:1094//store/f.root", "https://b.org/x.root?authz=***",
              "root://***@red.org//store/h.root", "root://***@list.org//store/g.root"]  # fmt: skip
    code = (
        "import json, sys; from brewflow import secrets; "
        "print(json.dumps([secrets.reveal(u) for u in json.loads(sys.argv[1])]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, json.dumps(wanted)], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", secrets.ENV: f"{config}:{listing}"}, check=True,
    )  # fmt: skip
    assert json.loads(run.stdout) == [
        f"root://u:{SECRET}@a.org:1094//store/f.root", f"https://b.org/x.root?authz={SECRET}",
        f"root://r:{SECRET}@red.org//store/h.root", f"root://l:{SECRET}@list.org//store/g.root",
    ]  # fmt: skip


def test_the_log_formatter_redacts_messages_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(secrets.RedactingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.secrets")
    logger.addHandler(handler)
    try:
        try:
            raise OSError(f"cannot open root://u:{SECRET}@h//x.root")
        except OSError:
            logger.exception("reading %s failed", f"https://h/x.root?token={SECRET}")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert SECRET not in text
    assert "reading https://h/x.root?token=*** failed" in text
    assert "OSError: cannot open root://***@h//x.root" in text
