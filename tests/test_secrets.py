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
from brewflow.secrets import MASK, redact

SECRET = "SECRETTOKEN"


@pytest.fixture(autouse=True)
def _fresh_memory(monkeypatch):
    """Each test starts with no credential known to the process and none to read again."""
    for name in ("_KNOWN", "_FROM", "_BY_HOST"):
        monkeypatch.setattr(secrets, name, {})
    monkeypatch.setattr(secrets, "_SCANNED", set())
    monkeypatch.delenv(secrets.ENV, raising=False)


CREDENTIAL_NAMES = [
    "authz", "access_token", "bearer_token", "token", "refresh_token", "id_token",
    "client_secret", "password", "passwd", "pwd", "api_key", "apikey", "sig", "signature",
    "bearer", "scitoken", "session_id", "jwt", "macaroon", "credential", "auth", "Key-Pair-Id",
    "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Date", "X-Goog-Signature", "tokens",
]  # fmt: skip


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_each_credential_like_parameter_is_redacted_in_any_case(name):
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
        "https://host/x.root?page=2&x-amzfoo=3&monitor=1",  # no credential-like name
        "weight=genWeight, pt>25 & eta<2.4",
        "(Muon_pt > 25) & passTight==1",  # a comparison, not a parameter
        "error: x (after 2.0 s) at 12:30:01, see ./results/merge/dy.json:3",
        "tcp://127.0.0.1:8786 and /data//run2018/x.root",
    ],
)
def test_text_without_credentials_is_left_alone(text):
    assert redact(text) == text
    assert not secrets.holds_secret({"files": [text]})


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # malformed URLs of a dataset's files, as a config error quotes them
        (f"'root:/cms:{SECRET}@host//f.root'", "'root:/***@host//f.root'"),  # malformed scheme
        (f"'root//cms:{SECRET}@host//f.root'", "'root//***@host//f.root'"),  # a local path
        (f"root://cms:{SECRET}/G@host//f.root", "root://***@host//f.root"),  # '/' in it
        (f"root://cms:/{SECRET}:x@host:1094//f.root", "root://***@host:1094//f.root"),
        (f"root://{SECRET}/x@host//f.root", "root://***@host//f.root"),  # a token with '/'
        (f"https://u:{SECRET}@h/x.root?authz={SECRET}@x", "https://***@h/x.root?authz=***"),
        (f"file x:{SECRET}@host:/data", "file x:***@host:/data"),  # scp-like
    ],
)
def test_user_info_of_a_malformed_url_is_redacted(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize(
    "value", [f"{SECRET}", f"{SECRET},more", f"{SECRET}(x)[y]{{z}}w", f"{SECRET};b:c.d/e+f=="]
)
def test_a_credential_parameter_is_redacted_whole_up_to_the_next_parameter(value):
    """Its value ends at ``&``, ``#``, a space or a quote only: not at a comma or a bracket
    (the old rule left ``,more`` of ``?authz=SECRET,more``)."""
    for name in ("authz", "bearer", "scitoken", "X-Amz-Credential"):
        url = f"https://h/x.root?{name}={value}&b=1#frag"
        assert redact(url) == f"https://h/x.root?{name}={MASK}&b=1#frag"
        assert redact(f"'{url}'") == f"'https://h/x.root?{name}={MASK}&b=1#frag'"
        phrase = f"reading (https://h/x.root?{name}={value}), then https://h/y?{name}={value}: ok"
        assert redact(phrase) == (
            f"reading (https://h/x.root?{name}={MASK}), then https://h/y?{name}={MASK}: ok"
        )


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
    with pytest.raises(secrets.UnknownCredential, match=r"\*\*\*@.*config it came from"):
        secrets.reveal("root://***@elsewhere.org//x.root")
    secrets.conceal({"f": [f"root://other:{SECRET}3@a.org:1094//x.root"]})  # two users, one host
    with pytest.raises(secrets.AmbiguousCredential) as caught:
        secrets.reveal("root://***@a.org:1094//store/g.root")  # under neither's prefix
    message = str(caught.value)
    assert message.startswith("root://***@a.org:1094//store/g.root: 2 different credentials")
    assert "list this file with its full URL" in message
    assert SECRET not in message


def test_each_read_gets_the_credential_of_the_url_it_was_written_with():
    """Several credentials on one server (tokens per path, as on EOS and dCache): a URL seen as
    such gets its own; a logical name read through a redirector, or a file an XRootD glob
    matched, the credential of the longest redirector path or glob folder it is under."""
    here, there = "localhost:1094", "h.org:8443"
    secrets.conceal({
        "files": [f"root://cms:{SECRET}1@{here}//data/a.root",
                  f"root://cms:{SECRET}3@{here}//data/mc/*.root",
                  f"https://{there}/nano/x.root?authz={SECRET}4"],
        "redirectors": [f"root://u:{SECRET}2@{here}/",
                        f"https://{there}/?authz={SECRET}5&scitoken={SECRET}6"],
    })  # fmt: skip
    reads = {
        f"root://***@{here}//data/a.root": f"root://cms:{SECRET}1@{here}//data/a.root",
        f"root://***@{here}//store/mc/b.root": f"root://u:{SECRET}2@{here}//store/mc/b.root",
        f"root://***@{here}//data/b.root": f"root://u:{SECRET}2@{here}//data/b.root",
        f"root://***@{here}//data/mc/c.root": f"root://cms:{SECRET}3@{here}//data/mc/c.root",
        f"https://{there}/nano/x.root?authz=***": f"https://{there}/nano/x.root?authz={SECRET}4",
        f"https://{there}//store/y.root?authz=***&scitoken=***":
            f"https://{there}//store/y.root?authz={SECRET}5&scitoken={SECRET}6",
    }  # fmt: skip
    assert {url: secrets.reveal(url) for url in reads} == reads
    assert secrets.reveal(f"root://{here}//open/x.root") == f"root://{here}//open/x.root"


def test_two_credentials_for_one_url_are_refused_naming_it():
    secrets.conceal({"a": [f"root://u:{SECRET}1@h.org/"], "b": [f"root://v:{SECRET}2@h.org/"]})
    with pytest.raises(secrets.AmbiguousCredential) as caught:
        secrets.reveal("root://***@h.org//store/x.root")
    message = str(caught.value)
    assert message.startswith("root://***@h.org//store/x.root: 2 different credentials")
    assert "given with root://***@h.org/)" in message
    assert SECRET not in message
    secrets.conceal({"c": [f"root://w:{SECRET}3@h.org//store/x.root"]})  # its own full URL
    assert secrets.reveal("root://***@h.org//store/x.root").startswith(f"root://w:{SECRET}3@")
    secrets.conceal({"c": [f"root://w:{SECRET}3@h.org//store/x.root",  # and a second one
                           f"root://z:{SECRET}4@h.org//store/x.root"]})  # fmt: skip
    with pytest.raises(secrets.AmbiguousCredential, match="2 different credentials"):
        secrets.reveal("root://***@h.org//store/x.root")


def test_a_config_read_again_replaces_the_credentials_it_had(tmp_path):
    """A token renewed in the config and the config loaded again in the same process (a
    notebook), or read again from the file: the new one is used, not an ambiguity."""
    secrets.conceal({"files": [f"root://u:{SECRET}1@h.org//f.root"],
                     "redirectors": [f"root://u:{SECRET}1@h.org/"]})  # fmt: skip
    secrets.conceal({"files": [f"root://u:{SECRET}2@h.org//f.root"],
                     "redirectors": [f"root://u:{SECRET}2@h.org/"]})  # fmt: skip
    assert secrets.reveal("root://***@h.org//f.root") == f"root://u:{SECRET}2@h.org//f.root"
    assert secrets.reveal("root://***@h.org//g.root") == f"root://u:{SECRET}2@h.org//g.root"
    config = tmp_path / "config.yaml"
    config.write_text(f"redirectors: ['root://u:{SECRET}3@h.org/']\n")
    secrets.expect([config])
    with pytest.raises(secrets.UnknownCredential):  # not in the config: read it again
        secrets.reveal("root://***@other.org//f.root")
    assert secrets.reveal("root://***@h.org//g.root") == f"root://u:{SECRET}3@h.org//g.root"


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
