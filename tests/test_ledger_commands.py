"""Commands in the ledger: every command the controller is given, with its source and whether it
was carried out, is recorded and read back; remote text is bounded and cleaned; older files gain
the table, newer ones are refused; failures are one sentence."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from controller.ledger import SCHEMA_VERSION, CommandRecord, Ledger, LedgerError
from tests.session_harness import file_size_limit

CEST = timezone(timedelta(hours=2), "CEST")
T0 = datetime(2024, 5, 7, 10, 0, tzinfo=CEST)
ELLIPSIS = "\u2026"


def open_ledger(path: Path, *, now: datetime = T0) -> Ledger:
    return Ledger.open(path, now=lambda: now, tz=CEST)


def user_version(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def test_commands_are_read_back_newest_first_with_their_fields(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        recorder = ledger.start_session("heat-soak", "heat", started_at=T0)
        start = ledger.record_command(
            "start",
            source="mqtt",
            accepted=True,
            detail="heat-soak",
            session_id=recorder.id,
            at=T0,
        )
        pause = ledger.record_command(
            "pause",
            source="socket pid 4242",
            accepted=True,
            session_id=recorder.id,
            at=T0 + timedelta(minutes=3),
        )
        refused = ledger.record_command(
            "resume",
            source="mqtt",
            accepted=False,
            reason="The session is not paused.",
            at=T0 + timedelta(minutes=2),
        )
        stop = ledger.record_command("stop", source="relieve stop", accepted=True)  # at: now
        recorder.finish("stopped", T0 + timedelta(minutes=4))
        everything = ledger.commands()
        recent = ledger.commands(since=T0 + timedelta(minutes=2))
        newest = ledger.commands(limit=1)
        assert ledger.commands(limit=0) == []
        with pytest.raises(ValueError, match="negative"):
            ledger.commands(limit=-1)
    # stop was recorded last but at the ledger's now (T0): order is by time, then by record
    assert everything == [pause, refused, stop, start]
    assert recent == [pause, refused]
    assert newest == [pause]
    assert stop.at == T0
    assert start == CommandRecord(
        id=start.id,
        at=T0,
        source="mqtt",
        command="start",
        detail="heat-soak",
        accepted=True,
        reason=None,
        session_id=recorder.id,
    )
    assert (refused.accepted, refused.reason, refused.session_id) == (
        False,
        "The session is not paused.",
        None,
    )
    assert len({c.id for c in everything}) == 4


def test_times_are_stored_like_the_other_timestamps(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        ledger.record_command("stop", source="mqtt", accepted=True)
        with pytest.raises(ValueError, match="timezone-aware"):
            ledger.record_command(
                "stop",
                source="mqtt",
                accepted=True,
                at=datetime(2024, 5, 7, 10, 0),  # noqa: DTZ001 - on purpose
            )
    with contextlib.closing(sqlite3.connect(tmp_path / "ledger.sqlite3")) as conn:
        rows = conn.execute("SELECT at, accepted FROM commands").fetchall()
    assert rows == [("2024-05-07T08:00:00.000000+00:00", 1)]


def test_remote_texts_are_cut_to_their_bounds_and_control_characters_removed(
    tmp_path: Path,
) -> None:
    hostile = "x" * 1_000_000
    with open_ledger(tmp_path) as ledger:
        long = ledger.record_command(
            hostile, source=hostile, accepted=False, reason=hostile, detail=hostile
        )
        dirty = ledger.record_command(
            "\x1b[2Jstop\x00\x7f",
            source="  mqtt\r\nclient\u202e evil\ud800  ",
            accepted=True,
            detail="\x00\x01\u200b",  # nothing printable: no detail
            reason="line one\nline two\ttab\x85next\u2028end",
        )
        exact = ledger.record_command("c" * 32, source="s" * 80, accepted=True)
        ours = ledger.record_command("emergency-stop", source="relieve stop", accepted=True)
        stored = ledger.commands()
    lengths = [len(text or "") for text in (long.source, long.command, long.detail, long.reason)]
    assert lengths == [80, 32, 200, 300]
    assert long.source == "x" * 79 + ELLIPSIS
    assert long.command.endswith(ELLIPSIS)
    assert (dirty.command, dirty.source) == ("[2Jstop", "mqtt  client evil")
    assert dirty.detail is None
    assert dirty.reason == "line one line two tab next end"
    assert (exact.command, exact.source) == ("c" * 32, "s" * 80)  # at the bound: kept whole
    assert (ours.command, ours.source) == ("emergency-stop", "relieve stop")
    # what was returned is what the file holds
    assert stored == [ours, exact, dirty, long]
    with contextlib.closing(sqlite3.connect(tmp_path / "ledger.sqlite3")) as conn:
        (longest,) = conn.execute(
            "SELECT max(length(source) + length(command) + length(coalesce(detail, '')) "
            "+ length(coalesce(reason, ''))) FROM commands"
        ).fetchone()
    assert longest == 80 + 32 + 200 + 300


# The tables as relieve 1 and 2 wrote them, frozen here: what an old file on disk holds.
_OLD_SCHEMA = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile TEXT NOT NULL,
    kind TEXT NOT NULL,
    devices TEXT NOT NULL DEFAULT '{{}}',
    started_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT NOT NULL DEFAULT 'running'
        CHECK (outcome IN ('running', 'completed', 'stopped', 'aborted', 'interrupted')),
    alarms TEXT NOT NULL DEFAULT '[]',
    overrides TEXT NOT NULL DEFAULT '[]',
    extended INTEGER NOT NULL DEFAULT 0,
    simulated INTEGER NOT NULL DEFAULT 0,
    owner_pid INTEGER NOT NULL,
    owner_host TEXT NOT NULL,
    owner_token TEXT NOT NULL UNIQUE,
    heartbeat_at TEXT NOT NULL{planned}
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_outcome ON sessions (outcome);
CREATE TABLE phases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    mode TEXT NOT NULL CHECK (mode IN ('heat', 'cold', 'massage', 'stretch', 'off')),
    area TEXT,
    celsius REAL,
    rpm INTEGER,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    worst_case_s REAL NOT NULL CHECK (worst_case_s >= 0),
    estimated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX phases_session ON phases (session_id);
CREATE TABLE injuries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    area TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX injuries_at ON injuries (at);
"""


def write_old_ledger(path: Path, version: int) -> None:
    """A ledger file as relieve ``version`` (1 or 2) left it: one completed heat session."""
    planned = ",\n    planned TEXT NOT NULL DEFAULT '[]'" if version == 2 else ""
    start, end = "2024-05-07T08:00:00.000000+00:00", "2024-05-07T08:10:00.000000+00:00"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(_OLD_SCHEMA.format(planned=planned))
        conn.execute(
            "INSERT INTO sessions (profile, kind, started_at, ended_at, outcome, owner_pid, "
            "owner_host, owner_token, heartbeat_at) "
            "VALUES ('heat-soak', 'heat', ?, ?, 'completed', 1, 'host', 'token', ?)",
            (start, end, end),
        )
        conn.execute(
            "INSERT INTO phases (session_id, mode, area, celsius, started_at, ended_at, "
            "worst_case_s) VALUES (1, 'heat', 'lower-back', 40.0, ?, ?, 5.0)",
            (start, end),
        )
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_file_gains_the_commands_table_and_keeps_its_sessions(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "ledger.sqlite3"
    write_old_ledger(path, version)
    with open_ledger(tmp_path) as ledger:
        (session,) = ledger.sessions()
        assert ledger.commands() == []
        record = ledger.record_command(
            "stop", source="mqtt", accepted=False, reason="Nothing runs.", session_id=session.id
        )
        assert ledger.commands() == [record]
    assert (session.profile, session.outcome, session.planned) == ("heat-soak", "completed", ())
    (phase,) = session.phases
    assert (phase.mode, phase.area, phase.celsius) == ("heat", "lower-back", 40.0)
    assert session.duration_s == 600
    assert user_version(path) == SCHEMA_VERSION == 3


def test_a_file_of_this_version_is_read_again(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        first = ledger.record_command("arm", source="relieve arm", accepted=True)
    assert user_version(tmp_path / "ledger.sqlite3") == SCHEMA_VERSION
    with open_ledger(tmp_path) as again:
        second = again.record_command("start", source="mqtt", accepted=True, detail="heat-soak")
        assert again.commands() == [second, first]


def test_a_file_from_a_newer_relieve_is_refused_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    open_ledger(tmp_path).close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LedgerError, match="written by a newer relieve; update relieve") as caught:
        open_ledger(tmp_path)
    assert "\n" not in str(caught.value)
    assert user_version(path) == SCHEMA_VERSION + 1  # left as it was


def test_writers_on_two_ledgers_of_one_file_all_land(tmp_path: Path) -> None:
    per_thread = 20
    first, second = open_ledger(tmp_path), open_ledger(tmp_path)
    # two processes' worth of ledgers, and a second thread on one of them (its mutex)
    writers = [(first, "first"), (second, "second"), (second, "second, again")]
    ready = threading.Barrier(len(writers))
    errors: list[BaseException] = []

    def write(ledger: Ledger, source: str) -> None:
        try:
            ready.wait(timeout=10)
            for n in range(per_thread):
                ledger.record_command("pause", source=source, accepted=True, detail=str(n))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=writer) for writer in writers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        assert not any(thread.is_alive() for thread in threads)
        seen_by_first = first.commands()
    finally:
        first.close()
        second.close()
    assert len(seen_by_first) == len(writers) * per_thread
    assert len({c.id for c in seen_by_first}) == len(seen_by_first)
    for _, source in writers:
        mine = [c.detail for c in seen_by_first if c.source == source]
        assert sorted(mine, key=lambda d: int(d or "")) == [str(n) for n in range(per_thread)]


def test_a_command_for_a_session_not_in_the_history_is_recorded_without_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with open_ledger(tmp_path) as ledger:
        record = ledger.record_command("stop", source="mqtt", accepted=True, session_id=99)
        assert ledger.commands() == [record]
    assert (record.command, record.session_id) == ("stop", None)
    assert "no session 99" in caplog.text


def test_a_withdrawn_session_leaves_its_commands_without_a_session(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        recorder = ledger.start_session("heat-soak", "heat", started_at=T0)
        ledger.record_command(
            "start", source="mqtt", accepted=True, detail="heat-soak", session_id=recorder.id
        )
        recorder.withdraw(T0)  # no device found: the session is removed
        assert ledger.sessions() == []
        (command,) = ledger.commands()
    assert (command.command, command.session_id) == ("start", None)


def test_a_full_disk_is_one_sentence_and_the_next_write_works(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        ledger.record_command("arm", source="relieve arm", accepted=True)
        wal = Path(f"{ledger.path}-wal")
        with file_size_limit(wal.stat().st_size), pytest.raises(LedgerError) as caught:
            ledger.record_command("stop", source="mqtt", accepted=True)
        message = str(caught.value)
        assert "\n" not in message
        assert str(ledger.path) in message
        assert "could not be used" in message or "cannot be written" in message, message
        (kept,) = ledger.commands()  # nothing half-written
        assert kept.command == "arm"
        again = ledger.record_command("stop", source="mqtt", accepted=True)
        assert ledger.commands() == [again, kept]


def test_a_locked_file_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("controller.ledger.store.BUSY_TIMEOUT_S", 0.05)
    with open_ledger(tmp_path) as ledger:
        blocker = sqlite3.connect(ledger.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        try:
            with pytest.raises(LedgerError, match="busy in another relieve process") as caught:
                ledger.record_command("stop", source="mqtt", accepted=True)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert "\n" not in str(caught.value)
        assert ledger.commands() == []


def test_relieve_history_commands_lists_them_newest_first_as_a_table_and_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from controller.cli.commands import main

    with Ledger.open(tmp_path, simulated=True) as ledger:
        ledger.record_command(
            "start", source="mqtt", accepted=False, reason="not armed", detail="contrast-quick"
        )
        ledger.record_command("stop", source="mqtt", accepted=True)
    assert main(["--data-dir", str(tmp_path), "history", "--simulated", "--commands"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["when", "source", "command", "result", "session", "why"]
    assert table[1].split()[2:5] == ["mqtt", "stop", "accepted"]
    assert table[2].split()[2:6] == ["mqtt", "start", "contrast-quick", "refused"]
    assert table[2].endswith("not armed")
    assert (
        main(["--data-dir", str(tmp_path), "history", "--simulated", "--commands", "--json"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [(r["command"], r["accepted"], r["reason"]) for r in rows] == [
        ("stop", True, None),
        ("start", False, "not armed"),
    ]
    assert rows[1]["detail"] == "contrast-quick"
