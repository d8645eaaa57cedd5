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
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sim_processes import (
    HEAT_PAD,
    RELIEVE,
    WARM_MINUTE,
    json_lines,
    sim_server,
    wait_for,
)

LEASE_MAX_S = 5.0  # H4


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with sim_server(tmp_path) as served:
        yield served


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
        phases = [e for e in json_lines(session_out) if e.get("type") == "phase"]
        return any(p.get("mode") == "heat" for p in phases)

    try:
        wait_for(heating, "the heat phase")
        pad_on = [e for e in json_lines(events) if e["device"] == "heat-pad" and e["on"]]
        assert pad_on, "the simulated pad never reported ON"
        os.kill(controller.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        controller.wait(timeout=10)
    finally:
        if controller.poll() is None:
            controller.kill()

    def pad_off_after_kill() -> bool:
        states = [e for e in json_lines(events) if e["device"] == "heat-pad"]
        return bool(states) and not states[-1]["on"]

    wait_for(pad_off_after_kill, "the pad to turn itself off", timeout_s=LEASE_MAX_S + 1)
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
