"""Keeping an open-profile output's lease alive: a renewal every second of clock time.

While an output is ON the device holds a lease (SAFETY.md H4, at most 5 s) and turns the
output OFF by itself when no renewal arrives in time. :class:`LeaseKeeper` sends the renewals
on the injected :class:`~drivers.clock.Clock` at absolute deadlines (``start + n * interval``,
so delays do not accumulate), and reports the first renewal that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from drivers.base import DeviceError
from drivers.clock import Clock
from drivers.codecs import open_profile as op

__all__ = ["LeaseKeeper"]

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews one output's lease until stopped (or until a renewal fails)."""

    def __init__(
        self,
        *,
        clock: Clock,
        renew: Callable[[], Awaitable[None]],
        on_failure: Callable[[DeviceError], None],
        label: str,
        interval_s: float = op.RENEW_INTERVAL_S,
    ) -> None:
        self._clock = clock
        self._renew = renew
        self._on_failure = on_failure
        self._label = label
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True while renewals are being sent."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start renewing (the first renewal one interval from now); no-op when running."""
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"lease renewal {self._label}"
        )

    def cancel(self) -> None:
        """Stop renewing now, from synchronous code (the task ends at its next await)."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def stop(self) -> None:
        """Stop renewing and wait until no renewal is in flight."""
        task, self._task = self._task, None
        if task is None or task is asyncio.current_task():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        deadline = self._clock.now() + self.interval_s
        while True:
            await self._clock.sleep_until(deadline)
            # Absolute deadlines; after a stall (a slow renewal) resume from now, never burst.
            deadline = max(deadline + self.interval_s, self._clock.now())
            try:
                await self._renew()
            except DeviceError as exc:
                logger.debug("%s: lease renewal failed: %s", self._label, exc)
                self._task = None
                self._on_failure(exc)
                return
