"""Interrupted sessions (S3): a dead owner's session is closed with worst-case exposure, a live
owner's session is never touched. The owners are real processes, killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from controller.ledger import Ledger, LedgerError

CEST = timezone(timedelta(hours=2), "CEST")
# Long ago on purpose: an old heartbeat alone must never make a live session look dead.
T0 = datetime(2024, 5, 7, 10, 0, tzinfo=CEST)
HEARTBEAT = T0 + timedelta(seconds=90)
LEASE_S = 5.0  # the open profile's lease (H4): how long the pad heats on its own

# The owner: starts a heat session, delivers heat, beats once, says so, then waits to be killed.
OWNER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime
    from controller.ledger import Ledger

    ledger = Ledger.open(sys.argv[1])
    start, beat = datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
    recorder = ledger.start_session("heat-soak", "heat", started_at=start)
    recorder.phase_started("heat", "lower-back", start, celsius=40.0, worst_case_s=5.0)
    recorder.heartbeat(beat)
    print(recorder.id, flush=True)
    time.sleep(120)  # until the test kills it
    """
)


@contextmanager
def owner_process(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A separate process that owns a running session; killed (SIGKILL) on the way out."""
    process = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(data_dir), T0.isoformat(), HEARTBEAT.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip().isdigit(), f"the owner process did not start a session: {line!r}"
        yield process, int(line)
    finally:
        kill(process)


def kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def open_ledger(data_dir: Path) -> Ledger:
    return Ledger.open(data_dir, now=lambda: T0 + timedelta(days=1), tz=CEST)


def test_a_killed_session_is_closed_as_interrupted_with_worst_case_exposure(
    tmp_path: Path,
) -> None:
    with owner_process(tmp_path) as (process, session_id):
        kill(process)
    with open_ledger(tmp_path) as ledger:
        assert [s.id for s in ledger.recovered] == [session_id]
        session = ledger.session(session_id)
        heat = ledger.exposure(T0.date()).of("heat", "lower-back")
    assert session.outcome == "interrupted"
    assert session.ended_at == HEARTBEAT
    (phase,) = session.phases
    assert phase.ended_at == HEARTBEAT + timedelta(seconds=LEASE_S)
    assert phase.estimated
    assert heat == 90 + LEASE_S
    assert [a.limit_id for a in session.alarms] == ["S3"]
    assert not list((tmp_path / "locks").iterdir()), "the dead owner's lock file is removed"


def test_a_session_whose_owner_lives_is_never_touched(tmp_path: Path) -> None:
    with owner_process(tmp_path) as (process, session_id):
        for _ in range(2):  # opening again and again changes nothing
            with open_ledger(tmp_path) as ledger:
                assert ledger.recovered == ()
                session = ledger.session(session_id)
                assert session.outcome == "running"
                assert session.ended_at is None
                assert session.phases[0].ended_at is None
                # Exposure still counts it, to the worst case after its last heartbeat.
                assert ledger.exposure(T0.date()).of("heat") == 90 + LEASE_S
        assert process.poll() is None
    with open_ledger(tmp_path) as ledger:  # now it is dead
        assert [s.id for s in ledger.recovered] == [session_id]


def test_a_session_running_in_this_process_is_live_too(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        recorder = ledger.start_session("heat-soak", "heat", started_at=T0)
        with open_ledger(tmp_path) as other:
            assert other.recovered == ()
            assert other.session(recorder.id).outcome == "running"
        recorder.finish("completed", T0 + timedelta(minutes=10))
        assert ledger.session(recorder.id).outcome == "completed"


def test_without_its_lock_file_a_dead_owner_is_told_by_its_pid(tmp_path: Path) -> None:
    with owner_process(tmp_path) as (process, session_id):
        kill(process)
    for lock in (tmp_path / "locks").iterdir():
        lock.unlink()
    with open_ledger(tmp_path) as ledger:
        assert [s.id for s in ledger.recovered] == [session_id]
        assert ledger.session(session_id).outcome == "interrupted"


def test_without_its_lock_file_a_live_owner_is_still_left_alone(tmp_path: Path) -> None:
    with owner_process(tmp_path) as (_, session_id):
        for lock in (tmp_path / "locks").iterdir():
            lock.unlink()
        with open_ledger(tmp_path) as ledger:
            assert ledger.recovered == ()
            assert ledger.session(session_id).outcome == "running"


def test_when_finish_cannot_write_the_lock_is_still_released_and_the_session_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("controller.ledger.store.RECORDER_BUSY_TIMEOUT_S", 0.05)
    with open_ledger(tmp_path) as ledger:
        recorder = ledger.start_session("heat-soak", "heat", started_at=T0)
        recorder.phase_started("heat", "lower-back", T0, celsius=40.0, worst_case_s=LEASE_S)
        recorder.heartbeat(HEARTBEAT)
        blocker = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(LedgerError, match="busy"):
                recorder.finish("completed", HEARTBEAT + timedelta(minutes=8))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        recorder.finish("completed", HEARTBEAT + timedelta(minutes=8))  # already done: no-op
    with open_ledger(tmp_path) as ledger:
        assert [s.id for s in ledger.recovered] == [recorder.id]
        session = ledger.session(recorder.id)
    assert (session.outcome, session.ended_at) == ("interrupted", HEARTBEAT)
    assert session.phases[0].ended_at == HEARTBEAT + timedelta(seconds=LEASE_S)
