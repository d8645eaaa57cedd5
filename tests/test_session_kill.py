"""A controller killed with SIGKILL mid-heat: the pad turns itself off, the ledger says so.

Real processes, real time: `relieve sim serve` on a unix socket, `relieve run` against it, and
`kill -9` of the controller once the heat phase has begun. The simulated pad must report OFF
within its lease (at most 5 s; on the open profile a lost link turns it off at once), and
`relieve history` must then show the session as interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

RELIEVE = str(Path(sys.executable).parent / "relieve")
HEAT_PAD = "C0:DE:00:00:00:02"
LEASE_MAX_S = 5.0  # H4
READY_S = 30.0  # real seconds to wait for the server, and for the heat phase to begin

WARM_MINUTE = """
name = "warm-minute"
title = "One warm minute"
kind = "heat"
area = "lower-back"

[heat]
minutes = 1
celsius = 34
"""
# 34 °C is within 1 °C of the resting plate, so pre-heat ends at once and the test reaches the
# heat phase without waiting for real-time physics.


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = READY_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    socket = tmp_path / "sim.sock"
    events = tmp_path / "events.jsonl"
    with events.open("w") as out:
        proc = subprocess.Popen(
            [RELIEVE, "sim", "serve", "--socket", str(socket), "--events-json"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        _wait_for(socket.exists, "the simulator server")
        yield f"unix:{socket}", events
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(90)
def test_kill_9_mid_heat_leaves_the_pad_off_and_the_session_interrupted(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    spec, events = server
    profile = tmp_path / "warm.toml"
    profile.write_text(WARM_MINUTE)
    data = tmp_path / "data"
    session_out = tmp_path / "run.jsonl"
    with session_out.open("w") as out:
        controller = subprocess.Popen(
            [RELIEVE, "--data-dir", str(data), "run", str(profile), "--simulator", spec,
             "--heat", HEAT_PAD, "--yes", "--json"],
            stdout=out,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def heating() -> bool:
        phases = [e for e in _lines(session_out) if e.get("type") == "phase"]
        return any(p.get("mode") == "heat" for p in phases)

    try:
        _wait_for(heating, "the heat phase")
        pad_on = [e for e in _lines(events) if e["device"] == "heat-pad" and e["on"]]
        assert pad_on, "the simulated pad never reported ON"
        os.kill(controller.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        controller.wait(timeout=10)
    finally:
        if controller.poll() is None:
            controller.kill()

    def pad_off_after_kill() -> bool:
        states = [e for e in _lines(events) if e["device"] == "heat-pad"]
        return bool(states) and not states[-1]["on"]

    _wait_for(pad_off_after_kill, "the pad to turn itself off", timeout_s=LEASE_MAX_S + 1)
    assert time.monotonic() - killed_at <= LEASE_MAX_S + 0.5

    history = subprocess.run(
        [RELIEVE, "--data-dir", str(data), "history", "--simulated", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    sessions = json.loads(history.stdout)
    assert [s["outcome"] for s in sessions] == ["interrupted"]
    assert sessions[0]["profile"] == "warm-minute"
    assert sessions[0]["phases"], "the heat delivered before the kill is in the ledger"
