"""The exposure ledger: what is recorded is read back, exposure per local day and area, errors."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from controller.ledger import DeviceInfo, Ledger, LedgerError

# A local timezone two hours east of UTC (summer time in central Europe), fixed for the tests.
CEST = timezone(timedelta(hours=2), "CEST")
# 10:00 local on Tuesday 7 May 2024.
T0 = datetime(2024, 5, 7, 10, 0, tzinfo=CEST)
LEASE_S = 5.0  # the open profile's lease: the worst case after a crash (H4)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def open_ledger(path: Path, *, simulated: bool = False, now: datetime = T0) -> Ledger:
    return Ledger.open(path, simulated=simulated, now=lambda: now, tz=CEST)


def record_contrast(ledger: Ledger, start: datetime, cycles: int = 3) -> int:
    """A contrast session as the runner records it: heat and cold phases of 5 minutes."""
    recorder = ledger.start_session(
        "contrast-lower-back",
        "contrast",
        started_at=start,
        devices={"heat": DeviceInfo("AA:BB:CC:00:00:01", "Relieve Pad", "open-thermal")},
    )
    at = start
    for _ in range(cycles):
        recorder.phase_started("heat", "lower-back", at, celsius=42.0, worst_case_s=LEASE_S)
        at += minutes(5)
        recorder.heartbeat(at)
        recorder.phase_started("cold", "lower-back", at, celsius=12.0, worst_case_s=LEASE_S)
        at += minutes(5)
    recorder.finish("completed", at)
    return recorder.id


def test_a_session_is_read_back_as_recorded(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        recorder = ledger.start_session(
            "massage-extended",
            "massage",
            started_at=T0,
            devices={"gun": DeviceInfo("AA:BB:CC:00:00:02", None, "theragun")},
            overrides=["M1"],
            extended=True,
        )
        recorder.phase_started("massage", "left-glute", T0, rpm=1750, worst_case_s=0.0)
        recorder.alarm("S4", "medium", "The gun's link dropped.", T0 + minutes(1))
        recorder.phase_ended(T0 + minutes(2))
        recorder.finish("stopped", T0 + minutes(3))
        (session,) = ledger.sessions()
    assert session.id == recorder.id
    assert (session.profile, session.kind, session.outcome) == (
        "massage-extended",
        "massage",
        "stopped",
    )
    assert session.started_at == T0
    assert session.ended_at == T0 + minutes(3)
    assert session.duration_s == 180
    assert session.devices["gun"] == DeviceInfo("AA:BB:CC:00:00:02", None, "theragun")
    assert session.overrides == ("M1",)
    assert session.extended
    assert not session.simulated
    (alarm,) = session.alarms
    assert (alarm.limit_id, alarm.priority, alarm.at) == ("S4", "medium", T0 + minutes(1))
    assert alarm.message == "The gun's link dropped."
    (phase,) = session.phases
    assert (phase.mode, phase.area, phase.rpm) == ("massage", "left-glute", 1750)
    assert (phase.started_at, phase.ended_at) == (T0, T0 + minutes(2))
    assert not phase.estimated


def test_times_are_stored_as_utc_iso_8601_with_offset(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        record_contrast(ledger, T0, cycles=1)
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        (started,) = conn.execute("SELECT started_at FROM sessions").fetchone()
    conn.close()
    assert started == "2024-05-07T08:00:00.000000+00:00"


def test_every_write_is_visible_to_another_process_at_once(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        recorder = ledger.start_session("heat-soak", "heat", started_at=T0)
        recorder.phase_started("heat", "lower-back", T0, celsius=40.0, worst_case_s=LEASE_S)
        recorder.heartbeat(T0 + minutes(3))
        with open_ledger(tmp_path) as other:  # a second connection, as another process has
            (session,) = other.sessions()
            assert session.outcome == "running"
            assert session.heartbeat_at == T0 + minutes(3)
            assert session.phases[0].ended_at is None
        recorder.finish("completed", T0 + minutes(10))


def test_a_new_phase_ends_the_open_one_and_finish_ends_the_last(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        session_id = record_contrast(ledger, T0, cycles=2)
        phases = ledger.session(session_id).phases
    assert [p.mode for p in phases] == ["heat", "cold", "heat", "cold"]
    assert [p.started_at for p in phases] == [T0 + minutes(5 * i) for i in range(4)]
    assert [p.ended_at for p in phases] == [T0 + minutes(5 * (i + 1)) for i in range(4)]


def test_finish_is_idempotent_and_releases_the_session_lock(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        recorder = ledger.start_session("heat-soak", "heat", started_at=T0)
        assert list((tmp_path / "locks").iterdir()), "a running session holds a lock file"
        recorder.finish("aborted", T0 + minutes(1))
        recorder.finish("completed", T0 + minutes(9))  # the second call changes nothing
        assert ledger.session(recorder.id).outcome == "aborted"
        assert ledger.session(recorder.id).ended_at == T0 + minutes(1)
        assert not list((tmp_path / "locks").iterdir())
        with pytest.raises(LedgerError, match="already finished"):
            recorder.heartbeat(T0 + minutes(2))


def test_the_recorder_outlives_the_ledger_that_started_it(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    recorder = ledger.start_session("heat-soak", "heat", started_at=T0)
    ledger.close()
    recorder.phase_started("heat", "lower-back", T0, celsius=40.0, worst_case_s=LEASE_S)
    recorder.finish("completed", T0 + minutes(10))
    with open_ledger(tmp_path) as again:
        assert again.session(recorder.id).outcome == "completed"


def test_leaving_the_recorder_block_unfinished_records_aborted(tmp_path: Path) -> None:
    def run_and_fail(ledger: Ledger) -> int:
        with ledger.start_session("heat-soak", "heat", started_at=T0) as recorder:
            recorder.heartbeat(T0 + minutes(2))
            failed.append(recorder.id)
            raise RuntimeError("the runner failed")

    failed: list[int] = []
    with open_ledger(tmp_path) as ledger:
        with pytest.raises(RuntimeError, match="the runner failed"):
            run_and_fail(ledger)
        session = ledger.session(failed[0])
    assert session.outcome == "aborted"
    assert session.ended_at == T0 + minutes(2)


def test_exposure_counts_contrast_into_heat_and_cold_per_area(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        record_contrast(ledger, T0)
        recorder = ledger.start_session(
            "massage-lower-back", "massage", started_at=T0 + minutes(40)
        )
        recorder.phase_started("massage", "left-glute", T0 + minutes(40), rpm=1750, worst_case_s=0)
        recorder.phase_started("massage", "right-glute", T0 + minutes(41), rpm=1750, worst_case_s=0)
        recorder.phase_started("stretch", "lower-back", T0 + minutes(42), worst_case_s=0)
        recorder.finish("completed", T0 + minutes(43))
        exposure = ledger.exposure(date(2024, 5, 7))
        yesterday = ledger.exposure(date(2024, 5, 6))
    assert exposure.of("heat", "lower-back") == 15 * 60
    assert exposure.of("cold", "lower-back") == 15 * 60
    assert exposure.of("massage", "left-glute") == 60
    assert exposure.of("massage") == 120
    assert exposure.areas == ("left-glute", "lower-back", "right-glute")
    assert yesterday.of("heat") == 0


def test_exposure_days_are_local_days_and_a_session_over_midnight_is_split(tmp_path: Path) -> None:
    late = datetime(2024, 5, 7, 23, 55, tzinfo=CEST)  # 21:55 UTC: the same UTC day
    with open_ledger(tmp_path, now=late) as ledger:
        recorder = ledger.start_session("heat-soak", "heat", started_at=late)
        recorder.phase_started("heat", "lower-back", late, celsius=40.0, worst_case_s=LEASE_S)
        recorder.finish("completed", late + minutes(10))
        assert ledger.exposure(date(2024, 5, 7)).of("heat") == 5 * 60
        assert ledger.exposure(date(2024, 5, 8)).of("heat") == 5 * 60
        assert ledger.exposure().of("heat") == 5 * 60  # default: today (local)


def test_a_running_phase_counts_until_the_heartbeat_plus_its_worst_case(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        recorder = ledger.start_session("heat-soak", "heat", started_at=T0)
        recorder.phase_started("heat", "lower-back", T0, celsius=40.0, worst_case_s=LEASE_S)
        recorder.heartbeat(T0 + minutes(4))
        assert ledger.exposure(T0.date()).of("heat") == 4 * 60 + LEASE_S
        recorder.finish("stopped", T0 + minutes(4))


def test_simulated_sessions_are_kept_apart_from_real_exposure(tmp_path: Path) -> None:
    with open_ledger(tmp_path, simulated=True) as simulated:
        record_contrast(simulated, T0)
        (session,) = simulated.sessions()
        assert session.simulated
        assert simulated.path.name == "ledger-simulated.sqlite3"
    with open_ledger(tmp_path) as real:
        assert real.sessions() == []
        assert real.exposure(T0.date()).of("heat") == 0


def test_sessions_since_and_injuries_since(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        first = record_contrast(ledger, T0 - timedelta(days=1), cycles=1)
        second = record_contrast(ledger, T0, cycles=1)
        ledger.add_injury("lower-back", T0 - timedelta(days=3))
        injury = ledger.add_injury("neck", T0 - minutes(30))
        assert [s.id for s in ledger.sessions()] == [second, first]
        assert [s.id for s in ledger.sessions(T0 - minutes(1))] == [second]
        assert ledger.injuries(T0 - timedelta(days=1)) == [injury]
        assert injury.at == T0 - minutes(30)
        assert len(ledger.injuries()) == 2


def test_naive_times_are_refused(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger, pytest.raises(ValueError, match="timezone-aware"):
        ledger.add_injury("lower-back", datetime(2024, 5, 7, 10, 0))  # noqa: DTZ001 - on purpose


def test_a_temporary_ledger_is_removed_when_closed() -> None:
    ledger = Ledger.open_temporary(now=lambda: T0, tz=CEST)
    directory = ledger.data_dir
    record_contrast(ledger, T0, cycles=1)
    assert ledger.simulated
    assert (directory / "ledger-simulated.sqlite3").exists()
    ledger.close()
    assert not directory.exists()


def test_a_damaged_file_is_reported_in_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "ledger.sqlite3").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(LedgerError, match=r"is damaged .*move it aside") as caught:
        open_ledger(tmp_path)
    assert "\n" not in str(caught.value)


def test_a_data_dir_that_cannot_be_created_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LedgerError, match=r"choose a writable directory with --data-dir"):
        open_ledger(blocker / "relieve")


def test_a_ledger_from_a_newer_relieve_is_refused(tmp_path: Path) -> None:
    open_ledger(tmp_path).close()
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(LedgerError, match="newer relieve"):
        open_ledger(tmp_path)


def test_a_busy_database_is_reported_as_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("controller.ledger.store.BUSY_TIMEOUT_S", 0.05)
    with open_ledger(tmp_path) as ledger:
        blocker = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        try:
            with pytest.raises(LedgerError, match="busy in another relieve process"):
                ledger.add_injury("lower-back", T0)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()


def test_the_default_data_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELIEVE_DATA_DIR", str(tmp_path / "data"))
    with Ledger.open(now=lambda: datetime.now(UTC)) as ledger:
        assert ledger.path == tmp_path / "data" / "ledger.sqlite3"
