"""Making the right device object from a scan result or an address.

::

    device = await open_device("C0:DE:00:00:00:02", backend=backend, clock=clock)
    await device.connect()

:func:`create_device` makes the object of the scan result's driver (or the one given by hand)
as :mod:`drivers.registry` says; :func:`open_device` first listens for the address, so the
driver knows its advertised name and connects without scanning again. Neither connects.
"""

from __future__ import annotations

from drivers import registry
from drivers.core.backend import OS_BACKEND, BleBackend
from drivers.core.base import DeviceError, DeviceNotFoundError
from drivers.core.classify import classification_for_driver
from drivers.core.clock import Clock
from drivers.core.discovery import ScanResult, find
from drivers.registry import AnyDevice

__all__ = ["AnyDevice", "create_device", "open_device"]


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
    return registry.driver(classification.driver).create(
        result.address,
        init_packet=init_packet,
        name=result.name,
        backend=backend,
        clock=clock,
        ble_device=result.device,
    )


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
