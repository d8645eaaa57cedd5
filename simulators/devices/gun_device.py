"""What both simulated massage guns share beside their protocols (open profile, Theragun).

Both run a :class:`~.percussion_core.GunCore`: the user presses the gun into a muscle
(:meth:`GunDevice.press`), the firmware task keeps ticking while the motor turns, and a
snapshot shows the motor, the run and the lease the same way for both.
"""

from __future__ import annotations

from dataclasses import replace

from simulators.devices.core_device import CoreDevice
from simulators.devices.percussion_core import GunCore
from simulators.devices.state import DeviceState

__all__ = ["GunDevice"]


class GunDevice(CoreDevice[GunCore]):
    """A simulated massage gun (the protocol is the subclass's)."""

    def press(self, force_n: float) -> None:
        """The user presses the gun into a muscle with ``force_n`` newtons (0 = lifted off)."""
        self.core.press(force_n, self.clock.now())
        self._poke()

    def _busy(self) -> bool:
        return self.core.moving

    def _reported_flags(self) -> tuple[str, ...]:
        """The status flags a snapshot shows (default: none, the protocol has no flags)."""
        return ()

    def _describe(self, base: DeviceState, now: float) -> DeviceState:
        core = self.core
        return replace(
            base,
            output_on=core.running,
            energised=core.motor.speed_ppm > 0,
            mode="run" if core.running else "off",
            speed_ppm=core.motor.speed_ppm,
            target_speed_ppm=core.target_ppm,
            force_n=core.force_n,
            run_time_s=core.run_time_s(now) if core.running else None,
            lease_remaining_s=core.lease_remaining_s(now),
            flags=self._reported_flags(),
        )
