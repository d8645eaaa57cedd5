"""Making the right device object from a scan result or an address.

::

    device = await open_device("C0:DE:00:00:00:02", backend=backend, clock=clock)
    await device.connect()

:func:`create_device` picks the class by the scan result's driver (or the one given by hand);
:func:`open_device` first listens for the address, so the driver knows its advertised name and
connects without scanning again. Neither connects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from drivers.codecs import heating_mat as hm
from drivers.core.backend import OS_BACKEND, BleBackend
from drivers.core.base import DeviceError, DeviceNotFoundError
from drivers.core.classify import classification_for_driver
from drivers.core.clock import Clock
from drivers.core.discovery import ScanResult, find

if TYPE_CHECKING:
    from drivers.core.device import DriverOptions
    from drivers.heating_mat import HeatingMat
    from drivers.open_percussion import OpenPercussionGun
    from drivers.open_thermal import OpenThermalPad
    from drivers.sig_probe import SigThermometer
    from drivers.theragun import Theragun

__all__ = ["AnyDevice", "create_device", "open_device"]

AnyDevice: TypeAlias = "OpenThermalPad | OpenPercussionGun | Theragun | HeatingMat | SigThermometer"
"""Every device class relieve has (the classes, and bleak, load when a device is made)."""


def create_device(
    result: ScanResult,
    *,
    backend: BleBackend = OS_BACKEND,
    clock: Clock | None = None,
    driver: str | None = None,
    init_packet: bytes | None = None,
) -> AnyDevice:
    """The device object for ``result`` (not connected); ``driver`` overrides the guess."""
    classification = (
        classification_for_driver(driver) if driver is not None else result.classification
    )
    label = result.address if not result.name else f"{result.name} ({result.address})"
    if classification is None:
        raise DeviceError(
            f"{label} does not advertise anything relieve recognises; if you know what it is, "
            "name its driver with --driver.",
            address=result.address,
        )
    if classification.driver is None:
        raise DeviceError(
            f"{label} is a {classification.model or classification.kind} that relieve cannot "
            f"drive ({classification.reason}).",
            address=result.address,
        )
    from drivers.heating_mat import HeatingMat
    from drivers.open_percussion import OpenPercussionGun
    from drivers.open_thermal import OpenThermalPad
    from drivers.sig_probe import SigThermometer
    from drivers.theragun import Theragun

    common: DriverOptions = {
        "name": result.name,
        "backend": backend,
        "clock": clock,
        "ble_device": result.device,
    }
    match classification.driver:
        case "open-thermal":
            return OpenThermalPad(result.address, **common)
        case "open-percussion":
            return OpenPercussionGun(result.address, **common)
        case "theragun":
            return Theragun(result.address, **common)
        case "heating-mat":
            packet = hm.DEFAULT_INIT_PACKET if init_packet is None else init_packet
            return HeatingMat(result.address, init_packet=packet, **common)
        case _:
            return SigThermometer(result.address, **common)


async def open_device(
    address: str,
    *,
    backend: BleBackend = OS_BACKEND,
    clock: Clock | None = None,
    driver: str | None = None,
    init_packet: bytes | None = None,
    timeout_s: float | None = None,
) -> AnyDevice:
    """Listen for ``address`` and make its device object (not connected)."""
    result = await find(address, backend, timeout_s=timeout_s)
    if result is None:
        raise DeviceNotFoundError(
            f"Nothing answers at {address.upper()}: the device is off, out of range, or "
            "connected to another phone or computer; switch it on, bring it closer, and try "
            "again (relieve scan lists what is in range).",
            address=address.upper(),
        )
    return create_device(
        result, backend=backend, clock=clock, driver=driver, init_packet=init_packet
    )
