"""Real processes in real time: `relieve sim serve` on a unix socket, and reading what
`relieve run --json` and the server's `--events-json` write, line by line.

Shared by the tests that kill (-9) or freeze (-STOP) a controller mid-heat.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

RELIEVE = str(Path(sys.executable).parent / "relieve")
HEAT_PAD = "C0:DE:00:00:00:02"
READY_S = 30.0  # real seconds to wait for the server, and for the heat phase to begin

# 34 °C is within 1 °C of the resting plate, so pre-heat ends at once and a test reaches the
# heat phase without waiting for real-time physics.
WARM_MINUTE = """
name = "warm-minute"
title = "One warm minute"
kind = "heat"
area = "lower-back"

[heat]
minutes = 1
celsius = 34
"""


def json_lines(path: Path) -> list[dict[str, object]]:
    """The complete JSON lines written to ``path`` so far (a line still being written is not)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = READY_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@contextlib.contextmanager
def sim_server(tmp_path: Path, scenario: str | None = None) -> Iterator[tuple[str, Path]]:
    """`relieve sim serve --events-json` (with the scenario text, if any): its client spec and
    the file its events go to. Stopped with SIGTERM at the end."""
    socket = tmp_path / "sim.sock"
    events = tmp_path / "events.jsonl"
    command = [RELIEVE, "sim", "serve", "--socket", str(socket), "--events-json"]
    if scenario is not None:
        path = tmp_path / "scenario.toml"
        path.write_text(scenario)
        command += ["--scenario", str(path)]
    with events.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(socket.exists, "the simulator server")
        yield f"unix:{socket}", events
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
