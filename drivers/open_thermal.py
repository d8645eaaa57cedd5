"""Heat, cold and contrast pads speaking the relieve open profile (safety class: lease).

Every ON carries a lease (default 3 s, at most 5 s: H4 in docs/safety.md) that the driver renews
every second of clock time while the output is on; if the host goes quiet the pad turns itself OFF.
Setpoints are checked against the hard limits (H1 heat ceiling, C4 cold-plate floor) and the pad's
own ranges before anything is sent: refused, never clamped. Plate temperature arrives as telemetry
every second; an output that keeps heating or cooling after OFF is reported as the fault
``stuck-output`` (the pad's own STUCK_OUTPUT flag, or the plate moving the wrong way).

Frames are built and parsed by :mod:`drivers.codecs.open_profile`; docs/gatt-profile.md is the
specification.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final, Literal, Unpack

from drivers.codecs import open_profile as op
from drivers.core.base import ThermalCaps, ThermalState
from drivers.core.device import DriverOptions
from drivers.core.faults import Fault
from drivers.core.guards import check_cool, check_heat
from drivers.core.open_device import OpenProfileDevice
from drivers.core.watch import StuckOutputDetector, flag_fault_names

__all__ = ["UNKNOWN_MODE", "OpenThermalPad"]

logger = logging.getLogger(__name__)

UNKNOWN_MODE: Final = Fault.UNKNOWN_MODE
"""Fault name: the pad reports an output mode this driver does not know (treated as ON)."""

_MODES: Final[dict[int, Literal["off", "heat", "cold"]]] = {
    op.ThermalMode.OFF: "off",
    op.ThermalMode.HEAT: "heat",
    op.ThermalMode.COLD: "cold",
}


def _celsius_span(span: tuple[int, int] | None) -> tuple[float, float] | None:
    return None if span is None else (op.centi_to_celsius(span[0]), op.centi_to_celsius(span[1]))


class OpenThermalPad(OpenProfileDevice[ThermalState, op.ThermalCapabilities]):
    """A thermal pad (heat, cold or both) on the open profile."""

    DRIVER = "open-thermal"
    KIND = "thermal"
    _CONTROL_POINT_UUID = op.THERMAL_CONTROL_POINT_UUID
    _CAPABILITIES_UUID = op.THERMAL_CAPABILITIES_UUID
    _OFF_COMMAND = "OFF"
    _ALREADY_OFF = "the output was already OFF"

    def __init__(
        self,
        address: str,
        *,
        lease_s: float = op.DEFAULT_LEASE_MS / 1000,
        **options: Unpack[DriverOptions],
    ) -> None:
        super().__init__(address, ThermalState(), lease_s=lease_s, **options)
        self._stuck = StuckOutputDetector()

    # --- what the contract exposes ------------------------------------------------------------

    @property
    def caps(self) -> ThermalCaps:
        """What the pad can do, from its Capabilities characteristic."""
        capabilities = self._require_capabilities()
        spans = [s for s in (self.heat_range, self.cold_range) if s is not None]
        return ThermalCaps(
            can_heat=capabilities.can_heat,
            can_cool=capabilities.can_cool,
            min_celsius=min(s[0] for s in spans),
            max_celsius=max(s[1] for s in spans),
            max_lease_s=capabilities.max_lease_ms / 1000,
            has_plate_sensor=True,
        )

    @property
    def heat_range(self) -> tuple[float, float] | None:
        """The heat setpoint range in °C (None: the pad cannot heat)."""
        return _celsius_span(self._require_capabilities().heat_range_centi)

    @property
    def cold_range(self) -> tuple[float, float] | None:
        """The cold setpoint range in °C (None: the pad cannot cool)."""
        return _celsius_span(self._require_capabilities().cold_range_centi)

    async def heat(self, celsius: float) -> None:
        """Heat towards ``celsius``; renews the lease every second until :meth:`off`."""
        check_heat(celsius, self.heat_range, label=self.label, address=self._info.address)
        await self._start(op.ThermalStart.heat(celsius, self._lease_ms))

    async def cool(self, celsius: float) -> None:
        """Cool towards ``celsius``; renews the lease every second until :meth:`off`."""
        check_cool(celsius, self.cold_range, label=self.label, address=self._info.address)
        await self._start(op.ThermalStart.cold(celsius, self._lease_ms))

    async def off(self) -> None:
        """Turn the output OFF and stop renewing. Idempotent.

        Without a link there is nothing to send: the pad switched itself OFF when the link
        dropped (and would at the latest when its lease ran out).
        """
        was, plate = self._state.mode, self._state.plate_celsius

        def acknowledged() -> None:
            if was != "off":
                self._stuck.switched_off(was, plate)
            self._set(self._off_state())

        await self._switch_off(acknowledged)

    # --- commands -----------------------------------------------------------------------------

    async def _start(self, command: op.ThermalStart) -> None:
        self._require_ready()
        mode = _MODES[command.mode]
        self._stuck.switched_on()
        sent_at = self._clock.now()
        await self._send_start(command, f"{mode} START at {command.setpoint_c:g} °C")
        self._set(
            replace(
                self._state,
                mode=mode,
                setpoint_celsius=command.setpoint_c,
                lease_remaining_s=command.lease_ms / 1000,
                faults=self._faults(),
            )
        )
        self._lease_granted(sent_at)

    # --- set-up and notifications -------------------------------------------------------------

    def _decode_capabilities(self, data: bytes) -> op.ThermalCapabilities:
        return op.ThermalCapabilities.from_bytes(data)

    async def _set_up(self) -> None:
        await self._read_capabilities()
        await self._link.subscribe(op.THERMAL_STATE_UUID, self._on_state_frame)
        await self._link.subscribe(op.PLATE_TEMPERATURE_UUID, self._on_plate_frame)
        self._on_plate_frame(await self._link.read(op.PLATE_TEMPERATURE_UUID, what="plate read"))
        self._on_state_frame(await self._link.read(op.THERMAL_STATE_UUID, what="state read"))
        if self._state.on:
            logger.warning("%s was ON when we connected: switching it OFF first", self.label)
        # OFF first, always (S2 in docs/safety.md): never resume what ran before the link came up.
        await self._send_off()
        self._set(self._off_state())

    def _on_state_frame(self, data: bytes) -> None:
        frame = self._decode(op.ThermalState.from_bytes, data, "state")
        if frame is None:
            return
        mode = _MODES.get(frame.mode)
        faults = flag_fault_names(frame.flags)
        if mode is None:
            logger.error("%s reports unknown mode %d: treating it as ON", self.label, frame.mode)
            mode, faults = "heat", faults | {UNKNOWN_MODE}
        previous = self._state.mode
        if previous != "off" and mode == "off":
            self._went_off_by_itself()
            self._lease.cancel()
            self._stuck.switched_off(previous, self._state.plate_celsius)
        elif mode != "off" and not self._lease.running and self._stuck.watching:
            # ON although OFF was acknowledged and nothing was started since
            self._host_faults.add(Fault.STUCK_OUTPUT)
        self._device_faults = faults
        self._note_telemetry()
        self._set(
            replace(
                self._state,
                mode=mode,
                setpoint_celsius=frame.setpoint_c,
                lease_remaining_s=frame.lease_remaining_ms / 1000 if frame.is_on else None,
                faults=self._faults(),
                updated_at=self._clock.now(),
            )
        )

    def _on_plate_frame(self, data: bytes) -> None:
        frame = self._decode(op.PlateTemperature.from_bytes, data, "plate temperature")
        if frame is None:
            return
        plate = frame.celsius
        self._note_telemetry()
        if self._stuck.plate(plate):
            self._host_faults.add(Fault.STUCK_OUTPUT)
        self._set(
            replace(
                self._state,
                plate_celsius=plate,
                updated_at=self._clock.now(),
                faults=self._faults(),
            )
        )

    # --- hooks --------------------------------------------------------------------------------

    def _telemetry_expected(self) -> bool:
        return True  # the plate temperature arrives every second, ON or OFF

    async def _off_before_disconnect(self) -> None:
        await self.off()
