"""What a simulated device looks like from the outside (tests, ``--events-json``), and who watches.

Pure: no bumble, no asyncio. :class:`DeviceState` is one frozen snapshot with the fields every
device family uses (the ones a family has no use for stay ``None``); :class:`Watchers` keeps
the change callbacks and hands each new snapshot to all of them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

__all__ = ["DeviceState", "StateCallback", "Watchers"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceState:
    """One snapshot of a simulated device at clock time ``time``.

    ``output_on``/``mode``/``setpoint_c`` are what the device *reports*; ``energised`` is what
    the output physically does (they differ when a stuck-heater fault holds the output on).
    ``plate_c``/``skin_c`` are true temperatures; ``sensor_c`` is what the device's own sensor
    reads (NaN or drifted under a sensor fault).
    """

    key: str
    address: str
    time: float
    powered: bool
    advertising: bool
    connected: bool
    output_on: bool = False
    energised: bool = False
    mode: str = "off"
    setpoint_c: float | None = None
    plate_c: float | None = None
    skin_c: float | None = None
    sensor_c: float | None = None
    speed_ppm: float | None = None
    target_speed_ppm: int | None = None
    force_n: float | None = None
    level: int | None = None
    timer_remaining_s: float | None = None
    run_time_s: float | None = None
    lease_remaining_s: float | None = None
    battery_pct: float = 100.0
    # latched status flags, by the drivers' fault names (``lease-expired``: drivers.core.faults)
    flags: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()  # injected faults in force, by kind (``stuck_heater``)
    placed_under: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (NaN becomes None; floats rounded to what a sensor resolves)."""
        out: dict[str, object] = {}
        for name, value in asdict(self).items():
            if isinstance(value, float):
                out[name] = None if math.isnan(value) else round(value, 3)
            elif isinstance(value, tuple):
                out[name] = list(value)
            else:
                out[name] = value
        return out


StateCallback = Callable[[DeviceState], None]
"""Called with every new snapshot; must not block (it runs in the device's task)."""


class Watchers:
    """The registered state callbacks of one device."""

    def __init__(self) -> None:
        self._callbacks: list[StateCallback] = []

    def register(self, callback: StateCallback) -> Callable[[], None]:
        """Add ``callback``; the returned function removes it again (idempotent)."""
        self._callbacks.append(callback)

        def unregister() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unregister

    def __len__(self) -> int:
        return len(self._callbacks)

    def publish(self, state: DeviceState) -> None:
        """Hand ``state`` to every callback; a failing callback is logged, not propagated."""
        for callback in list(self._callbacks):
            try:
                callback(state)
            except Exception:
                logger.exception("a state callback of %s failed", state.key)
