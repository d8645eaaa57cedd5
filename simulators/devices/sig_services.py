"""The SIG services every simulated device serves beside its own, and its advertising set-up.

Battery (0x180F: Battery Level 0x2A19, read + notify) and Device Information (0x180A:
manufacturer, model, serial, firmware and hardware strings), encoded with
:mod:`drivers.codecs.sig_common`; and the advertising parameters that put a device on the
air with its name and service UUIDs in the advertising data.
"""

from __future__ import annotations

from collections.abc import Callable

from bumble import gatt
from bumble.device import AdvertisingEventProperties, AdvertisingParameters

from drivers.codecs import sig_common as sig
from simulators.catalog import DeviceSpec
from simulators.devices.gatt import (
    LEGACY_ADVERTISING_DATA_MAX,
    Properties,
    SimCharacteristic,
    service,
)

__all__ = [
    "ADVERTISING_INTERVAL_MS",
    "advertising_parameters",
    "battery_level_characteristic",
    "battery_service",
    "device_information_service",
]

# Advertising interval: 20 ms, the BLE minimum for connectable advertising, so a connect on
# the virtual radio completes within one or two intervals.
ADVERTISING_INTERVAL_MS = 20.0


def battery_level_characteristic(key: str, read: Callable[[], bytes]) -> SimCharacteristic:
    """Battery Level 0x2A19 (read, notify); ``read`` returns the encoded level."""
    return SimCharacteristic(
        sig.BATTERY_LEVEL_UUID,
        Properties.READ | Properties.NOTIFY,
        label=f"{key} battery level",
        read=read,
    )


def battery_service(level: SimCharacteristic) -> gatt.Service:
    """Battery service 0x180F around its level characteristic."""
    return service(sig.BATTERY_SERVICE_UUID, [level])


def _constant(value: bytes) -> Callable[[], bytes]:
    return lambda: value


def device_information_service(spec: DeviceSpec) -> gatt.Service:
    """Device Information 0x180A with the catalog's strings."""
    strings = (
        (sig.MANUFACTURER_NAME_UUID, spec.manufacturer),
        (sig.MODEL_NUMBER_UUID, spec.model),
        (sig.SERIAL_NUMBER_UUID, spec.serial),
        (sig.FIRMWARE_REVISION_UUID, spec.firmware),
        (sig.HARDWARE_REVISION_UUID, spec.hardware),
    )
    information = [
        SimCharacteristic(
            uuid,
            Properties.READ,
            label=f"{spec.key} {sig.DEVICE_INFORMATION_STRING_UUIDS[uuid]}",
            read=_constant(bytes(sig.DeviceInfoString(text))),
        )
        for uuid, text in strings
    ]
    return service(sig.DEVICE_INFORMATION_SERVICE_UUID, information)


def advertising_parameters(data: bytes) -> AdvertisingParameters:
    """Connectable advertising every ADVERTISING_INTERVAL_MS for advertising data ``data``.

    Legacy PDUs (connectable, scannable) when the data fits 31 bytes; otherwise BLE 5
    extended advertising (connectable, not scannable), which carries up to 254 bytes.
    """
    legacy = len(data) <= LEGACY_ADVERTISING_DATA_MAX
    return AdvertisingParameters(
        advertising_event_properties=AdvertisingEventProperties(
            is_connectable=True, is_scannable=legacy, is_legacy=legacy
        ),
        primary_advertising_interval_min=ADVERTISING_INTERVAL_MS,
        primary_advertising_interval_max=ADVERTISING_INTERVAL_MS,
    )
