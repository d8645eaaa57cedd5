"""Recording one running session, and the lock files that say its process still lives (S3).

:meth:`controller.ledger.Ledger.start_session` creates the session's lock file, takes an
exclusive ``flock`` on it and hands it to a :class:`SessionRecorder`, which holds it until the
session finishes. The operating system releases the lock when the process ends, even on
``kill -9``, so a free lock means the owner is gone; the ledger's recovery probes locks with
:func:`try_lock`. Callers import :class:`SessionRecorder` from :mod:`controller.ledger`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from controller.ledger.records import (
    MODES,
    OUTCOMES,
    AlarmRecord,
    DeviceInfo,
    LedgerError,
    Outcome,
    Owner,
    Priority,
    alarms_from,
    alarms_json,
    devices_json,
    inserted_id,
    stamp,
    transaction,
    translated,
)
from profiles.plan import Mode

__all__ = [
    "SessionRecorder",
    "create_lock",
    "pid_alive",
    "release_lock",
    "sweep_orphan_locks",
    "try_lock",
]

log = logging.getLogger(__name__)

# --- lock files ---------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def create_lock(path: Path, owner: Owner) -> int:
    """Create the lock file ``path``, lock it and write its owner in it; the fd holding it."""
    with translated(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{owner.pid} {owner.host}\n".encode())
    except BaseException:
        release_lock(fd, path)
        raise
    return fd


def try_lock(path: Path) -> int | None:
    """An fd holding an exclusive lock on an existing ``path``, or None when it is held."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def release_lock(fd: int, path: Path | None) -> None:
    """Remove the lock file (when given) while still holding it, then let the lock go."""
    try:
        if path is not None:
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def sweep_orphan_locks(
    lock_dir: Path, prefix: str, live: Collection[str], *, min_age_s: float
) -> None:
    """Remove the free lock files ``<prefix><token>.lock`` whose token is not in ``live``.

    A lock file younger than ``min_age_s`` (real time) is left alone: its session may still be
    starting (the file created, not yet locked).
    """
    for lock_path in lock_dir.glob(f"{prefix}*.lock"):
        token = lock_path.stem.removeprefix(prefix)
        if "-" in token or token in live:  # another ledger's lock, or a live session's
            continue
        with contextlib.suppress(OSError):
            if time.time() - lock_path.stat().st_mtime < min_age_s:
                continue  # perhaps a session still starting: not locked yet
        try:
            fd = try_lock(lock_path)
        except OSError:
            continue
        if fd is not None:
            release_lock(fd, lock_path)


# --- the recorder -------------------------------------------------------------------------------


class SessionRecorder:
    """Records one running session; holds its lock until :meth:`finish`.

    Every call commits at once. After a crash the open phase counts until the last heartbeat plus
    its ``worst_case_s``, so write a heartbeat just before each lease renewal (then the lease is
    the worst case); a runner that beats less often adds its interval to ``worst_case_s``. The
    recorder has its own connection, so it outlives the :class:`Ledger` that started it. Calls
    are thread-safe; each is a small synchronous SQLite write (a few milliseconds).
    """

    def __init__(
        self,
        *,
        path: Path,
        conn: sqlite3.Connection,
        session_id: int,
        lock_fd: int,
        lock_path: Path,
        started_at: datetime,
    ) -> None:
        self.path = path
        self.id = session_id
        self._conn = conn
        self._lock_fd: int | None = lock_fd
        self._lock_path = lock_path
        self._mutex = threading.Lock()
        self._heartbeat = started_at
        self._open_phase: int | None = None
        self._open_since: datetime | None = None
        self._outcome: Outcome | None = None

    @property
    def finished(self) -> bool:
        return self._outcome is not None

    @property
    def outcome(self) -> Outcome:
        """``running`` until :meth:`finish`, then the outcome recorded."""
        return self._outcome or "running"

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._mutex, translated(self.path):
            if self._outcome is not None:
                raise LedgerError(
                    f"Session {self.id} has already finished; nothing more can be recorded on it."
                )
            yield self._conn

    def _beat(self, conn: sqlite3.Connection, at: datetime) -> None:
        self._heartbeat = max(self._heartbeat, at)
        conn.execute(
            "UPDATE sessions SET heartbeat_at = ? WHERE id = ?", (stamp(self._heartbeat), self.id)
        )

    def heartbeat(self, at: datetime) -> None:
        """The session is alive at ``at`` (never moves back in time)."""
        with self._write() as conn:
            self._beat(conn, at)
        log.debug("session %d heartbeat %s", self.id, at.isoformat())

    def phase_started(
        self,
        mode: Mode,
        area: str | None,
        at: datetime,
        *,
        worst_case_s: float,
        celsius: float | None = None,
        rpm: int | None = None,
    ) -> int:
        """A phase began on the skin at ``at``; an open phase ends at that instant. Its id.

        ``worst_case_s``: how long the device could keep this phase going on its own after the
        last heartbeat -- the lease (<= 5 s) for open-profile devices, the device's own timer for
        host-timed ones, 0 when nothing runs unattended (stretching, a passive pack).
        """
        if mode not in MODES:
            raise ValueError(f"unknown phase mode {mode!r}; expected one of {MODES}")
        if worst_case_s < 0:
            raise ValueError(f"worst_case_s must not be negative, not {worst_case_s}")
        with self._write() as conn:
            with transaction(conn):
                self._end_open(conn, at)
                cursor = conn.execute(
                    "INSERT INTO phases (session_id, mode, area, celsius, rpm, started_at, "
                    "worst_case_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (self.id, mode, area, celsius, rpm, stamp(at), worst_case_s),
                )
                self._beat(conn, at)
                phase_id = inserted_id(cursor)
            self._open_phase, self._open_since = phase_id, at  # once committed
        log.debug("session %d phase %d: %s on %s from %s", self.id, phase_id, mode, area, at)
        return phase_id

    def phase_ended(self, at: datetime) -> None:
        """The open phase ended at ``at`` (nothing happens when none is open)."""
        with self._write() as conn:
            with transaction(conn):
                self._end_open(conn, at)
                self._beat(conn, at)
            self._open_phase = self._open_since = None  # once committed

    def _end_open(self, conn: sqlite3.Connection, at: datetime) -> None:
        if self._open_phase is None or self._open_since is None:
            return
        end = max(at, self._open_since)
        conn.execute("UPDATE phases SET ended_at = ? WHERE id = ?", (stamp(end), self._open_phase))

    def set_devices(self, devices: Mapping[str, DeviceInfo]) -> None:
        """The devices bound to the session's roles (known once they are found)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE sessions SET devices = ? WHERE id = ?", (devices_json(devices), self.id)
            )

    def withdraw(self, at: datetime) -> None:
        """The session never began (no device found, a question not confirmed): remove it, so
        it counts for nothing, and release its lock. Once it delivered anything it cannot be
        removed: it finishes as ``aborted`` instead. Idempotent."""
        with self._mutex:
            if self._outcome is not None:
                return
            delivered = self._open_phase is not None
            if not delivered:
                try:
                    with translated(self.path), transaction(self._conn) as conn:
                        delivered = (
                            conn.execute(
                                "SELECT 1 FROM phases WHERE session_id = ? LIMIT 1", (self.id,)
                            ).fetchone()
                            is not None
                        )
                        if not delivered:
                            conn.execute("DELETE FROM sessions WHERE id = ?", (self.id,))
                except BaseException:
                    self._outcome = "aborted"
                    self._unlock(remove=False)
                    raise
            if not delivered:
                self._outcome = "aborted"
                self._unlock(remove=True)
                log.info("session %d withdrawn before it began", self.id)
                return
        self.finish("aborted", at)

    def alarm(self, limit_id: str, priority: Priority, message: str, at: datetime) -> None:
        """Record an alarm (S4) with the limit it concerns."""
        with self._write() as conn, transaction(conn):
            row = conn.execute("SELECT alarms FROM sessions WHERE id = ?", (self.id,)).fetchone()
            alarms = [*alarms_from(row["alarms"]), AlarmRecord(limit_id, priority, message, at)]
            conn.execute(
                "UPDATE sessions SET alarms = ? WHERE id = ?", (alarms_json(alarms), self.id)
            )
            self._beat(conn, at)
        log.debug("session %d alarm %s (%s): %s", self.id, limit_id, priority, message)

    def finish(self, outcome: Outcome, at: datetime) -> None:
        """Close the session with ``outcome`` at ``at`` and release its lock. Idempotent.

        Safe on every exit path: if the write fails the lock is still released (the next
        ``Ledger.open`` then closes the session as interrupted at its last heartbeat) and the
        error is raised.
        """
        if outcome == "running" or outcome not in OUTCOMES:
            raise ValueError(f"a session cannot finish as {outcome!r}")
        with self._mutex:
            if self._outcome is not None:
                return
            self._outcome = outcome
            try:
                with translated(self.path), transaction(self._conn) as conn:
                    self._end_open(conn, at)
                    end = max(at, self._heartbeat)
                    conn.execute(
                        "UPDATE sessions SET outcome = ?, ended_at = ?, heartbeat_at = ? "
                        "WHERE id = ?",
                        (outcome, stamp(end), stamp(end), self.id),
                    )
            except BaseException:
                self._unlock(remove=False)
                raise
            self._unlock(remove=True)
        log.info("session %d finished: %s", self.id, outcome)

    def _unlock(self, *, remove: bool) -> None:
        fd, self._lock_fd = self._lock_fd, None
        try:
            if fd is not None:
                release_lock(fd, self._lock_path if remove else None)
        finally:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leaving the block unfinished records ``aborted`` at the last time seen."""
        if not self.finished:
            self.finish("aborted", self._heartbeat)
