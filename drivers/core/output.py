"""What every device with an output (pad, mat, gun) shares: one state, published on change.

:class:`OutputDriver` sits between :class:`~drivers.core.device.DriverBase` (life cycle) and the
two safety classes, :class:`~drivers.core.open_device.OpenProfileDevice` (lease) and
:class:`~drivers.core.host_timed.HostTimedDevice` (host-timed). It holds the latest
:class:`~drivers.core.base.ThermalState` or :class:`~drivers.core.base.PercussionState`, replaces
it on every change and publishes it to the callbacks, and implements the life-cycle hooks that only
touch that state (connected, battery, host-detected faults).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar, Unpack

from drivers.core.base import PercussionState, ThermalState
from drivers.core.connection import AttDescriber
from drivers.core.device import DriverBase, DriverOptions

__all__ = ["OutputDriver", "OutputStateT"]

OutputStateT = TypeVar("OutputStateT", bound=ThermalState | PercussionState)


class OutputDriver(DriverBase[OutputStateT]):
    """A device with one output whose state is a frozen dataclass replaced on every change."""

    def __init__(
        self,
        address: str,
        state: OutputStateT,
        *,
        describe_att_error: AttDescriber | None = None,
        **options: Unpack[DriverOptions],
    ) -> None:
        super().__init__(address, describe_att_error=describe_att_error, **options)
        self._state: OutputStateT = state

    @property
    def state(self) -> OutputStateT:
        """The latest state (replaced, never mutated)."""
        return self._state

    # --- what a device may refine ------------------------------------------------------------

    def _output_on(self) -> bool:
        """Whether the latest state has the output on (heating, cooling, running)."""
        state = self._state
        return state.on if isinstance(state, ThermalState) else state.running

    def _off_state(self) -> OutputStateT:
        """The latest state with the output OFF and no target (nothing else changed)."""
        state = self._state
        if isinstance(state, ThermalState):
            return replace(state, mode="off", setpoint_celsius=None, lease_remaining_s=None)
        return replace(state, running=False, target_rpm=None)

    def _faults(self) -> frozenset[str]:
        """Every fault to publish: by default the ones the host detected."""
        return frozenset(self._host_faults)

    # --- publishing and the hooks of DriverBase -----------------------------------------------

    def _set(self, state: OutputStateT) -> None:
        if state != self._state:
            self._state = state
            self._publish(state)

    def _went_up(self) -> None:
        self._set(replace(self._state, connected=True, battery=self._info.battery))

    def _faults_changed(self) -> None:
        self._set(replace(self._state, faults=self._faults()))

    def _telemetry_expected(self) -> bool:
        return self._output_on()

    def _battery_changed(self, percent: int) -> None:
        self._set(replace(self._state, battery=percent))
