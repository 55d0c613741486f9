"""Replica health shared by the jobs of a run (issue 29): a server that failed is tried last
by later jobs (other processes: a fresh per-process memory) until ``retry_after`` has passed
or it answers again; never skipped; what is kept names no credential."""

from __future__ import annotations

import json
import time

import pytest

from brewflow.locations import RemoteSettings
from brewflow.nanoevents import remote

DEAD = "root://user:TOKEN@dead.example:1094//store/a.root"
GOOD = "root://good.example:1094//store/a.root"


@pytest.fixture
def health(tmp_path, monkeypatch):
    monkeypatch.setattr(remote, "_PREFERRED", {})
    remote.share_health(tmp_path / "health", retry_after=60)
    yield tmp_path / "health"
    remote.share_health(None)


def _job(attempts: list[str], urls=(DEAD, GOOD)) -> str:
    """One job's read (a fresh process: nothing remembered but the shared health)."""
    remote._PREFERRED.clear()

    def action(url: str) -> str:
        attempts.append(url)
        if "dead" in url or "bad" in url:
            raise ConnectionRefusedError("connection refused")
        return url

    settings = RemoteSettings(timeout=1, retries=1, backoff=0)
    value, _, _ = remote.with_failover("/store/a.root", list(urls), action, settings)
    return value


def test_later_jobs_start_at_the_replica_that_answered(health):
    attempts: list[str] = []
    for _ in range(5):
        assert _job(attempts) == GOOD
    assert attempts.count(DEAD) == 2  # the first job only: its two attempts
    assert attempts.count(GOOD) == 5
    (kept,) = health.iterdir()
    text = kept.read_text()
    assert "TOKEN" not in text
    assert "user" not in kept.name
    assert json.loads(text)["server"] == "root://dead.example:1094"


def test_without_shared_health_every_job_tries_the_dead_replica_first(monkeypatch):
    monkeypatch.setattr(remote, "_PREFERRED", {})
    remote.share_health(None)
    attempts: list[str] = []
    for _ in range(3):
        _job(attempts)
    assert attempts.count(DEAD) == 6


def test_a_failed_server_is_tried_again_after_retry_after_and_when_alone(health, monkeypatch):
    attempts: list[str] = []
    _job(attempts)
    later = time.time() + 61
    monkeypatch.setattr(remote.time, "time", lambda: later)
    attempts.clear()
    _job(attempts)
    assert attempts[0] == DEAD  # the back-off is over: first again, as configured
    monkeypatch.undo()
    remote.share_health(health, retry_after=60)
    attempts.clear()
    with pytest.raises(remote.ReplicasFailed):
        _job(attempts, urls=(DEAD,))  # never skipped: the only replica is still tried
    assert attempts == [DEAD, DEAD]


def test_a_server_that_answers_again_is_no_longer_tried_last(health):
    attempts: list[str] = []
    _job(attempts)
    assert list(health.iterdir())
    remote._PREFERRED.clear()
    value, _, _ = remote.with_failover(
        "/store/a.root", [DEAD], lambda url: url, RemoteSettings(timeout=1, retries=0)
    )
    assert value == DEAD
    assert not list(health.iterdir())
    attempts.clear()
    remote._PREFERRED.clear()
    assert remote.preferred("/store/a.root", [DEAD, GOOD]) == [DEAD, GOOD]


def test_a_replica_with_a_bad_port_fails_over_and_keeps_no_secret(health):
    """Regression (issue 29 review): with shared health, a replica URL whose port is out of
    range raised a bare ValueError from the health's server name and the next replica was
    never tried."""
    attempts: list[str] = []
    bad = "root://cms:SECRET@bad.example:99999//store/a.root"
    assert _job(attempts, urls=(bad, GOOD)) == GOOD
    (kept,) = health.iterdir()
    assert "SECRET" not in kept.read_text() + kept.name
    assert remote.server_of(bad) == "root://bad.example:99999"
