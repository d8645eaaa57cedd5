"""Pure translations between bumble's view of a peripheral and bleak's.

Advertising data bytes become bleak's ``AdvertisementData`` fields; bumble's discovered GATT
proxies become a ``BleakGATTServiceCollection`` with BlueZ's handle convention:

* a service's handle is its declaration handle;
* a characteristic's handle is its *declaration* handle (BlueZ), not bumble's value handle; the
  value always follows the declaration (Core spec Vol 3, Part G, 3.3), so it is value - 1;
* a descriptor's handle is its own attribute handle;
* the Generic Access (0x1800) and Generic Attribute (0x1801) services are hidden, as BlueZ
  handles them itself and does not export them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection

if TYPE_CHECKING:
    from bumble import core
    from bumble.gatt_client import ServiceProxy

__all__ = [
    "HIDDEN_SERVICE_UUIDS",
    "ParsedAdvertisingData",
    "bleak_uuid",
    "build_service_collection",
    "parse_advertising_data",
    "property_names",
]

GAP_SERVICE_UUID = "00001800-0000-1000-8000-00805f9b34fb"
GATT_SERVICE_UUID = "00001801-0000-1000-8000-00805f9b34fb"
HIDDEN_SERVICE_UUIDS = frozenset({GAP_SERVICE_UUID, GATT_SERVICE_UUID})

_BLUETOOTH_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"

# Advertising data types (Bluetooth Assigned Numbers, "Common Data Types").
_AD_UUID16 = (0x02, 0x03)
_AD_UUID32 = (0x04, 0x05)
_AD_UUID128 = (0x06, 0x07)
_AD_SHORT_NAME = 0x08
_AD_COMPLETE_NAME = 0x09
_AD_TX_POWER = 0x0A
_AD_SERVICE_DATA16 = 0x16
_AD_SERVICE_DATA32 = 0x20
_AD_SERVICE_DATA128 = 0x21
_AD_MANUFACTURER = 0xFF


def _uuid_from_le(raw: bytes) -> str:
    """A 16-, 32- or 128-bit UUID in little-endian bytes as bleak's lower-case 128-bit string."""
    if len(raw) in (2, 4):
        return f"{int.from_bytes(raw, 'little'):08x}{_BLUETOOTH_BASE_UUID_TAIL}"
    return str(uuid.UUID(bytes=bytes(reversed(raw))))


def bleak_uuid(value: core.UUID) -> str:
    """bumble's UUID as bleak's normalised string (``0000180f-0000-1000-8000-00805f9b34fb``)."""
    return _uuid_from_le(value.uuid_bytes)


@dataclass
class ParsedAdvertisingData:
    """The fields of one advertisement (advertising data plus any scan response) bleak reports."""

    local_name: str | None = None
    service_uuids: list[str] = field(default_factory=list)
    service_data: dict[str, bytes] = field(default_factory=dict)
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    tx_power: int | None = None


def _structures(raw: bytes) -> Iterable[tuple[int, bytes]]:
    offset = 0
    while offset + 1 < len(raw):
        length = raw[offset]
        if length == 0 or offset + 1 + length > len(raw):  # padding, or truncated: stop
            break
        yield raw[offset + 1], raw[offset + 2 : offset + 1 + length]
        offset += 1 + length


def parse_advertising_data(raw: bytes) -> ParsedAdvertisingData:
    """Parse advertising (and scan response) data bytes into bleak's fields.

    A complete local name wins over a shortened one; service UUIDs keep their order without
    duplicates; a repeated manufacturer or service-data entry keeps the last value.
    """
    parsed = ParsedAdvertisingData()
    short_name: str | None = None
    for ad_type, data in _structures(raw):
        if ad_type in _AD_UUID16 or ad_type in _AD_UUID32 or ad_type in _AD_UUID128:
            size = 2 if ad_type in _AD_UUID16 else 4 if ad_type in _AD_UUID32 else 16
            for start in range(0, len(data) - size + 1, size):
                value = _uuid_from_le(data[start : start + size])
                if value not in parsed.service_uuids:
                    parsed.service_uuids.append(value)
        elif ad_type == _AD_COMPLETE_NAME:
            parsed.local_name = data.decode("utf-8", errors="replace")
        elif ad_type == _AD_SHORT_NAME:
            short_name = data.decode("utf-8", errors="replace")
        elif ad_type == _AD_TX_POWER and len(data) == 1:
            parsed.tx_power = int.from_bytes(data, "little", signed=True)
        elif ad_type in (_AD_SERVICE_DATA16, _AD_SERVICE_DATA32, _AD_SERVICE_DATA128):
            size = {_AD_SERVICE_DATA16: 2, _AD_SERVICE_DATA32: 4}.get(ad_type, 16)
            if len(data) >= size:
                parsed.service_data[_uuid_from_le(data[:size])] = bytes(data[size:])
        elif ad_type == _AD_MANUFACTURER and len(data) >= 2:
            parsed.manufacturer_data[int.from_bytes(data[:2], "little")] = bytes(data[2:])
    if parsed.local_name is None:
        parsed.local_name = short_name
    return parsed


def property_names(properties: int) -> list[CharacteristicPropertyName]:
    """Characteristic property bits as bleak's property names, in bit order."""
    return [name for bit, name in CHARACTERISTIC_PROPERTIES.items() if properties & bit]


def build_service_collection(
    services: Iterable[ServiceProxy],
    max_write_without_response_size: Callable[[], int],
    wanted: set[str] | None = None,
) -> BleakGATTServiceCollection:
    """bleak's service collection for discovered bumble services (handles as BlueZ has them).

    ``wanted`` (normalised UUID strings) keeps only those services, as bleak's ``services=``
    filter asks; hidden services are left out either way.
    """
    collection = BleakGATTServiceCollection()
    for service in services:
        service_uuid = bleak_uuid(service.uuid)
        if service_uuid in HIDDEN_SERVICE_UUIDS or (wanted and service_uuid not in wanted):
            continue
        bleak_service = BleakGATTService(service, service.handle, service_uuid)
        collection.add_service(bleak_service)
        for characteristic in service.characteristics:
            bleak_characteristic = BleakGATTCharacteristic(
                characteristic,
                characteristic.handle - 1,
                bleak_uuid(characteristic.uuid),
                property_names(int(characteristic.properties)),
                max_write_without_response_size,
                bleak_service,
            )
            collection.add_characteristic(bleak_characteristic)
            for descriptor in characteristic.descriptors:
                collection.add_descriptor(
                    BleakGATTDescriptor(
                        descriptor,
                        descriptor.handle,
                        bleak_uuid(descriptor.type),
                        bleak_characteristic,
                    )
                )
    return collection
