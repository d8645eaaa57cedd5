"""Host-timed devices: status polls on the clock, and answers that come back as notifications.

Vendor protocols without a lease answer a status request with a notification. A
:class:`Reply` is the future the notification callback resolves; :func:`request` sends the
request, waits a real-time moment for the answer and retries like any other command.
A :class:`Poller` asks for the status on the injected clock, often while the output runs (so a
lost link or a stuck output is noticed within the S2 watchdog) and rarely when idle (the
keep-alive the vendor apps send).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

from drivers.core.base import DeviceError, DeviceTimeoutError
from drivers.core.clock import Clock
from drivers.core.connection import COMMAND_RETRIES
from drivers.core.periodic import STOP_WAIT_S, PeriodicTask

__all__ = ["REPLY_TIMEOUT_S", "Poller", "Reply", "request"]

logger = logging.getLogger(__name__)

# Real seconds to wait for the notification that answers a request (the write itself was
# acknowledged already; the answer follows within a connection interval or two).
REPLY_TIMEOUT_S = 2.0

_T = TypeVar("_T")


class Reply(Generic[_T]):
    """The answer to the one request in flight, resolved from a notification callback."""

    def __init__(self) -> None:
        self._future: asyncio.Future[_T] | None = None

    def expect(self) -> asyncio.Future[_T]:
        """A fresh future for the next answer (an earlier unanswered one is dropped)."""
        if self._future is not None and not self._future.done():
            self._future.cancel()
        self._future = asyncio.get_running_loop().create_future()
        return self._future

    def resolve(self, value: _T) -> None:
        """An answer arrived (unsolicited ones are welcome too)."""
        if self._future is not None and not self._future.done():
            self._future.set_result(value)


async def request(
    reply: Reply[_T],
    send: Callable[[], Awaitable[None]],
    *,
    what: str,
    label: str,
    address: str,
    timeout_s: float = REPLY_TIMEOUT_S,
    withdrawn: Callable[[], bool] | None = None,
) -> _T:
    """Send a request and return the notification that answers it, retrying when none comes.

    ``withdrawn`` is asked before every send; when it says True the request is abandoned with
    ``CancelledError`` (a poll whose poller was stopped: see :meth:`Poller.call_withdrawn`).
    """
    tries = 1 + COMMAND_RETRIES
    for number in range(1, tries + 1):
        if withdrawn is not None and withdrawn():
            raise asyncio.CancelledError(f"the {what} was withdrawn")
        answer = reply.expect()
        await send()
        try:
            async with asyncio.timeout(timeout_s):
                return await answer
        except TimeoutError:
            logger.warning("%s: no answer to the %s (attempt %d of %d)", label, what, number, tries)
    raise DeviceTimeoutError(
        f"{label} did not answer the {what} after {COMMAND_RETRIES} retries; it may be out of "
        "range or hung: switch it off at the device.",
        address=address,
    )


class Poller(PeriodicTask):
    """Calls ``poll`` every ``busy_s`` clock seconds while ``busy()``, else every ``idle_s``."""

    def __init__(
        self,
        *,
        clock: Clock,
        poll: Callable[[], Awaitable[None]],
        busy: Callable[[], bool],
        on_failure: Callable[[DeviceError], None],
        label: str,
        busy_s: float,
        idle_s: float,
        stop_wait_s: float = STOP_WAIT_S,
    ) -> None:
        super().__init__(
            clock=clock,
            action=poll,
            on_failure=on_failure,
            label=label,
            what="status poll",
            stop_wait_s=stop_wait_s,
        )
        self._busy = busy
        self.busy_s = busy_s
        self.idle_s = idle_s

    def restart(self) -> None:
        """(Re)start polling from now: call it when the output starts or stops."""
        self.cancel()
        self._launch()

    async def _ticks(self) -> AsyncGenerator[None, None]:
        while True:
            await self._clock.sleep(self.busy_s if self._busy() else self.idle_s)
            yield
