"""A simulated skin-temperature probe: SIG Health Thermometer (0x1809) on the virtual radio.

It lies under a pad (``place_under``) and measures that pad's skin-side temperature; with no
pad it reads resting skin temperature. Temperature Measurement 0x2A1C is indicated every
Measurement Interval (0x2A21, read/write, seconds; 0 = no periodic measurement), Intermediate
Temperature 0x2A1E is notified every clock second, Temperature Type 0x2A1D reads "body".
Values are IEEE-11073 FLOATs built by :mod:`drivers.codecs.sig_thermometer`; a sensor fault
sends the FLOAT NaN.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Protocol

from bumble import gatt

from drivers.codecs import sig_common as sig
from drivers.codecs import sig_thermometer as ht
from drivers.codecs.errors import DecodeError
from drivers.core.clock import Clock
from simulators.catalog import DeviceFamily, DeviceSpec
from simulators.devices.base import SimulatedDevice
from simulators.devices.gatt import AttRefusal, Properties, SimCharacteristic, service
from simulators.devices.state import DeviceState
from simulators.physics import SKIN_REST_C, BatteryParams, drain_battery

__all__ = [
    "ATT_OUT_OF_RANGE",
    "DEFAULT_INTERVAL_S",
    "MAX_INTERVAL_S",
    "SimSkinProbe",
    "SkinSource",
]

# Measurement Interval the probe starts with: one measurement per clock second, so the
# safety supervisor sees the skin-side temperature as often as the plate temperature.
DEFAULT_INTERVAL_S = 1
# Longest interval the probe accepts: one hour.
MAX_INTERVAL_S = 3600
# "Out of Range" (Core Specification Supplement, common profile error codes): the answer to a
# Measurement Interval outside 0..MAX_INTERVAL_S, as the Health Thermometer Service requires.
ATT_OUT_OF_RANGE = 0xFF
# ATT "Invalid Attribute Value Length".
ATT_INVALID_LENGTH = 0x0D


class SkinSource(Protocol):
    """A pad a probe can lie under."""

    @property
    def key(self) -> str: ...

    def skin_c(self) -> float:
        """The pad's skin-side temperature now."""
        ...


class SimSkinProbe(SimulatedDevice):
    """A skin thermometer under a pad."""

    family = DeviceFamily.SKIN_PROBE
    described_as = "a skin probe"

    def __init__(
        self,
        spec: DeviceSpec,
        *,
        clock: Clock,
        battery_pct: float = 100.0,
        battery_params: BatteryParams | None = None,
    ) -> None:
        super().__init__(spec, clock=clock, battery_pct=battery_pct)
        self.under: SkinSource | None = None
        self.interval_s = DEFAULT_INTERVAL_S
        self._battery = battery_pct
        self._battery_params = battery_params or BatteryParams()
        self._last_t = clock.now()
        self._next_measurement = clock.now()
        self._measurement_char = SimCharacteristic(
            sig.TEMPERATURE_MEASUREMENT_UUID,
            Properties.INDICATE,
            label=f"{self.key} temperature measurement",
        )
        self._intermediate_char = SimCharacteristic(
            sig.INTERMEDIATE_TEMPERATURE_UUID,
            Properties.NOTIFY,
            label=f"{self.key} intermediate temperature",
        )

    # --- test-side API -------------------------------------------------------------------

    def place_under(self, pad: SkinSource | None) -> None:
        """Lay the probe under ``pad`` (None: on bare skin)."""
        self.under = pad
        self._poke()

    def true_skin_c(self) -> float:
        """The temperature at the probe's tip now (before any sensor fault)."""
        return SKIN_REST_C if self.under is None else self.under.skin_c()

    def reading_c(self) -> float:
        """What the probe reports now (NaN or drifted under a sensor fault)."""
        now = self.clock.now()
        self._advance(now)
        return self.faults.sensor_reading(self.true_skin_c(), now)

    def measurement(self) -> ht.TemperatureMeasurement:
        """The measurement frame for the current reading."""
        reading = self.reading_c()
        return ht.TemperatureMeasurement.from_celsius(
            reading if math.isfinite(reading) else math.nan
        )

    # --- GATT ----------------------------------------------------------------------------

    def _build_services(self) -> list[gatt.Service]:
        kind = SimCharacteristic(
            sig.TEMPERATURE_TYPE_UUID,
            Properties.READ,
            label=f"{self.key} temperature type",
            read=lambda: bytes(ht.TemperatureTypeValue(ht.TemperatureType.BODY)),
        )
        interval = SimCharacteristic(
            sig.MEASUREMENT_INTERVAL_UUID,
            Properties.READ | Properties.WRITE,
            label=f"{self.key} measurement interval",
            read=lambda: bytes(ht.MeasurementInterval(self.interval_s)),
            write=self._writer(self._on_interval),
        )
        characteristics = [self._measurement_char, kind, self._intermediate_char, interval]
        return [service(sig.HEALTH_THERMOMETER_SERVICE_UUID, characteristics)]

    def _service_uuids(self) -> list[str]:
        return [sig.HEALTH_THERMOMETER_SERVICE_UUID]

    def _on_interval(self, data: bytes, now: float) -> None:
        try:
            interval = ht.MeasurementInterval.from_bytes(data)
        except DecodeError as exc:
            raise AttRefusal(ATT_INVALID_LENGTH, str(exc)) from exc
        if interval.seconds > MAX_INTERVAL_S:
            raise AttRefusal(ATT_OUT_OF_RANGE, f"{interval.seconds} s > {MAX_INTERVAL_S} s")
        self.interval_s = interval.seconds
        self._next_measurement = now

    # --- firmware hooks ------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        if now > self._last_t:
            self._battery = drain_battery(
                self._battery, self._battery_params.idle, now - self._last_t
            )
            self._last_t = now

    def _next_deadline(self) -> float | None:
        return self._next_measurement if self.interval_s and self.connected else None

    async def _periodic(self, now: float) -> None:
        await self._notify(self._intermediate_char, bytes(self.measurement()))

    async def _notify_changes(self, now: float) -> None:
        if self.interval_s and self.connected and now >= self._next_measurement:
            missed = math.floor((now - self._next_measurement) / self.interval_s) + 1
            self._next_measurement += missed * self.interval_s
            await self._notify(self._measurement_char, bytes(self.measurement()), indicate=True)

    def _link_lost(self, now: float) -> None:
        del now

    def _set_battery(self, percent: float) -> None:
        self._battery = percent

    def _battery_pct(self) -> float:
        return self._battery

    def _drain(self, now: float) -> None:
        del now
        self._battery = 0.0

    def _describe(self, base: DeviceState, now: float) -> DeviceState:
        return replace(
            base,
            skin_c=self.true_skin_c(),
            sensor_c=self.faults.sensor_reading(self.true_skin_c(), now),
            placed_under=None if self.under is None else self.under.key,
        )
