"""``relieve run`` on simulated devices: allowances before a session, --json output, consent.

The sessions run in this process through ``controller.cli.commands`` (a ScaledClock at x600, so a
short profile takes well under a second), with their own data and configuration directories.
The refusal without a terminal runs ``relieve`` as a separate process with no terminal.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.cli import main
from controller.ledger import Ledger, allowances
from tests.session_harness import HEAT_MINUTE

HEAT_PAD = "C0:DE:00:00:00:02"
PROBE = "C0:DE:00:00:00:07"
SPEED = "600"
SUBPROCESS_TIMEOUT_S = 30.0


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(data dir, config dir, a one-minute heat profile file)."""
    data, config = tmp_path / "data", tmp_path / "config"
    config.mkdir()
    profile = tmp_path / "heat-minute.toml"
    profile.write_text(HEAT_MINUTE, encoding="utf-8")
    return data, config, profile


def _run(data: Path, config: Path, profile: Path, *extra: str) -> int:
    return main(
        [
            "--data-dir",
            str(data),
            "--config-dir",
            str(config),
            "run",
            str(profile),
            "--simulate",
            "--speed",
            SPEED,
            "--heat",
            HEAT_PAD,
            "--probe",
            PROBE,
            "--yes",
            "--json",
            *extra,
        ]
    )


def _record_heat_sessions(data: Path, starts: list[datetime]) -> None:
    """Heat sessions in the simulated ledger, ten minutes of heat each, as a run leaves them."""
    with Ledger.open(data, simulated=True) as ledger:
        for start in starts:
            recorder = ledger.start_session("heat-soak", "heat", started_at=start)
            recorder.phase_started("heat", "lower-back", start, worst_case_s=0.0, celsius=40.0)
            recorder.finish("completed", start + timedelta(minutes=10))


def _events(out: str) -> list[dict[str, object]]:
    lines = out.splitlines()
    assert lines, "no output"
    return [json.loads(line) for line in lines]


def test_a_fourth_heat_session_is_refused_naming_h5_and_the_override_runs_it(
    dirs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, config, profile = dirs
    now = datetime.now(UTC)
    starts = [now - timedelta(minutes=m) for m in (40, 30, 20)]
    _record_heat_sessions(data, starts)
    # the earliest time the rules allow another heat session, as relieve names it
    today = allowances.local_day(now)
    heat_today = [s for s in starts if allowances.local_day(s) == today]
    earliest = starts[-1] + timedelta(hours=2)
    if len(heat_today) >= 3:
        earliest = max(earliest, allowances.day_end(today))
    when = allowances.when_text(earliest, now)

    assert _run(data, config, profile) == 1
    out, err = capsys.readouterr()
    assert out == ""  # nothing started
    assert err.count("\n") == 1
    assert err.startswith("relieve: ")
    assert "(H5)" in err
    assert when in err
    with Ledger.open(data, simulated=True) as ledger:
        assert len(ledger.sessions()) == 3

    assert _run(data, config, profile, "--override-allowance", "H5") == 0
    out, _ = capsys.readouterr()
    finished = _events(out)[-1]
    assert finished["type"] == "finished"
    assert finished["outcome"] == "completed"
    with Ledger.open(data, simulated=True) as ledger:
        sessions = ledger.sessions()
    assert len(sessions) == 4
    newest = sessions[0]
    assert newest.profile == "heat-minute"
    assert newest.outcome == "completed"
    assert newest.overrides == ("H5",)
    assert [p.mode for p in newest.phases] == ["heat"]


def test_json_output_is_one_event_a_line_ending_with_finished(
    dirs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, config, profile = dirs
    assert _run(data, config, profile) == 0
    out, err = capsys.readouterr()
    assert err == ""
    events = _events(out)  # every line is one JSON object
    assert all(isinstance(e, dict) for e in events)
    assert all("t" in e and "type" in e for e in events)
    assert events[0]["type"] == "started"
    assert events[0]["simulated"] is True
    assert events[0]["speed"] == float(SPEED)
    assert [e["type"] for e in events].count("finished") == 1
    finished = events[-1]
    assert finished["type"] == "finished"
    assert finished["outcome"] == "completed"
    assert finished["devices_off"] is True
    phases = [e["mode"] for e in events if e["type"] == "phase"]
    assert phases == ["preheat", "heat", "off"]


def test_run_without_yes_and_without_a_terminal_refuses_and_turns_nothing_on(
    dirs: tuple[Path, Path, Path],
) -> None:
    data, config, profile = dirs
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "--data-dir",
            str(data),
            "--config-dir",
            str(config),
            "run",
            str(profile),
            "--simulate",
            "--speed",
            SPEED,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""  # no session started, no device was even looked for
    message = done.stderr.strip()
    assert message.count("\n") == 0
    assert message.startswith("relieve: ")
    assert message.count(". ") == 0
    assert message.endswith(".")
    assert "--yes" in message
    with Ledger.open(data, simulated=True) as ledger:
        assert ledger.sessions() == []
