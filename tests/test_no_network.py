"""Transcripts are clinical data: the whole pipeline runs with every network connection refused, and
with the Hugging Face offline switch unset (so nothing relies on it to stay local)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "examples" / "session_cbt.txt"


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Any outbound connection or DNS lookup fails the test (local AF_UNIX sockets are allowed)."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:2]))
        raise NetworkAttempt(f"network access attempted: {args[:2]!r}")

    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect(self, address)
        refuse(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return attempts


def test_full_pipeline_runs_with_no_network(no_network, tmp_path):
    from alliance_nlp import Pipeline, analyze

    report = analyze([EXAMPLE], tmp_path / "out", Pipeline.from_names())
    assert report.processed == 1 and not report.failed
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["total"]["estimate"] is not None
    assert no_network == []


def test_the_guard_really_refuses(no_network):
    with pytest.raises(NetworkAttempt):
        socket.create_connection(("127.0.0.1", 9))
