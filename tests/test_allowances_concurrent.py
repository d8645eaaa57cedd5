"""Allowances hold across processes: checking and recording a session are one step.

Several ``relieve run`` processes started at the same moment on one data directory: exactly as
many run as the rules allow, and every other one is refused in one sentence naming the rule and
the earliest time. Each process scans for its devices by kind (two real seconds), so without the
reservation every one of them would pass the check before any recorded its session.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from controller.ledger import Ledger
from controller.library import ProfileLibrary
from profiles.compiler import compile_plan
from tests.session_harness import HEAT_MINUTE

TIMEOUT_S = 60.0
GUN = "C0:DE:00:00:00:04"  # the simulated massage gun's address
NO_CONFIG = Path("/nonexistent-relieve-config")
SPEED = "600"


# 12 minutes of massage: three make 36 of the daily 45 (M4); a fourth would make 48.
MASSAGE_TWELVE = """
name = "massage-twelve"
title = "Twelve minutes of massage"
kind = "massage"
area = "lower-back"

[massage]
minutes = 12
speed = "low"

[[massage.areas]]
name = "left-glute"
seconds = 90

[[massage.areas]]
name = "right-glute"
seconds = 90
"""

# "it can start at 14:35", "... can start tomorrow at 08:10", "... can start Thu 9 May at 09:10"
EARLIEST = re.compile(r"can start (at |tomorrow at |\w{3} \d{1,2} \w{3} at )\d\d:\d\d")


def _start_together(tmp_path: Path, profile_text: str, count: int) -> list[subprocess.Popen[str]]:
    data, config = tmp_path / "data", tmp_path / "config"
    config.mkdir(exist_ok=True)
    profile = tmp_path / "profile.toml"
    profile.write_text(profile_text, encoding="utf-8")
    command = [
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
        "--yes",
        "--json",
    ]
    return [
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def _outcomes(processes: list[subprocess.Popen[str]]) -> tuple[list[str], list[str]]:
    """(the stdout of every process that ran, the stderr of every one that was refused)."""
    ran, refused = [], []
    for process in processes:
        out, err = process.communicate(timeout=TIMEOUT_S)
        assert "Traceback" not in err, err
        if out:  # it started: it ran to its end
            assert process.returncode == 0, out.splitlines()[-1]
            ran.append(out)
        else:  # refused before anything started
            assert process.returncode == 1, err
            refused.append(err)
    return ran, refused


def test_of_four_heat_sessions_started_at_once_exactly_one_runs(tmp_path: Path) -> None:
    ran, refused = _outcomes(_start_together(tmp_path, HEAT_MINUTE, 4))
    assert len(ran) == 1, refused
    assert '"outcome": "completed"' in ran[0].splitlines()[-1]
    assert len(refused) == 3
    for err in refused:
        assert err.count("\n") == 1, err  # one sentence
        assert err.startswith("relieve: ")
        assert "(H5" in err
        assert EARLIEST.search(err), err
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        sessions = ledger.sessions()
    assert [s.outcome for s in sessions] == ["completed"]


def test_of_four_twelve_minute_massages_started_at_once_exactly_three_run(
    tmp_path: Path,
) -> None:
    ran, refused = _outcomes(_start_together(tmp_path, MASSAGE_TWELVE, 4))
    assert len(ran) == 3, refused
    assert len(refused) == 1
    (err,) = refused
    assert err.count("\n") == 1, err
    assert "(M4" in err
    assert EARLIEST.search(err), err
    with Ledger.open(tmp_path / "data", simulated=True) as ledger:
        assert sorted(s.outcome for s in ledger.sessions()) == ["completed"] * 3
    for out in ran:
        assert '"outcome": "completed"' in out.splitlines()[-1]


# A process that reserves a heat session and then waits, as `relieve run` does while it scans.
RESERVE_AND_WAIT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from controller.ledger import Ledger
    from controller.library import ProfileLibrary
    from profiles.compiler import compile_plan
    library = ProfileLibrary(Path("/nonexistent-relieve-config"))
    plan = compile_plan(library.get("heat-soak"), resolve=library.get)
    ledger = Ledger.open(sys.argv[1], simulated=True)
    recorder, _ = ledger.reserve(plan)
    print(recorder.id, flush=True)
    time.sleep(60)
    """
)


def test_a_reservation_counts_while_its_process_lives_and_is_closed_when_it_dies(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    library = ProfileLibrary(NO_CONFIG)
    plan = compile_plan(library.get("heat-soak"), resolve=library.get)
    holder = subprocess.Popen(
        [sys.executable, "-c", RESERVE_AND_WAIT, str(data)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        session_id = int(holder.stdout.readline())
        with Ledger.open(data, simulated=True) as ledger:
            assert ledger.recovered == ()  # its lock is held: left alone
            with pytest.raises(Exception, match=r"\(H5\)"):
                ledger.reserve(plan)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=TIMEOUT_S)
    with Ledger.open(data, simulated=True) as ledger:
        assert [s.id for s in ledger.recovered] == [session_id]
        assert ledger.session(session_id).outcome == "interrupted"
        # it never delivered heat, so it does not count against H5
        recorder, _ = ledger.reserve(plan)
        recorder.withdraw(ledger.now())
        assert [s.id for s in ledger.sessions()] == [session_id]


def test_a_session_that_finds_no_device_leaves_nothing_in_the_history(tmp_path: Path) -> None:
    data, config = tmp_path / "data", tmp_path / "config"
    config.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "--data-dir",
            str(data),
            "--config-dir",
            str(config),
            "run",
            "heat-soak",
            "--simulate",
            "--heat",
            GUN,  # not a heat pad: binding fails after the reservation
            "--yes",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "is not a heat pad" in result.stderr
    with Ledger.open(data, simulated=True) as ledger:
        assert ledger.sessions() == []
