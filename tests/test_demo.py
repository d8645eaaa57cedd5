"""The README's main command: `relieve demo` runs the lower-back routine end to end.

The demo runs at x60 (about a minute); here the same command runs at x600 with `--json`, so the
whole main job (simulated world, drivers, binding by kind, runner, supervisor, throw-away ledger)
is exercised in seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RELIEVE = str(Path(sys.executable).parent / "relieve")


def test_demo_runs_the_routine_to_the_end_with_every_device_off(tmp_path: Path) -> None:
    result = subprocess.run(
        [RELIEVE, "--config-dir", str(tmp_path), "demo", "--json", "--speed", "600"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert all({"t", "type"} <= set(e) for e in events)
    started, finished = events[0], events[-1]
    assert started["type"] == "started"
    assert started["profile"] == "routine-lower-back"
    assert started["simulated"] is True
    assert set(started["devices"]) == {"heat", "cold", "gun", "probe"}
    modes = [e["mode"] for e in events if e["type"] == "phase"]
    order = [m for i, m in enumerate(modes) if i == 0 or modes[i - 1] != m]
    assert order[:3] == ["massage", "stretch", "off"]
    assert order[-3:] == ["heat", "cold", "off"]
    assert [e for e in events if e["type"] == "alarm"] == []
    assert finished == {
        "type": "finished",
        "t": finished["t"],
        "outcome": "completed",
        "delivered_s": finished["delivered_s"],
        "devices_off": True,
        "recorded": True,
    }
    assert finished["t"] >= 50 * 60
