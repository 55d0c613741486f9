"""Credentials through the config loader (brewflow.config.loading): the loaded config and the
resolved config the jobs read hold none; the jobs' reads get them from the user's file; a
``--config`` override cannot carry one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brewflow import secrets
from brewflow.config import load_config
from brewflow.errors import ConfigError
from brewflow.pipeline import write_resolved

SECRET = "SECRETTOKEN"


@pytest.fixture
def remote_config(demo_set, tmp_path, monkeypatch) -> tuple:
    """The small demo config with ``dy`` read through a redirector with user info, a file list
    with a token URL, and ``ttbar`` from a URL with a token parameter."""
    monkeypatch.delenv(secrets.ENV, raising=False)
    config = yaml.safe_load(demo_set["path"].read_text())
    for name in ("dy", "ttbar"):
        config["datasets"][name].pop("generator", None)
    listing = tmp_path / "dy.txt"
    listing.write_text(f"https://files.example/dy/2.root?X-Amz-Signature={SECRET}2\n")
    config["datasets"]["dy"].update(
        files=["/store/mc/dy/1.root"], files_from=str(listing),
        redirectors=[f"root://cms:{SECRET}@xrootd.example:1094/"],
    )  # fmt: skip
    config["datasets"]["ttbar"]["files"] = [f"https://files.example/tt.root?authz={SECRET}"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, listing


def test_the_loaded_and_the_resolved_config_hold_no_credential(remote_config, tmp_path):
    path, listing = remote_config
    config = load_config(path)
    assert SECRET not in json.dumps(config)
    assert config["datasets"]["dy"]["redirectors"] == ["root://***@xrootd.example:1094/"]
    assert config["datasets"]["ttbar"]["files"] == ["https://files.example/tt.root?authz=***"]
    resolved = write_resolved(config, tmp_path / "resolved.json")
    document = json.loads(Path(resolved).read_text())
    assert SECRET not in json.dumps(document)
    assert document["credentials_from"] == sorted([str(path), str(listing)])
    assert load_config(resolved) == config


JOB_URLS = (
    "import json, sys; from brewflow.config import load_config, dataset_replicas; "
    "from brewflow.nanoevents.remote import real_url; c = load_config(sys.argv[1]); "
    "urls = [u for d in ('dy', 'ttbar') for f in c['datasets'][d]['files'] "
    "for u in dataset_replicas(c, d, f)]; print(json.dumps([real_url(u) for u in urls]))"
)
"""What a workflow job in a fresh process opens: the real URLs of dy's and ttbar's files."""


def _job_urls(resolved, *, check: bool) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", JOB_URLS, str(resolved)], capture_output=True,
                          text=True, check=check, env={"PATH": "/usr/bin:/bin"})  # fmt: skip


def test_a_job_reading_the_resolved_config_reads_with_the_users_credentials(
    remote_config, tmp_path
):
    """A fresh process, as a workflow job: it loads the resolved config (no credential in it),
    and the URLs it opens are the user's, read again from the files it names."""
    path, _ = remote_config
    resolved = write_resolved(load_config(path), tmp_path / "resolved.json")
    run = _job_urls(resolved, check=True)
    assert json.loads(run.stdout) == [
        f"root://cms:{SECRET}@xrootd.example:1094//store/mc/dy/1.root",
        f"https://files.example/dy/2.root?X-Amz-Signature={SECRET}2",
        f"https://files.example/tt.root?authz={SECRET}",
    ]


def test_a_config_override_with_a_credential_is_refused(demo_set):
    overrides = {"datasets": {"dy": {"files": [f"root://u:{SECRET}@h.example//store/x.root"]}}}
    with pytest.raises(ConfigError, match=r"--config override 'datasets'.*config file") as caught:
        load_config(demo_set["path"], overrides=overrides)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (f"root:/cms:{SECRET}@host.example//f.root", "malformed URL"),
        (f"root//cms:{SECRET}@host.example//f.root", "does not exist"),  # a local path
        (f"root://cms:{SECRET}/G@host.example//f.root", "'/' in the user info"),
        (f"root://cms:{SECRET}@host.example:x1//f.root", "malformed URL: a bad host or port"),
        (f"https://h.example/x.root?page=2&bearer={SECRET}", "query parameter (page)"),
        (f"https://h.example/x.root?n=1&scitoken={SECRET},more", "query parameter (n)"),
    ],
)
def test_a_malformed_url_is_named_without_its_credential(demo_set, tmp_path, entry, problem):
    """The config error (what the Snakefile's load prints, and Snakemake logs in
    .snakemake/log/) quotes the entry with its credential redacted, however malformed."""
    config = yaml.safe_load(demo_set["path"].read_text())
    config["datasets"]["dy"].pop("generator", None)
    config["datasets"]["dy"]["files"] = [entry]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"config key 'datasets\.dy\.files'") as caught:
        load_config(path)
    message = str(caught.value)
    assert problem in message
    assert SECRET not in message
    assert secrets.redact(entry) in message


def test_credential_like_parameters_are_accepted_and_redacted(demo_set, tmp_path, monkeypatch):
    monkeypatch.delenv(secrets.ENV, raising=False)
    config = yaml.safe_load(demo_set["path"].read_text())
    config["datasets"]["dy"].pop("generator", None)
    config["datasets"]["dy"]["files"] = [
        f"https://h.example/x.root?bearer={SECRET}&scitoken={SECRET},more&X-Ms-Sig={SECRET}"
    ]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert load_config(path)["datasets"]["dy"]["files"] == [
        "https://h.example/x.root?bearer=***&scitoken=***&X-Ms-Sig=***"
    ]


def test_two_credentials_on_one_server_each_read_with_its_own(demo_set, tmp_path):
    """``dy`` read through a redirector with one user's token, ``ttbar`` from file URLs with
    another's, on the same server: a job (a fresh process, from the resolved config) opens
    each file with the credential it was written with."""
    config = yaml.safe_load(demo_set["path"].read_text())
    server = "localhost:31094"
    dy, ttbar = config["datasets"]["dy"], config["datasets"]["ttbar"]
    for spec in (dy, ttbar):
        spec.pop("generator", None)
    dy.update(files=["/store/mc/dy/1.root"], redirectors=[f"root://u:{SECRET}2@{server}/"])
    ttbar["files"] = [f"root://cms:{SECRET}@{server}//store/mc/tt/1.root"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    resolved = write_resolved(load_config(path), tmp_path / "resolved.json")
    run = _job_urls(resolved, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [
        f"root://u:{SECRET}2@{server}//store/mc/dy/1.root",
        f"root://cms:{SECRET}@{server}//store/mc/tt/1.root",
    ]
