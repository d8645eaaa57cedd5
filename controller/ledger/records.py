"""The exposure ledger's records and their SQLite form: tables, rows, timestamps, errors (S3).

What a caller reads back from :class:`controller.ledger.Ledger` (sessions with their phases and
alarms, devices, injuries, the commands the controller was given), the tables that hold them, how
rows and JSON columns become records, and the SQLite helpers both the ledger and
:class:`controller.ledger.recorder.SessionRecorder` write through: one ``BEGIN IMMEDIATE``
transaction, and every database or file error as one sentence that says what to do. Callers
import these names from :mod:`controller.ledger`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
import unicodedata
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args

from profiles.errors import RelieveError
from profiles.plan import Mode

__all__ = [
    "COMMAND_MAX",
    "DATA_DIR_ENV",
    "DETAIL_MAX",
    "MODES",
    "OUTCOMES",
    "REASON_MAX",
    "SCHEMA_VERSION",
    "SOURCE_MAX",
    "AlarmRecord",
    "CommandRecord",
    "DeviceInfo",
    "InjuryRecord",
    "LedgerError",
    "Outcome",
    "Owner",
    "PhaseRecord",
    "PlannedPhase",
    "Priority",
    "SessionRecord",
    "alarms_from",
    "alarms_json",
    "bounded_text",
    "command_from",
    "connect",
    "devices_from",
    "devices_json",
    "ensure_schema",
    "from_stamp",
    "from_stamp_opt",
    "injury_from",
    "insert_session",
    "inserted_id",
    "load_sessions",
    "phase_from",
    "planned_from",
    "planned_json",
    "session_from",
    "stamp",
    "transaction",
    "translated",
]

# The environment variable that chooses the data directory (named in error messages).
DATA_DIR_ENV = "RELIEVE_DATA_DIR"
# 1: the first; 2: sessions.planned (what a running session is still to deliver, for the
# allowance checks of other processes); 3: the commands table (remote and local commands, with
# where they came from and whether they were carried out).
SCHEMA_VERSION = 3
# SQLite's bound-parameter limit, with room: phases are read for this many sessions at a time.
_SESSIONS_PER_QUERY = 500

Outcome = Literal["running", "completed", "stopped", "aborted", "interrupted"]
Priority = Literal["high", "medium", "low"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
MODES: tuple[str, ...] = get_args(Mode)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile TEXT NOT NULL,
    kind TEXT NOT NULL,
    devices TEXT NOT NULL DEFAULT '{{}}',
    started_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT NOT NULL DEFAULT 'running' CHECK (outcome IN {OUTCOMES!r}),
    alarms TEXT NOT NULL DEFAULT '[]',
    overrides TEXT NOT NULL DEFAULT '[]',
    extended INTEGER NOT NULL DEFAULT 0,
    simulated INTEGER NOT NULL DEFAULT 0,
    owner_pid INTEGER NOT NULL,
    owner_host TEXT NOT NULL,
    owner_token TEXT NOT NULL UNIQUE,
    heartbeat_at TEXT NOT NULL,
    planned TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions (started_at);
CREATE INDEX IF NOT EXISTS sessions_outcome ON sessions (outcome);
CREATE TABLE IF NOT EXISTS phases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions (id),
    mode TEXT NOT NULL CHECK (mode IN {MODES!r}),
    area TEXT,
    celsius REAL,
    rpm INTEGER,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    worst_case_s REAL NOT NULL CHECK (worst_case_s >= 0),
    estimated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS phases_session ON phases (session_id);
CREATE TABLE IF NOT EXISTS injuries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    area TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS injuries_at ON injuries (at);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    command TEXT NOT NULL,
    detail TEXT,
    accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
    reason TEXT,
    session_id INTEGER REFERENCES sessions (id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS commands_at ON commands (at);
CREATE INDEX IF NOT EXISTS commands_session ON commands (session_id);
"""

# The longest text a command record keeps of each field, in characters; longer text is cut and
# ends in an ellipsis, so a hostile remote payload cannot bloat the history.
SOURCE_MAX = 80
COMMAND_MAX = 32
DETAIL_MAX = 200
REASON_MAX = 300
_ELLIPSIS = "\u2026"
# Unicode categories removed from recorded text: control and format characters (terminal escapes,
# bidirectional overrides) and lone surrogates (which SQLite cannot store).
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
# Characters that separate words or lines: recorded as one space each.
_SPACES = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")


class LedgerError(RelieveError):
    """The history could not be read or written; the message says what to do."""


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    """A device a session used, by role (``heat``, ``cold``, ``gun``, ``probe``)."""

    address: str
    name: str | None
    driver: str


@dataclass(frozen=True)
class AlarmRecord:
    """An alarm raised during a session: the limit it concerns, its priority, the sentence."""

    limit_id: str
    priority: Priority
    message: str
    at: datetime


@dataclass(frozen=True)
class PhaseRecord:
    """A phase actually delivered. ``estimated``: its end is the worst case after a crash."""

    id: int
    session_id: int
    mode: Mode
    area: str | None
    started_at: datetime
    ended_at: datetime | None
    worst_case_s: float
    celsius: float | None = None
    rpm: int | None = None
    estimated: bool = False


@dataclass(frozen=True)
class PlannedPhase:
    """A phase a session plans: ``offset_s`` seconds after the session's start (its pre-roll
    included), for ``duration_s``. While the session runs, other processes' allowance checks
    count what it is still to deliver."""

    mode: Mode
    area: str | None
    offset_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        return self.offset_s + self.duration_s


@dataclass(frozen=True)
class Owner:
    """The process that records (or recorded) a session."""

    pid: int
    host: str
    token: str


@dataclass(frozen=True)
class SessionRecord:
    """One session as the ledger holds it, with its phases in order."""

    id: int
    profile: str
    kind: str
    devices: Mapping[str, DeviceInfo]
    started_at: datetime
    ended_at: datetime | None
    outcome: Outcome
    alarms: tuple[AlarmRecord, ...]
    overrides: tuple[str, ...]
    extended: bool
    simulated: bool
    owner: Owner
    heartbeat_at: datetime
    phases: tuple[PhaseRecord, ...] = ()
    planned: tuple[PlannedPhase, ...] = ()

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end; None while running."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class InjuryRecord:
    """An injury the person recorded on a body area (opens the H6 acute window)."""

    id: int
    area: str
    at: datetime


@dataclass(frozen=True)
class CommandRecord:
    """A command the controller was given, and what became of it.

    ``source``: where it came from (``mqtt``, ``socket pid 4242``, ``relieve stop``); ``command``:
    ``stop``, ``emergency-stop``, ``pause``, ``resume``, ``start``, ...; ``detail``: what it
    named (the profile of a start); ``accepted``: whether it was carried out, ``reason`` why not
    (or a note); ``session_id``: the session it concerned, if any (None when that session is not,
    or no longer, in the history). Texts are as stored: cut to their bounds, control characters
    removed.
    """

    id: int
    at: datetime
    source: str
    command: str
    detail: str | None
    accepted: bool
    reason: str | None
    session_id: int | None


# --- timestamps ---------------------------------------------------------------------------------


def stamp(moment: datetime) -> str:
    """``moment`` as stored: UTC ISO-8601 with offset, to the microsecond."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"the ledger needs timezone-aware times, not {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_stamp(text: str) -> datetime:
    """A stored timestamp as an aware datetime."""
    return datetime.fromisoformat(text)


def from_stamp_opt(text: str | None) -> datetime | None:
    """A stored timestamp that may be NULL."""
    return None if text is None else datetime.fromisoformat(text)


# --- SQLite -------------------------------------------------------------------------------------


@contextlib.contextmanager
def translated(path: Path) -> Iterator[None]:
    """sqlite3 and file errors as one sentence that says what to do."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            raise LedgerError(
                f"The history {path} is busy in another relieve process; try again in a moment."
            ) from exc
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            raise LedgerError(
                f"The history file {path} is damaged ({exc}); move it aside and relieve will "
                "start a new, empty history."
            ) from exc
        if "unable to open" in text or "readonly" in text or "read-only" in text:
            raise LedgerError(
                f"The history file {path} cannot be written ({exc}); make its directory "
                f"writable, or choose another with --data-dir or ${DATA_DIR_ENV}."
            ) from exc
        raise LedgerError(
            f"The history file {path} could not be used ({exc}); check the disk and the file."
        ) from exc
    except OSError as exc:
        raise LedgerError(
            f"The history in {path.parent} cannot be used ({exc.strerror or exc}); choose a "
            f"writable directory with --data-dir or ${DATA_DIR_ENV}."
        ) from exc


def connect(path: Path, timeout_s: float) -> sqlite3.Connection:
    """A connection to the ledger file: WAL, every commit durable, rows by column name.

    ``timeout_s`` (real time): how long a write waits for another process's write.
    """
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``); rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables on a new file; refuse a file written by a newer relieve."""
    with transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"The history file {path} was written by a newer relieve; update relieve to "
                "read it."
            )
        # One statement at a time: executescript() would commit this transaction.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        if version == 1:
            conn.execute("ALTER TABLE sessions ADD COLUMN planned TEXT NOT NULL DEFAULT '[]'")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The row id an INSERT produced."""
    if cursor.lastrowid is None:  # pragma: no cover - sqlite sets it on every INSERT
        raise LedgerError("The history did not record that; try again.")
    return cursor.lastrowid


# --- rows and JSON columns ----------------------------------------------------------------------


def alarms_json(alarms: Sequence[AlarmRecord]) -> str:
    """The ``sessions.alarms`` column for ``alarms``."""
    return json.dumps(
        [
            {"limit": a.limit_id, "priority": a.priority, "message": a.message, "at": stamp(a.at)}
            for a in alarms
        ]
    )


def alarms_from(text: str) -> tuple[AlarmRecord, ...]:
    """The alarms a ``sessions.alarms`` column holds."""
    return tuple(
        AlarmRecord(a["limit"], a["priority"], a["message"], from_stamp(a["at"]))
        for a in json.loads(text)
    )


def devices_json(devices: Mapping[str, DeviceInfo]) -> str:
    """The ``sessions.devices`` column for ``devices`` by role."""
    return json.dumps(
        {
            role: {"address": d.address, "name": d.name, "driver": d.driver}
            for role, d in devices.items()
        }
    )


def devices_from(text: str) -> Mapping[str, DeviceInfo]:
    """The devices by role a ``sessions.devices`` column holds (read-only)."""
    raw: dict[str, dict[str, Any]] = json.loads(text)
    return MappingProxyType(
        {role: DeviceInfo(d["address"], d.get("name"), d["driver"]) for role, d in raw.items()}
    )


def phase_from(row: sqlite3.Row) -> PhaseRecord:
    """A ``phases`` row as a record."""
    return PhaseRecord(
        id=row["id"],
        session_id=row["session_id"],
        mode=row["mode"],
        area=row["area"],
        started_at=from_stamp(row["started_at"]),
        ended_at=from_stamp_opt(row["ended_at"]),
        worst_case_s=row["worst_case_s"],
        celsius=row["celsius"],
        rpm=row["rpm"],
        estimated=bool(row["estimated"]),
    )


def session_from(row: sqlite3.Row, phases: Sequence[PhaseRecord]) -> SessionRecord:
    """A ``sessions`` row, with its phases in order, as a record."""
    return SessionRecord(
        id=row["id"],
        profile=row["profile"],
        kind=row["kind"],
        devices=devices_from(row["devices"]),
        started_at=from_stamp(row["started_at"]),
        ended_at=from_stamp_opt(row["ended_at"]),
        outcome=row["outcome"],
        alarms=alarms_from(row["alarms"]),
        overrides=tuple(json.loads(row["overrides"])),
        extended=bool(row["extended"]),
        simulated=bool(row["simulated"]),
        owner=Owner(row["owner_pid"], row["owner_host"], row["owner_token"]),
        heartbeat_at=from_stamp(row["heartbeat_at"]),
        phases=tuple(phases),
        planned=planned_from(row["planned"]),
    )


def planned_json(planned: Sequence[PlannedPhase]) -> str:
    """Planned phases as stored."""
    return json.dumps(
        [[p.mode, p.area, round(p.offset_s, 3), round(p.duration_s, 3)] for p in planned]
    )


def planned_from(text: str) -> tuple[PlannedPhase, ...]:
    """Stored planned phases as records."""
    return tuple(
        PlannedPhase(mode, area, float(offset), float(duration))
        for mode, area, offset, duration in json.loads(text)
    )


def insert_session(
    conn: sqlite3.Connection,
    *,
    profile: str,
    kind: str,
    devices: Mapping[str, DeviceInfo],
    started_at: datetime,
    overrides: Collection[str],
    extended: bool,
    simulated: bool,
    owner: Owner,
    planned: Sequence[PlannedPhase] = (),
) -> int:
    """Insert a new running session, its heartbeat at its start; its id."""
    cursor = conn.execute(
        "INSERT INTO sessions (profile, kind, devices, started_at, overrides, extended, "
        "simulated, owner_pid, owner_host, owner_token, heartbeat_at, planned) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            profile,
            kind,
            devices_json(devices),
            stamp(started_at),
            json.dumps(sorted(overrides)),
            int(extended),
            int(simulated),
            owner.pid,
            owner.host,
            owner.token,
            stamp(started_at),
            planned_json(planned),
        ),
    )
    return inserted_id(cursor)


def injury_from(row: sqlite3.Row) -> InjuryRecord:
    """An ``injuries`` row as a record."""
    return InjuryRecord(row["id"], row["area"], from_stamp(row["at"]))


def bounded_text(text: str, limit: int) -> str:
    """``text`` as a command record keeps it: control and format characters removed (line breaks
    and tabs become spaces), surrounding white space stripped, and at most ``limit`` characters,
    the last an ellipsis when it was cut. Reads no further into ``text`` than it needs."""
    kept = (
        " " if char in _SPACES else char
        for char in text
        if char in _SPACES or unicodedata.category(char) not in _REMOVED_CATEGORIES
    )
    head = "".join(itertools.islice(itertools.dropwhile(str.isspace, kept), limit + 1))
    if len(head) > limit:
        return head[: limit - 1].rstrip() + _ELLIPSIS
    return head.rstrip()


def command_from(row: sqlite3.Row) -> CommandRecord:
    """A ``commands`` row as a record."""
    return CommandRecord(
        id=row["id"],
        at=from_stamp(row["at"]),
        source=row["source"],
        command=row["command"],
        detail=row["detail"],
        accepted=bool(row["accepted"]),
        reason=row["reason"],
        session_id=row["session_id"],
    )


def load_sessions(
    conn: sqlite3.Connection, where: str, params: Sequence[object]
) -> list[SessionRecord]:
    """The sessions matching ``where`` (a fixed clause, values bound), newest first, with phases."""
    rows = conn.execute(
        f"SELECT * FROM sessions WHERE {where} ORDER BY started_at DESC, id DESC",  # noqa: S608 - fixed clauses, values bound
        params,
    ).fetchall()
    ids = [row["id"] for row in rows]
    phases: dict[int, list[PhaseRecord]] = {i: [] for i in ids}
    for start in range(0, len(ids), _SESSIONS_PER_QUERY):
        chunk = ids[start : start + _SESSIONS_PER_QUERY]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT * FROM phases WHERE session_id IN ({marks}) "  # noqa: S608 - placeholders only
            "ORDER BY started_at, id",
            chunk,
        ):
            phases[row["session_id"]].append(phase_from(row))
    return [session_from(row, phases[row["id"]]) for row in rows]
