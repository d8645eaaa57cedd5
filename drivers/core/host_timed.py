"""What the host-timed drivers share: status polls, read-backs and the stuck-output check.

A host-timed device (docs/safety.md: no lease) keeps its output on when the host goes away, so
relieve asks for its status on the injected clock: every ``busy_s`` while the output is on (a
lost link or an output that does not stop is noticed within the S2 watchdog) and every
``idle_s`` when it is off (the vendor apps' keep-alive). After every command the driver reads
the status back; an output reported on after OFF was acknowledged is the fault
``stuck-output``. Without a link OFF cannot be sent: switching off then raises when the output
is on, because it stays on.
"""

from __future__ import annotations

import abc
from dataclasses import replace
from typing import Unpack

from drivers.core.base import DeviceError, DeviceTimeoutError, NotConnectedError, SafetyClass
from drivers.core.device import DriverOptions
from drivers.core.output import OutputDriver, OutputStateT
from drivers.core.polling import Poller
from drivers.core.watch import NOT_ACKNOWLEDGED, STUCK_OUTPUT

__all__ = ["HostTimedDevice"]


class HostTimedDevice(OutputDriver[OutputStateT]):
    """A device without a lease whose status the driver polls (safety class: host-timed)."""

    SAFETY_CLASS = SafetyClass.HOST_TIMED

    def __init__(
        self,
        address: str,
        state: OutputStateT,
        *,
        busy_s: float,
        idle_s: float,
        **options: Unpack[DriverOptions],
    ) -> None:
        super().__init__(address, state, **options)
        self._stopped_on_purpose = False
        self._poller = Poller(
            clock=self._clock,
            poll=self._poll,
            busy=self._output_on,
            on_failure=self._poll_failed,
            label=self.label,
            busy_s=busy_s,
            idle_s=idle_s,
            stop_wait_s=self._link.command_timeout_s,
        )

    @abc.abstractmethod
    async def request_status(self) -> object:
        """Ask the device for its status; the answer also updates :attr:`state`."""

    # --- for the device's commands and reports ------------------------------------------------

    def _nothing_to_switch_off(self, refusal: str) -> bool:
        """True when there is no link and the output is off: OFF has nothing to do.

        False while the link is up. Without a link an output that is on stays on: raises
        :class:`~drivers.core.base.NotConnectedError` with ``refusal`` (what to do instead).
        """
        if self._link.connected:
            return False
        if not self._output_on():
            return True
        raise NotConnectedError(refusal, address=self._info.address)

    def _switched_off(self) -> None:
        """OFF was acknowledged: publish it; an output reported on from here is stuck."""
        self._stopped_on_purpose = True
        self._set(self._off_state())

    async def _read_back(self) -> None:
        """Poll from now on the new schedule, and read back what the device does now."""
        self._poller.restart()
        await self.request_status()

    def _status_arrived(self, on: bool) -> None:
        """A status report arrived: telemetry, and a stuck output when on after OFF."""
        self._note_telemetry()
        if on and self._stopped_on_purpose:
            self._host_faults.add(STUCK_OUTPUT)

    # --- polling and the hooks of DriverBase --------------------------------------------------

    async def _poll(self) -> None:
        await self.request_status()

    def _poll_failed(self, exc: DeviceError) -> None:
        if isinstance(exc, DeviceTimeoutError):
            self._set_host_fault(NOT_ACKNOWLEDGED, present=True)

    def _went_down(self) -> None:
        # Host-timed: the device keeps doing what it did (a mat until its own timer ends);
        # only the link is gone.
        self._set(replace(self._state, connected=False))

    def _stop_output(self) -> None:
        self._poller.cancel()
