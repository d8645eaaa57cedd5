"""Skin-temperature probes on standard SIG services (any off-the-shelf BLE thermometer).

* Health Thermometer (0x1809): Temperature Measurement 0x2A1C indications (IEEE-11073 FLOAT,
  Celsius or Fahrenheit, optional time stamp and type). Preferred when present.
* Environmental Sensing (0x181A): Temperature 0x2A6E (sint16, 0.01 °C), notified when the
  sensor notifies, else read every second of clock time.

A probe has no output, so there is nothing to switch off; its readings go to the callbacks as
:class:`~drivers.core.base.ProbeReading` (``celsius`` None when the probe reports NaN or an
infinity). A lost link publishes nothing: the reading simply stops being fresh, and
``connected`` turns False.
"""

from __future__ import annotations

import logging
import math
from typing import Final, Unpack

from drivers.codecs import sig_common as sig
from drivers.codecs import sig_thermometer as ht
from drivers.core.base import DeviceError, ProbeReading, SafetyClass
from drivers.core.device import DriverBase, DriverOptions
from drivers.core.polling import Poller

__all__ = ["POLL_S", "SigThermometer"]

logger = logging.getLogger(__name__)

# Clock seconds between reads of a Temperature (0x2A6E) that does not notify: as often as the
# open profile's telemetry.
POLL_S = 1.0

SOURCE_HEALTH_THERMOMETER: Final = "health-thermometer"
SOURCE_ENVIRONMENTAL: Final = "environmental-sensing"


class SigThermometer(DriverBase[ProbeReading]):
    """A SIG Health Thermometer or Environmental Sensing temperature probe."""

    DRIVER = "sig-thermometer"
    KIND = "probe"
    # A probe switches nothing on; "host-timed" only says no lease is involved.
    SAFETY_CLASS = SafetyClass.NONE  # a probe switches nothing on

    def __init__(self, address: str, **options: Unpack[DriverOptions]) -> None:
        super().__init__(address, **options)
        self._reading: ProbeReading | None = None
        self.source: str | None = None
        """Which service the readings come from, once connected."""
        self._poller = Poller(
            clock=self._clock,
            poll=self._poll,
            busy=lambda: True,
            on_failure=lambda exc: logger.warning("%s: %s", self.label, exc),
            label=self.label,
            busy_s=POLL_S,
            idle_s=POLL_S,
            stop_wait_s=self._link.command_timeout_s,
        )

    @property
    def reading(self) -> ProbeReading | None:
        """The latest reading (None before the first)."""
        return self._reading

    async def _set_up(self) -> None:
        if self._link.has(sig.TEMPERATURE_MEASUREMENT_UUID):
            self.source = SOURCE_HEALTH_THERMOMETER
            await self._link.subscribe(sig.TEMPERATURE_MEASUREMENT_UUID, self._on_measurement)
        elif self._link.has(sig.TEMPERATURE_UUID):
            self.source = SOURCE_ENVIRONMENTAL
            if self._link.can_notify(sig.TEMPERATURE_UUID):
                await self._link.subscribe(sig.TEMPERATURE_UUID, self._on_temperature)
            else:
                self._poller.restart()
            await self._poll()
        else:
            raise DeviceError(
                f"{self.label} has no Health Thermometer or Temperature characteristic; it is "
                "not a thermometer relieve can read.",
                address=self._info.address,
            )

    async def _poll(self) -> None:
        self._on_temperature(await self._link.read(sig.TEMPERATURE_UUID, what="temperature read"))

    def _on_measurement(self, data: bytes) -> None:
        frame = self._decode(ht.TemperatureMeasurement.from_bytes, data, "measurement")
        if frame is not None:
            celsius = frame.celsius
            self._record(celsius if math.isfinite(celsius) else None)

    def _on_temperature(self, data: bytes) -> None:
        frame = self._decode(sig.EnvironmentalTemperature.from_bytes, data, "temperature")
        if frame is not None:
            self._record(frame.celsius)

    def _record(self, celsius: float | None) -> None:
        self._note_telemetry()
        self._reading = ProbeReading(celsius=celsius, at=self._clock.now())
        self._publish(self._reading)

    def _went_up(self) -> None:
        return

    def _went_down(self) -> None:
        return

    def _faults_changed(self) -> None:
        return

    def _stop_output(self) -> None:
        self._poller.cancel()
