"""The relieve open profile: one import for drivers and simulators.

A GATT profile for heat/cold pads and massage guns that anyone may implement (ESP32 builds,
vendors who want to interoperate, our simulators). The specification a firmware author works
from is docs/gatt-profile.md; this module is its executable form.

In short:

* UUIDs: ``5245xxxx-4c56-4f50-8e4c-72656c696576`` with a 16-bit short id in ``xxxx``
  (:func:`open_uuid`); thermal service 0x0100, percussion service 0x0200.
* Each service has a Control Point (write with response; opcode + little-endian parameters),
  a State snapshot (read, notify), a Measurement (read, notify) and Capabilities (read).
* Results of a command come back as the write response: success, or an ATT error from
  :class:`AttError` (0x80-0x9F application codes). There are no response notifications;
  the State characteristic notifies the change.
* Every ON carries a lease of 1..5000 ms (:data:`LEASE_MAX_MS`; longer is refused). The host
  renews it every :data:`RENEW_INTERVAL_S`; without renewal the device turns the output OFF
  and latches ``LEASE_EXPIRED``. On link loss the device turns every output OFF at once and
  latches ``LINK_LOST``.
* Beside the profile a device exposes SIG Battery (0x180F) and Device Information (0x180A),
  and advertises its open-profile service UUID in the advertising data (not only in the scan
  response) with a local name of at most :data:`MAX_ADV_NAME_BYTES` bytes.
"""

from __future__ import annotations

from typing import Final

from drivers.codecs.open_common import (
    BASE_UUID,
    DEFAULT_LEASE_MS,
    EVENT_FLAGS,
    FAULT_FLAGS,
    LEASE_MAX_MS,
    MAX_ADV_NAME_BYTES,
    NO_FLAGS,
    NOT_KNOWN_S16,
    PROFILE_VERSION,
    RENEW_INTERVAL_S,
    TELEMETRY_INTERVAL_S,
    AttError,
    ClearFlags,
    CommandRejectedError,
    LeaseRenew,
    Opcode,
    OutputOff,
    StatusFlags,
    celsius_to_centi,
    centi_to_celsius,
    describe_att_error,
    grant_lease,
    open_uuid,
)
from drivers.codecs.open_percussion import (
    LOAD_NOT_KNOWN,
    PERCUSSION_CAPABILITIES_UUID,
    PERCUSSION_CONTROL_POINT_UUID,
    PERCUSSION_MEASUREMENT_UUID,
    PERCUSSION_SERVICE_UUID,
    PERCUSSION_STATE_UUID,
    PercussionCapabilities,
    PercussionCommand,
    PercussionFeatures,
    PercussionMeasurement,
    PercussionStart,
    PercussionState,
    decode_percussion_command,
)
from drivers.codecs.open_thermal import (
    PLATE_TEMPERATURE_UUID,
    THERMAL_CAPABILITIES_UUID,
    THERMAL_CONTROL_POINT_UUID,
    THERMAL_SERVICE_UUID,
    THERMAL_STATE_UUID,
    PlateTemperature,
    ThermalCapabilities,
    ThermalCommand,
    ThermalFeatures,
    ThermalMode,
    ThermalStart,
    ThermalState,
    decode_thermal_command,
)

__all__ = [
    "BASE_UUID",
    "DEFAULT_LEASE_MS",
    "EVENT_FLAGS",
    "FAULT_FLAGS",
    "LEASE_MAX_MS",
    "LOAD_NOT_KNOWN",
    "MAX_ADV_NAME_BYTES",
    "NOT_KNOWN_S16",
    "NO_FLAGS",
    "OPEN_SERVICE_UUIDS",
    "PERCUSSION_CAPABILITIES_UUID",
    "PERCUSSION_CONTROL_POINT_UUID",
    "PERCUSSION_MEASUREMENT_UUID",
    "PERCUSSION_SERVICE_UUID",
    "PERCUSSION_STATE_UUID",
    "PLATE_TEMPERATURE_UUID",
    "PROFILE_VERSION",
    "RENEW_INTERVAL_S",
    "TELEMETRY_INTERVAL_S",
    "THERMAL_CAPABILITIES_UUID",
    "THERMAL_CONTROL_POINT_UUID",
    "THERMAL_SERVICE_UUID",
    "THERMAL_STATE_UUID",
    "AttError",
    "ClearFlags",
    "CommandRejectedError",
    "LeaseRenew",
    "Opcode",
    "OutputOff",
    "PercussionCapabilities",
    "PercussionCommand",
    "PercussionFeatures",
    "PercussionMeasurement",
    "PercussionStart",
    "PercussionState",
    "PlateTemperature",
    "StatusFlags",
    "ThermalCapabilities",
    "ThermalCommand",
    "ThermalFeatures",
    "ThermalMode",
    "ThermalStart",
    "ThermalState",
    "celsius_to_centi",
    "centi_to_celsius",
    "decode_percussion_command",
    "decode_thermal_command",
    "describe_att_error",
    "grant_lease",
    "open_uuid",
]

OPEN_SERVICE_UUIDS: Final = frozenset({THERMAL_SERVICE_UUID, PERCUSSION_SERVICE_UUID})
"""Service UUIDs that mark an advertisement as an open-profile device."""
