"""One background task that calls a device action on the injected clock until told to stop.

Lease renewals (:class:`~drivers.core.lease.LeaseKeeper`) and status polls
(:class:`~drivers.core.polling.Poller`) are the same loop: wait on the
:class:`~drivers.core.clock.Clock`, send, repeat; stop from synchronous code (a link loss, an OFF
about to be sent) or stop and wait a short bounded time for the call in flight (an orderly OFF);
and on the first action that fails, end and report it, because the caller must react (a renewal
not acknowledged, a device that stopped answering). :class:`PeriodicTask` is that loop; a
subclass says when the next call is due.

Stopping does not rely on cancellation alone: a library underneath may swallow a
``CancelledError`` (bumble's ``wait_for`` on Python 3.11 can), and the loop would then go on
renewing an output that is meant to go OFF. Every start of the loop carries a stop flag that
:meth:`PeriodicTask.cancel` and :meth:`PeriodicTask.stop` set; the loop checks it before every
call and after it, so no call starts once the task was told to stop. An action's retries ask
:meth:`PeriodicTask.call_withdrawn` before each attempt.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from drivers.core.base import DeviceError
from drivers.core.clock import Clock
from drivers.core.connection import COMMAND_TIMEOUT_S
from drivers.core.tasks import cancel_and_wait

__all__ = ["STOP_WAIT_S", "PeriodicTask"]

# Real seconds stop() waits for a call in flight to end after cancelling it: one GATT command's
# time-out, the longest one ATT transaction should take. A call that takes longer lost its
# cancellation somewhere below; stop() returns without it (the stop flag keeps it from sending
# anything more, and the device orders it before any command sent after stop()).
STOP_WAIT_S = COMMAND_TIMEOUT_S


class _Run:
    """One start of the loop: its task, and the flag that tells it to stop."""

    __slots__ = ("stopped", "task")

    def __init__(self) -> None:
        self.stopped = False
        self.task: asyncio.Task[None] | None = None


class PeriodicTask(abc.ABC):
    """Calls ``action`` whenever :meth:`_ticks` yields, until stopped or the action fails."""

    def __init__(
        self,
        *,
        clock: Clock,
        action: Callable[[], Awaitable[None]],
        on_failure: Callable[[DeviceError], None],
        label: str,
        what: str,
        stop_wait_s: float = STOP_WAIT_S,
    ) -> None:
        self._clock = clock
        self._action = action
        self._on_failure = on_failure
        self._label = label
        self._what = what
        self.stop_wait_s = stop_wait_s
        """Real seconds :meth:`stop` waits for a call in flight."""
        self._run: _Run | None = None
        # Tasks told to stop that have not ended yet (held so they are not garbage-collected).
        self._stopping: set[asyncio.Task[None]] = set()
        # Messages go to the subclass's module logger (drivers.core.lease, drivers.core.polling).
        self._log = logging.getLogger(type(self).__module__)

    @property
    def running(self) -> bool:
        """True while the task runs (between a start and a stop or a failure)."""
        run = self._run
        return run is not None and run.task is not None and not run.task.done()

    def call_withdrawn(self) -> bool:
        """True inside a call whose task was told to stop: it must send nothing more.

        An action that retries asks this before every attempt, so a stop whose cancellation was
        lost below still ends the call after the attempt in flight.
        """
        return asyncio.current_task() in self._stopping

    def cancel(self) -> None:
        """Stop from synchronous code: no call starts from now on; one in flight is cancelled."""
        run, self._run = self._run, None
        if run is None:
            return
        run.stopped = True
        task = run.task
        if task is None or task.done():
            return
        self._stopping.add(task)
        if task is not asyncio.current_task():
            task.cancel()

    async def stop(self) -> None:
        """Stop, and wait up to :attr:`stop_wait_s` real seconds for a call in flight to end.

        No call starts once this is called, even when the task's cancellation is lost below. A
        call still in flight after the wait is left to end on its own (it sends nothing more).
        If the caller is cancelled while waiting, its ``CancelledError`` propagates.
        """
        self.cancel()
        still_running = await cancel_and_wait(set(self._stopping), within_s=self.stop_wait_s)
        if still_running:
            self._log.warning(
                "%s: a %s was still in flight %.1f s after it was cancelled; going on without "
                "it (it sends nothing more)",
                self._label,
                self._what,
                self.stop_wait_s,
            )

    def _launch(self) -> None:
        """Start the task (the first call at the first tick)."""
        run = _Run()
        task = asyncio.get_running_loop().create_task(
            self._loop(run), name=f"{self._what} {self._label}"
        )
        task.add_done_callback(self._ended)
        run.task = task
        self._run = run

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._stopping.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._log.error("%s: the %s task failed", self._label, self._what, exc_info=exc)

    @abc.abstractmethod
    def _ticks(self) -> AsyncGenerator[None, None]:
        """Yields whenever the next call is due (sleeping on the clock in between)."""

    async def _loop(self, run: _Run) -> None:
        async with contextlib.aclosing(self._ticks()) as ticks:
            async for _ in ticks:
                if run.stopped:  # the cancellation of the sleep may have been lost
                    return
                try:
                    await self._action()
                except DeviceError as exc:
                    if run.stopped:
                        self._log.debug(
                            "%s: %s after the stop failed: %s", self._label, self._what, exc
                        )
                        return
                    self._log.debug("%s: %s failed: %s", self._label, self._what, exc)
                    run.stopped = True
                    if self._run is run:
                        self._run = None
                    self._on_failure(exc)
                    return
                if run.stopped:  # stopped while the call was in flight: do not sleep again
                    return
