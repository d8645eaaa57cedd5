"""Writing a running session's record off the event loop (S3).

A :class:`~controller.ledger.recorder.SessionRecorder` writes with plain, synchronous SQLite
calls: a commit takes about a millisecond on a healthy disk, but up to its busy timeout when
another process holds the ledger's write lock, and a disk can stall for longer still. Nothing
of that may delay a lease renewal, a supervisor check or an OFF command, so the session runner
never calls the recorder itself: it hands each record to a :class:`LedgerWriter`, whose one
thread writes them in order.

Two things end the session, because nothing may run a device whose therapy cannot be recorded:

* a write fails (disk full, I/O error, a damaged file, the lock held past the busy timeout):
  the writer reports it at once through ``on_failure``;
* the history falls behind by more than :data:`LEDGER_STALL_LIMIT_S` real seconds (a write that
  neither succeeds nor fails, such as a hung disk): :meth:`LedgerWriter.lag_s` says so, and the
  runner checks it every second.

After a failure the writer drops the records that follow, except the final one
(:meth:`LedgerWriter.close`), which it still tries once, so the session's lock is released and,
if the disk is back, the outcome recorded. Whatever it could not record, the next start of
relieve closes as interrupted, counting the worst case.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from controller.ledger.recorder import SessionRecorder
from controller.ledger.records import LedgerError, Outcome, Priority
from drivers.core.clock import Clock
from profiles.plan import Mode

__all__ = ["LEDGER_STALL_LIMIT_S", "LedgerWriter"]

log = logging.getLogger(__name__)

# Real seconds: the longest a running session's history may fall behind before the session is
# ended. Also the busy timeout of the recorder's connection, so a write lock held by another
# process for longer than this fails the write. Recovery after a crash counts an open phase
# until its last heartbeat plus this, plus the device's own bound (S3).
LEDGER_STALL_LIMIT_S = 30.0
# Real seconds the final write (the outcome) may take beyond the stall limit before the runner
# gives up waiting for it; the devices are already OFF by then.
CLOSE_MARGIN_S = 5.0


@dataclass(frozen=True)
class _Job:
    write: Callable[[SessionRecorder], object]
    queued_at: float  # time.monotonic() when handed over
    written: asyncio.Future[None]  # done (on the loop) once the write is over
    final: bool = False


class LedgerWriter:
    """Writes one session's records in order on its own thread; create it inside the event loop.

    ``on_failure`` is called once, on the event loop, with the sentence saying why the history
    cannot be written. ``clock`` is the session's: a virtual clock (tests) does not move while a
    write is under way, as a real session's clock hardly moves during one.
    """

    def __init__(
        self,
        recorder: SessionRecorder,
        *,
        on_failure: Callable[[str], None],
        clock: Clock,
        stall_limit_s: float = LEDGER_STALL_LIMIT_S,
    ) -> None:
        self.recorder = recorder
        self._clock = clock
        self.stall_limit_s = stall_limit_s
        self._on_failure = on_failure
        self._loop = asyncio.get_running_loop()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._pending: collections.deque[float] = collections.deque()  # queued_at, oldest first
        self._mutex = threading.Lock()
        self._failure: str | None = None
        self._last: asyncio.Future[None] | None = None  # the newest record's "written"
        self._reported = False
        self._closed = False
        self._done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._work, name=f"relieve-ledger-{recorder.id}", daemon=True
        )
        self._thread.start()

    # --- what the runner records ---------------------------------------------------------------

    def heartbeat(self, at: datetime) -> None:
        self._submit(lambda r: r.heartbeat(at))

    def phase_started(
        self,
        mode: Mode,
        area: str | None,
        at: datetime,
        *,
        worst_case_s: float,
        celsius: float | None = None,
        rpm: int | None = None,
    ) -> None:
        self._submit(
            lambda r: r.phase_started(
                mode, area, at, worst_case_s=worst_case_s, celsius=celsius, rpm=rpm
            )
        )

    def phase_ended(self, at: datetime) -> None:
        self._submit(lambda r: r.phase_ended(at))

    def alarm(self, limit_id: str, priority: Priority, message: str, at: datetime) -> None:
        self._submit(lambda r: r.alarm(limit_id, priority, message, at))

    # --- health --------------------------------------------------------------------------------

    @property
    def failure(self) -> str | None:
        """Why the history cannot be written, once a write failed or stalled (else None): a
        clause such as ``the history /d/ledger.sqlite3 cannot be written (database or disk is
        full)``."""
        return self._failure

    async def flushed(self) -> None:
        """Return once every record handed over so far is written (or failed: see
        :attr:`failure`). A virtual clock stands still meanwhile."""
        last = self._last
        if last is not None and not last.done():
            await asyncio.shield(last)

    def lag_s(self) -> float:
        """Real seconds the oldest record not yet written has waited (0 when all are written)."""
        with self._mutex:
            oldest = self._pending[0] if self._pending else None
        return 0.0 if oldest is None else time.monotonic() - oldest

    def check_stall(self) -> None:
        """Report a history that fell behind by more than the stall limit as a failure."""
        lag = self.lag_s()
        if lag > self.stall_limit_s and self._failure is None:
            self._fail(
                f"the history {self.recorder.path} cannot be written (no write accepted for "
                f"{lag:.0f} s)"
            )

    # --- the end -------------------------------------------------------------------------------

    async def close(self, outcome: Outcome, at: datetime) -> bool:
        """Write the outcome after everything queued, release the session's lock and stop the
        thread. True when the outcome was recorded; False (logged) when it could not be, or did
        not finish within the stall limit (the next start of relieve then closes the session as
        interrupted)."""
        if self._closed:
            return self._done.done() and self._done.exception() is None
        self._closed = True
        result: concurrent.futures.Future[None] = concurrent.futures.Future()

        def finish(recorder: SessionRecorder) -> None:
            try:
                recorder.finish(outcome, at)
            except BaseException as exc:
                result.set_exception(exc)
                raise
            result.set_result(None)

        self._put(finish, final=True)
        self._jobs.put(None)
        problem: str | None = None
        try:
            await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(result)),
                self.stall_limit_s + CLOSE_MARGIN_S,
            )
        except TimeoutError:
            problem = f"no answer within {self.stall_limit_s + CLOSE_MARGIN_S:g} s"
        except Exception as exc:  # noqa: BLE001 - reported in one line, never raised here
            problem = _why(exc)
        if problem is not None:
            log.warning("session %d: its outcome was not recorded (%s)", self.recorder.id, problem)
            return False
        return True

    # --- the thread ----------------------------------------------------------------------------

    def _submit(self, write: Callable[[SessionRecorder], object]) -> None:
        if self._closed:
            raise RuntimeError("relieve bug: a record was handed over after the session closed")
        if self._failure is not None:
            return  # the session is ending; nothing more is written but its outcome
        self._put(write)

    def _put(self, write: Callable[[SessionRecorder], object], *, final: bool = False) -> None:
        job = _Job(write, time.monotonic(), self._loop.create_future(), final)
        self._clock.hold(job.written)
        self._last = job.written
        with self._mutex:
            self._pending.append(job.queued_at)
        self._jobs.put(job)

    def _work(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                try:
                    if job.final:
                        with contextlib.suppress(Exception):  # close() reports it
                            job.write(self.recorder)
                    elif self._failure is None:
                        job.write(self.recorder)
                except Exception as exc:
                    log.debug("writing session %d failed", self.recorder.id, exc_info=True)
                    self._fail(f"the history {self.recorder.path} cannot be written ({_why(exc)})")
                finally:
                    with self._mutex:
                        self._pending.popleft()
                    self._call_soon(_settle, job.written)
        finally:
            self._done.set_result(None)

    def _fail(self, message: str) -> None:
        if self._failure is not None:
            return
        self._failure = message
        log.warning("%s", message)
        self._call_soon(self._report)

    def _call_soon(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback`` on the event loop (from any thread)."""
        with contextlib.suppress(RuntimeError):  # a closed loop: the session is over anyway
            self._loop.call_soon_threadsafe(callback, *args)

    def _report(self) -> None:
        if not self._reported and self._failure is not None:
            self._reported = True
            self._on_failure(self._failure)


def _settle(written: asyncio.Future[None]) -> None:
    if not written.done():
        written.set_result(None)


def _why(exc: BaseException) -> str:
    """The cause of a failed write in a few words: the database's or the system's own."""
    cause = exc.__cause__ if isinstance(exc, LedgerError) and exc.__cause__ else exc
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause) or type(cause).__name__
