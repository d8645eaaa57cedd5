"""Keeping an open-profile output's lease alive: a renewal every second of clock time.

While an output is ON the device holds a lease (H4 in docs/safety.md, at most 5 s) and turns the
output OFF by itself when no renewal arrives in time. :class:`LeaseKeeper` sends the renewals
on the injected :class:`~drivers.core.clock.Clock` at absolute deadlines (``start + n * interval``,
so delays do not accumulate), and reports the first renewal that fails. Once stopped it sends
no renewal, even when the cancellation of the one in flight is lost (see
:mod:`drivers.core.periodic`).

A lease that ran out is never renewed. When the host did not run for longer than the lease (a
frozen process, a suspended computer), the first renewal due afterwards finds, on the host's
own clock, that the lease already ran out: it is not sent (a device that took it late would
keep an output on that its host had stopped watching) and the keeper ends with
:class:`LeaseLapsedError`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

from drivers.codecs import open_profile as op
from drivers.core.base import DeviceError
from drivers.core.clock import Clock, at_least_real
from drivers.core.periodic import STOP_WAIT_S, PeriodicTask

__all__ = ["LAPSE_REAL_FLOOR_S", "LeaseKeeper", "LeaseLapsedError"]

# Under a scaled clock (demos, rehearsals) a lease counts at least this much real time before
# the host calls it run out, as a simulated device grants it (real event-loop jitter does not
# speed up). In real time and in virtual time the lease is exactly what was granted.
LAPSE_REAL_FLOOR_S = 0.25


class LeaseLapsedError(DeviceError):
    """The lease ran out, on the host's own clock, before it could be renewed."""


class LeaseKeeper(PeriodicTask):
    """Renews one output's lease until stopped (or until a renewal fails or comes too late)."""

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
            action=self._renew_in_time,
            on_failure=on_failure,
            label=label,
            what="lease renewal",
            stop_wait_s=stop_wait_s,
        )
        self.interval_s = interval_s
        self._send_renewal = renew
        self._lease_s: float | None = None  # the lease the device grants (None: not known)
        self._runs_out_at: float | None = None  # clock time the granted lease ends

    @property
    def runs_out_at(self) -> float | None:
        """Clock time the lease granted last runs out (None: not known)."""
        return self._runs_out_at

    def start(self, *, lease_s: float | None = None, granted_at: float | None = None) -> None:
        """The device granted a lease (an ON was accepted): renew it from now on.

        ``lease_s`` is the lease the device grants and ``granted_at`` the clock time the ON
        carrying it was sent (default now); without ``lease_s`` the keeper cannot tell when a
        lease ran out. Starts renewing (the first renewal one interval from now) unless it
        already runs; a running keeper only takes the new lease.
        """
        if lease_s is not None:
            self._lease_s = at_least_real(self._clock, lease_s, LAPSE_REAL_FLOOR_S)
        sent = self._clock.now() if granted_at is None else granted_at
        self._runs_out_at = None if self._lease_s is None else sent + self._lease_s
        if not self.running:
            self._launch()

    async def _renew_in_time(self) -> None:
        """Renew, unless the lease already ran out on this clock (then LeaseLapsedError)."""
        sent = self._clock.now()
        runs_out_at = self._runs_out_at
        if runs_out_at is not None and sent >= runs_out_at:
            raise LeaseLapsedError(
                f"{self._label}: its lease ran out {sent - runs_out_at:.1f} s before relieve "
                "could renew it (relieve did not run in time), so the device has turned its "
                "output OFF.",
            )
        await self._send_renewal()
        if self._lease_s is not None:
            # counted from the send: the device counts from its acceptance, a little later,
            # so this is never after the lease really ends
            self._runs_out_at = sent + self._lease_s

    async def _ticks(self) -> AsyncGenerator[None, None]:
        deadline = self._clock.now() + self.interval_s
        while True:
            await self._clock.sleep_until(deadline)
            # Absolute deadlines; after a stall (a slow renewal, a frozen host) resume one
            # interval from now, never with a burst of renewals for the ones missed.
            deadline += self.interval_s
            now = self._clock.now()
            if deadline <= now:
                deadline = now + self.interval_s
            yield
