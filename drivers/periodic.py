"""One background task that calls a device action on the injected clock until told to stop.

Lease renewals (:class:`~drivers.lease.LeaseKeeper`) and status polls
(:class:`~drivers.polling.Poller`) are the same loop: wait on the
:class:`~drivers.clock.Clock`, send, repeat; stop from synchronous code (a link loss) or wait
until nothing is in flight (an orderly OFF); and on the first action that fails, end and report
it, because the caller must react (a renewal not acknowledged, a device that stopped answering).
:class:`PeriodicTask` is that loop; a subclass says when the next call is due.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from drivers.base import DeviceError
from drivers.clock import Clock

__all__ = ["PeriodicTask"]


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
    ) -> None:
        self._clock = clock
        self._action = action
        self._on_failure = on_failure
        self._label = label
        self._what = what
        self._task: asyncio.Task[None] | None = None
        # Messages go to the subclass's module logger (drivers.lease, drivers.polling).
        self._log = logging.getLogger(type(self).__module__)

    @property
    def running(self) -> bool:
        """True while the task runs (between a start and a stop or a failure)."""
        return self._task is not None and not self._task.done()

    def cancel(self) -> None:
        """Stop now, from synchronous code (the task ends at its next await)."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def stop(self) -> None:
        """Stop and wait until no call is in flight."""
        task, self._task = self._task, None
        if task is None or task is asyncio.current_task():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _launch(self) -> None:
        """Start the task (the first call at the first tick)."""
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"{self._what} {self._label}"
        )

    @abc.abstractmethod
    def _ticks(self) -> AsyncGenerator[None, None]:
        """Yields whenever the next call is due (sleeping on the clock in between)."""

    async def _run(self) -> None:
        async with contextlib.aclosing(self._ticks()) as ticks:
            async for _ in ticks:
                try:
                    await self._action()
                except DeviceError as exc:
                    self._log.debug("%s: %s failed: %s", self._label, self._what, exc)
                    self._task = None
                    self._on_failure(exc)
                    return
