"""The exposure ledger: every session, the phases it delivered, recorded injuries (S3), and the
commands the controller was given, with their source.

One SQLite file (stdlib ``sqlite3``, WAL) in the data directory: ``ledger.sqlite3`` for real
devices, ``ledger-simulated.sqlite3`` for simulated ones, so simulated minutes never count against
real exposure. Every write commits at once (``synchronous=FULL``): nothing recorded is lost when the
process dies.

A running session is owned by the process that records it. That process holds an exclusive
``flock`` on ``locks/<ledger>-<token>.lock`` for the whole session; the operating system releases
it when the process ends, even on ``kill -9``. Opening the ledger closes every session whose lock
is free as ``interrupted``: it ended at its last heartbeat, and its open phase is counted until
the heartbeat plus the device's own bound (lease or timer), the worst case (S3). A session whose
lock is held is never touched, however old its heartbeat.

Timestamps come from the caller (the session engine knows when things happened, also in
rehearsals that run faster than real time) and are stored as UTC ISO-8601 with offset.

This module holds :class:`Ledger` (opening, reading, recording commands, allowance checks,
recovery); the records, tables and row conversion are in :mod:`controller.ledger.records`, the
recorder of a running session and its lock files in :mod:`controller.ledger.recorder`. Callers
import from :mod:`controller.ledger`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Self

from controller.ledger import allowances
from controller.ledger.recorder import (
    SessionRecorder,
    create_lock,
    pid_alive,
    release_lock,
    sweep_orphan_locks,
    try_lock,
)
from controller.ledger.records import (
    COMMAND_MAX,
    DATA_DIR_ENV,
    DETAIL_MAX,
    REASON_MAX,
    SCHEMA_VERSION,
    SOURCE_MAX,
    AlarmRecord,
    CommandRecord,
    DeviceInfo,
    InjuryRecord,
    LedgerError,
    Outcome,
    Owner,
    PhaseRecord,
    PlannedPhase,
    Priority,
    SessionRecord,
    alarms_from,
    alarms_json,
    bounded_text,
    command_from,
    connect,
    ensure_schema,
    from_stamp,
    injury_from,
    insert_session,
    inserted_id,
    load_sessions,
    stamp,
    transaction,
    translated,
)
from controller.ledger.writer import LEDGER_STALL_LIMIT_S
from profiles.limits import HARD, Limits
from profiles.plan import Plan

__all__ = [
    "DATA_DIR_ENV",
    "SCHEMA_VERSION",
    "AlarmRecord",
    "CommandRecord",
    "DeviceInfo",
    "InjuryRecord",
    "Ledger",
    "LedgerError",
    "Outcome",
    "Owner",
    "PhaseRecord",
    "PlannedPhase",
    "Priority",
    "SessionRecord",
    "SessionRecorder",
    "default_data_dir",
    "planned_phases",
]

log = logging.getLogger(__name__)

LEDGER_FILE = "ledger.sqlite3"
SIMULATED_LEDGER_FILE = "ledger-simulated.sqlite3"
LOCK_DIR = "locks"

# Real time, not therapy time: how long a write waits for another relieve process's write to the
# same file before the ledger reports it as locked.
BUSY_TIMEOUT_S = 5.0
# The same for a running session's recorder, which writes off the event loop: the session may
# go on while its history is this far behind, and ends when a write waits longer.
RECORDER_BUSY_TIMEOUT_S = LEDGER_STALL_LIMIT_S
# Real time: a lock file younger than this may belong to a session that is still starting (created,
# not yet locked), so the sweep of orphaned lock files leaves it alone.
ORPHAN_LOCK_AGE_S = 60.0
# How far back the allowance checks read, beyond the longest rule window: a day for "today".
LOOKBACK_MARGIN = timedelta(days=1)
# Recovery notes this on the sessions it closes, so history shows why they ended.
RECOVERY_NOTE = (
    "relieve stopped without closing this session; exposure is counted until the devices' own "
    "time-outs"
)


def default_data_dir() -> Path:
    """Where the ledger lives: ``$RELIEVE_DATA_DIR``, else the user data directory."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("relieve", appauthor=False))


def planned_phases(plan: Plan) -> tuple[PlannedPhase, ...]:
    """What ``plan`` delivers, as offsets from the moment it is reserved (pre-roll included)."""
    return tuple(
        PlannedPhase(p.mode, p.area, plan.preroll_s + p.start_s, p.duration_s)
        for p in plan.phases
        if p.mode != "off"
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _bounded_or_none(text: str | None, limit: int) -> str | None:
    """An optional text as a command record keeps it; None when nothing of it is left."""
    return None if text is None else bounded_text(text, limit) or None


class Ledger:
    """The history of one kind of device (real or simulated) in one data directory.

    Open it with :meth:`open` (or :meth:`open_temporary`); it is a context manager. Opening it
    closes sessions left running by processes that are gone (:attr:`recovered`).
    """

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        *,
        simulated: bool,
        now: Callable[[], datetime],
        tz: tzinfo | None,
    ) -> None:
        self.path = path
        self.simulated = simulated
        self.tz = tz
        self._now = now
        self._conn = conn
        self._mutex = threading.Lock()
        self._cleanup: Path | None = None
        self.recovered: tuple[SessionRecord, ...] = ()

    @classmethod
    def open(
        cls,
        data_dir: Path | str | None = None,
        *,
        simulated: bool = False,
        now: Callable[[], datetime] = _utc_now,
        tz: tzinfo | None = None,
    ) -> Ledger:
        """Open (creating as needed) the ledger in ``data_dir`` and recover interrupted sessions.

        ``data_dir`` defaults to :func:`default_data_dir`; ``now`` returns an aware datetime (the
        ledger's own "now", for checks); ``tz`` fixes the local timezone (None: the system's).
        """
        directory = Path(data_dir) if data_dir is not None else default_data_dir()
        path = directory / (SIMULATED_LEDGER_FILE if simulated else LEDGER_FILE)
        with translated(path):
            directory.mkdir(parents=True, exist_ok=True)
            (directory / LOCK_DIR).mkdir(exist_ok=True)
            conn = connect(path, BUSY_TIMEOUT_S)
            try:
                ensure_schema(conn, path)
            except BaseException:
                conn.close()
                raise
        ledger = cls(path, conn, simulated=simulated, now=now, tz=tz)
        try:
            ledger.recovered = tuple(ledger.recover())
        except BaseException:
            ledger.close()
            raise
        return ledger

    @classmethod
    def open_temporary(
        cls,
        *,
        simulated: bool = True,
        now: Callable[[], datetime] = _utc_now,
        tz: tzinfo | None = None,
    ) -> Ledger:
        """A throw-away ledger in a new temporary directory, removed on :meth:`close` (demos)."""
        directory = Path(tempfile.mkdtemp(prefix="relieve-ledger-"))
        ledger = cls.open(directory, simulated=simulated, now=now, tz=tz)
        ledger._cleanup = directory
        return ledger

    @property
    def data_dir(self) -> Path:
        return self.path.parent

    def now(self) -> datetime:
        """The ledger's notion of now (injected for tests)."""
        return self._now()

    def close(self) -> None:
        """Close the file. Recorders started from this ledger keep working on their own."""
        with self._mutex:
            self._conn.close()
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._mutex, translated(self.path):
            yield self._conn

    def _lock_path(self, token: str) -> Path:
        return self.data_dir / LOCK_DIR / f"{self.path.stem}-{token}.lock"

    # --- recording ------------------------------------------------------------------------

    def start_session(
        self,
        profile: str,
        kind: str,
        *,
        started_at: datetime,
        devices: Mapping[str, DeviceInfo] | None = None,
        overrides: Collection[str] = (),
        extended: bool = False,
        planned: Sequence[PlannedPhase] = (),
    ) -> SessionRecorder:
        """Record a new running session and take its lock; returns the recorder that owns it.

        No allowance is checked: a session that must respect them starts with :meth:`reserve`.
        ``overrides``: the allowance rule IDs ``--override-allowance`` lifted for it
        (:attr:`controller.ledger.allowances.AllowanceDecision.overrides`).
        """
        lifted = tuple(overrides)
        return self._start(
            profile,
            kind,
            started_at=started_at,
            devices=devices,
            extended=extended,
            planned=planned,
            decide=lambda _conn: lifted,
        )

    def reserve(
        self,
        plan: Plan,
        *,
        lift: Collection[str] = (),
        limits: Limits = HARD,
        devices: Mapping[str, DeviceInfo] | None = None,
    ) -> tuple[SessionRecorder, allowances.AllowanceDecision]:
        """Check the allowances for ``plan`` and record it as a running session, in one step.

        The check and the new session's row are one write transaction, so of several processes
        starting sessions on this ledger at the same moment each sees the sessions the others
        reserved: exactly as many start as the rules allow, and the rest are refused with
        :class:`~controller.ledger.allowances.AllowanceError`. Take it before touching any device,
        and never while waiting for a person (it holds the ledger's write lock).

        The session starts now, with ``plan``'s phases as what it is still to deliver; if it
        never begins (no device found), :meth:`SessionRecorder.withdraw` removes it again.
        """
        moment = self.now()
        decision = allowances.AllowanceDecision()

        def decide(conn: sqlite3.Connection) -> tuple[str, ...]:
            nonlocal decision
            decision = self._decide(conn, plan, moment, lift=lift, limits=limits)
            return decision.overrides

        recorder = self._start(
            plan.name,
            plan.kind,
            started_at=moment,
            devices=devices,
            extended=plan.extended,
            planned=planned_phases(plan),
            decide=decide,
        )
        return recorder, decision

    def _start(
        self,
        profile: str,
        kind: str,
        *,
        started_at: datetime,
        devices: Mapping[str, DeviceInfo] | None,
        extended: bool,
        planned: Sequence[PlannedPhase],
        decide: Callable[[sqlite3.Connection], tuple[str, ...]],
    ) -> SessionRecorder:
        """Insert a running session in the same write transaction as ``decide`` (which raises
        to refuse it, or returns the allowance rules it overrides) and take its lock."""
        token = secrets.token_hex(8)
        lock_path = self._lock_path(token)
        owner = Owner(os.getpid(), socket.gethostname(), token)
        fd = create_lock(lock_path, owner)
        try:
            with self._db() as conn, transaction(conn):
                overrides = decide(conn)
                session_id = insert_session(
                    conn,
                    profile=profile,
                    kind=kind,
                    devices=devices or {},
                    started_at=started_at,
                    overrides=overrides,
                    extended=extended,
                    simulated=self.simulated,
                    owner=owner,
                    planned=planned,
                )
            with translated(self.path):
                recorder_conn = connect(self.path, RECORDER_BUSY_TIMEOUT_S)
        except BaseException:
            release_lock(fd, lock_path)
            raise
        log.info("session %d (%s) started, lock %s", session_id, profile, lock_path.name)
        return SessionRecorder(
            path=self.path,
            conn=recorder_conn,
            session_id=session_id,
            lock_fd=fd,
            lock_path=lock_path,
            started_at=started_at,
        )

    def add_injury(self, area: str, at: datetime) -> InjuryRecord:
        """Record an injury on ``area`` at ``at`` (opens the H6 acute window there)."""
        with self._db() as conn:
            cursor = conn.execute(
                "INSERT INTO injuries (area, at) VALUES (?, ?)", (area, stamp(at))
            )
            injury_id = inserted_id(cursor)
        log.info("injury on %s at %s recorded", area, at.isoformat())
        return InjuryRecord(injury_id, area, at)

    def record_command(
        self,
        command: str,
        *,
        source: str,
        accepted: bool,
        reason: str | None = None,
        detail: str | None = None,
        session_id: int | None = None,
        at: datetime | None = None,
    ) -> CommandRecord:
        """Record a command the controller was given (``stop``, ``start``, ...), where it came
        from (``mqtt``, ``socket pid 4242``), whether it was carried out and why not; returns the
        record as stored.

        The texts may come from a remote payload: each is cut to its bound (``source`` 80,
        ``command`` 32, ``detail`` 200, ``reason`` 300 characters, the last an ellipsis) and
        control characters are removed; an optional text left empty is stored as None.
        ``session_id``: the session it concerns; when that session is not (or no longer, being
        withdrawn) in this history, the command is still recorded, without a session, and a
        warning logged: the record of the command matters more than its link. ``at`` defaults
        to :meth:`now`.

        One write transaction; it blocks (up to a few seconds while another process writes),
        so an event loop runs it on a thread.
        """
        moment = self.now() if at is None else at
        moment_text = stamp(moment)
        source_text = bounded_text(source, SOURCE_MAX)
        command_text = bounded_text(command, COMMAND_MAX)
        detail_text = _bounded_or_none(detail, DETAIL_MAX)
        reason_text = _bounded_or_none(reason, REASON_MAX)
        linked = session_id
        with self._db() as conn, transaction(conn):
            if (
                linked is not None
                and conn.execute("SELECT 1 FROM sessions WHERE id = ?", (linked,)).fetchone()
                is None
            ):
                log.warning(
                    "command %r: there is no session %d in the history; recorded without one",
                    command_text,
                    linked,
                )
                linked = None
            cursor = conn.execute(
                "INSERT INTO commands (at, source, command, detail, accepted, reason, session_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    moment_text,
                    source_text,
                    command_text,
                    detail_text,
                    int(accepted),
                    reason_text,
                    linked,
                ),
            )
            command_id = inserted_id(cursor)
        log.info(
            "command %r from %r %s recorded",
            command_text,
            source_text,
            "accepted" if accepted else "refused",
        )
        return CommandRecord(
            id=command_id,
            at=moment,
            source=source_text,
            command=command_text,
            detail=detail_text,
            accepted=accepted,
            reason=reason_text,
            session_id=linked,
        )

    # --- reading --------------------------------------------------------------------------

    def sessions(
        self, since: datetime | None = None, *, running: bool = False
    ) -> list[SessionRecord]:
        """Sessions started at or after ``since`` (all when None), newest first, with phases.

        ``running=True`` adds every session still marked running, whenever it started.
        """
        where, params = "1", []
        if since is not None:
            where, params = "started_at >= ?", [stamp(since)]
            if running:
                where += " OR outcome = 'running'"
        return self._sessions(where, params)

    def running(self) -> list[SessionRecord]:
        """Sessions still marked running, newest first. Right after :meth:`open` (which closed
        those whose process is gone) these are live, or belong to another host."""
        return self._sessions("outcome = 'running'", ())

    def session(self, session_id: int) -> SessionRecord:
        """One session by id."""
        found = self._sessions("id = ?", (session_id,))
        if not found:
            raise LedgerError(f"There is no session {session_id} in the history {self.path}.")
        return found[0]

    def _sessions(self, where: str, params: Sequence[object]) -> list[SessionRecord]:
        with self._db() as conn:
            return load_sessions(conn, where, params)

    def injuries(self, since: datetime | None = None) -> list[InjuryRecord]:
        """Injuries recorded at or after ``since`` (all when None), newest first."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT * FROM injuries WHERE ? IS NULL OR at >= ? ORDER BY at DESC, id DESC",
                (None, None) if since is None else (stamp(since), stamp(since)),
            ).fetchall()
        return [injury_from(row) for row in rows]

    def commands(
        self, since: datetime | None = None, limit: int | None = None
    ) -> list[CommandRecord]:
        """Commands recorded at or after ``since`` (all when None), newest first; at most
        ``limit`` of them (all when None)."""
        if limit is not None and limit < 0:
            raise ValueError(f"a limit of commands cannot be negative, not {limit}")
        with self._db() as conn:
            rows = conn.execute(
                "SELECT * FROM commands WHERE ? IS NULL OR at >= ? "
                "ORDER BY at DESC, id DESC LIMIT ?",
                (
                    *((None, None) if since is None else (stamp(since), stamp(since))),
                    -1 if limit is None else limit,
                ),
            ).fetchall()
        return [command_from(row) for row in rows]

    def exposure(self, day: date | None = None) -> allowances.Exposure:
        """Seconds of heat, cold and massage per area on a local day (default: today)."""
        if day is None:
            day = allowances.local_day(self.now(), self.tz)
        start = allowances.day_start(day, self.tz)
        # A session lasts well under a day, so one that touches ``day`` started after this.
        sessions = self.sessions(start - timedelta(days=1), running=True)
        return allowances.exposure_on(day, sessions, self.tz)

    def check_allowances(
        self,
        plan: Plan,
        *,
        lift: Collection[str] = (),
        limits: Limits = HARD,
        now: datetime | None = None,
    ) -> allowances.AllowanceDecision:
        """May ``plan`` start now? Raises
        :class:`~controller.ledger.allowances.AllowanceError` if not.

        Reads what the rules need from this ledger; see :func:`controller.ledger.allowances.check`.
        """
        moment = now if now is not None else self.now()
        with self._db() as conn:
            return self._decide(conn, plan, moment, lift=lift, limits=limits)

    def _decide(
        self,
        conn: sqlite3.Connection,
        plan: Plan,
        moment: datetime,
        *,
        lift: Collection[str],
        limits: Limits,
    ) -> allowances.AllowanceDecision:
        window = max(
            limits.acute_no_heat_s,
            limits.acute_window_max_s,
            limits.heat_session_gap_s,
            limits.cold_rest_min_s,
        )
        since = moment - timedelta(seconds=window) - LOOKBACK_MARGIN
        sessions = load_sessions(conn, "started_at >= ? OR outcome = 'running'", (stamp(since),))
        rows = conn.execute(
            "SELECT * FROM injuries WHERE at >= ? ORDER BY at DESC, id DESC", (stamp(since),)
        ).fetchall()
        return allowances.check(
            plan,
            moment,
            sessions,
            [injury_from(row) for row in rows],
            limits=limits,
            lift=lift,
            tz=self.tz,
        )

    # --- recovery -------------------------------------------------------------------------

    def recover(self) -> list[SessionRecord]:
        """Close every running session whose owner is gone as ``interrupted`` (S3).

        The owner is gone when its lock file is free (or, with the lock file missing, when its
        process no longer exists). Sessions of other hosts, and those whose lock is held, are
        never touched.
        """
        with self._db() as conn:
            rows = conn.execute(
                "SELECT id, owner_pid, owner_host, owner_token FROM sessions "
                "WHERE outcome = 'running'"
            ).fetchall()
        host = socket.gethostname()
        closed = []
        for row in rows:
            if row["owner_host"] != host:
                log.debug("session %d belongs to host %s: left alone", row["id"], row["owner_host"])
                continue
            lock_path = self._lock_path(row["owner_token"])
            with translated(lock_path):
                try:
                    fd = try_lock(lock_path)
                except FileNotFoundError:
                    if pid_alive(row["owner_pid"]):
                        log.warning(
                            "session %d has no lock file but its process %d lives: left alone",
                            row["id"],
                            row["owner_pid"],
                        )
                        continue
                    fd = None
                else:
                    if fd is None:
                        log.debug("session %d is live (its lock is held)", row["id"])
                        continue
            try:
                if self._close_interrupted(row["id"]):
                    closed.append(self.session(row["id"]))
            finally:
                if fd is not None:
                    release_lock(fd, lock_path)
        self._sweep_locks()
        return closed

    def _close_interrupted(self, session_id: int) -> bool:
        with self._db() as conn, transaction(conn):
            row = conn.execute(
                "SELECT heartbeat_at, alarms FROM sessions WHERE id = ? AND outcome = 'running'",
                (session_id,),
            ).fetchone()
            if row is None:
                return False  # another process closed it first
            heartbeat = from_stamp(row["heartbeat_at"])
            for phase in conn.execute(
                "SELECT id, started_at, worst_case_s FROM phases "
                "WHERE session_id = ? AND ended_at IS NULL",
                (session_id,),
            ).fetchall():
                end = max(
                    from_stamp(phase["started_at"]),
                    heartbeat + timedelta(seconds=phase["worst_case_s"]),
                )
                conn.execute(
                    "UPDATE phases SET ended_at = ?, estimated = 1 WHERE id = ?",
                    (stamp(end), phase["id"]),
                )
            alarms = [
                *alarms_from(row["alarms"]),
                AlarmRecord("S3", "medium", RECOVERY_NOTE, heartbeat),
            ]
            conn.execute(
                "UPDATE sessions SET outcome = 'interrupted', ended_at = ?, alarms = ? "
                "WHERE id = ?",
                (stamp(heartbeat), alarms_json(alarms), session_id),
            )
        log.info("session %d was interrupted; closed at its last heartbeat", session_id)
        return True

    def _sweep_locks(self) -> None:
        """Remove free lock files of this ledger that belong to no running session."""
        with self._db() as conn:
            live = {
                row[0]
                for row in conn.execute(
                    "SELECT owner_token FROM sessions WHERE outcome = 'running'"
                )
            }
        sweep_orphan_locks(
            self.data_dir / LOCK_DIR, f"{self.path.stem}-", live, min_age_s=ORPHAN_LOCK_AGE_S
        )
