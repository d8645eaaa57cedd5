"""Keeping an open-profile output's lease alive: a renewal every second of clock time.

While an output is ON the device holds a lease (SAFETY.md H4, at most 5 s) and turns the
output OFF by itself when no renewal arrives in time. :class:`LeaseKeeper` sends the renewals
on the injected :class:`~drivers.clock.Clock` at absolute deadlines (``start + n * interval``,
so delays do not accumulate), and reports the first renewal that fails. Once stopped it sends
no renewal, even when the cancellation of the one in flight is lost (see :mod:`drivers.periodic`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

from drivers.base import DeviceError
from drivers.clock import Clock
from drivers.codecs import open_profile as op
from drivers.periodic import STOP_WAIT_S, PeriodicTask

__all__ = ["LeaseKeeper"]


class LeaseKeeper(PeriodicTask):
    """Renews one output's lease until stopped (or until a renewal fails)."""

    def __init__(
        self,
        *,
        clock: Clock,
        renew: Callable[[], Awaitable[None]],
        on_failure: Callable[[DeviceError], None],
        label: str,
        interval_s: float = op.RENEW_INTERVAL_S,
        stop_wait_s: float = STOP_WAIT_S,
    ) -> None:
        super().__init__(
            clock=clock,
            action=renew,
            on_failure=on_failure,
            label=label,
            what="lease renewal",
            stop_wait_s=stop_wait_s,
        )
        self.interval_s = interval_s

    def start(self) -> None:
        """Start renewing (the first renewal one interval from now); no-op when running."""
        if not self.running:
            self._launch()

    async def _ticks(self) -> AsyncGenerator[None, None]:
        deadline = self._clock.now() + self.interval_s
        while True:
            await self._clock.sleep_until(deadline)
            # Absolute deadlines; after a stall (a slow renewal) resume from now, never burst.
            deadline = max(deadline + self.interval_s, self._clock.now())
            yield
