"""Scanning for devices and telling what they are (:mod:`drivers.core.classify` decides).

* :func:`scan` listens for ``timeout_s`` and returns every device heard, classified;
* :func:`find` listens until one address is heard (or the time is up).

Both run on the backend given (:class:`~drivers.core.backend.BleBackend`): the OS stack or a
simulated radio. Scan time-outs are real time. bleak is imported when a scan starts, so the
controller can hold scan results without loading it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from drivers.core.backend import OS_BACKEND, BleBackend, bluetooth_unavailable, message_of
from drivers.core.base import DeviceError, SafetyClass
from drivers.core.classify import Classification, Kind, classify

if TYPE_CHECKING:
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

__all__ = ["DEFAULT_SCAN_S", "ScanResult", "find", "scan"]

logger = logging.getLogger(__name__)

# Real seconds `relieve scan` listens by default: several advertising intervals of a device
# that advertises slowly (1 s), as BLE scanners usually do.
DEFAULT_SCAN_S = 5.0


@dataclass(frozen=True)
class ScanResult:
    """One device heard on the radio."""

    address: str
    name: str | None
    rssi: int | None
    service_uuids: tuple[str, ...]
    classification: Classification | None
    device: BLEDevice | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, device: BLEDevice, advertisement: AdvertisementData) -> ScanResult:
        """From what bleak reports."""
        name = advertisement.local_name or device.name
        services = tuple(uuid.lower() for uuid in advertisement.service_uuids)
        return cls(
            address=device.address.upper(),
            name=name,
            rssi=advertisement.rssi,
            service_uuids=services,
            classification=classify(name, services),
            device=device,
        )

    @property
    def kind(self) -> Kind | None:
        """``thermal``, ``percussion``, ``probe``, or None when not recognised."""
        return None if self.classification is None else self.classification.kind

    @property
    def driver(self) -> str | None:
        """The driver that can drive it, or None."""
        return None if self.classification is None else self.classification.driver

    @property
    def safety_class(self) -> SafetyClass | None:
        """``lease`` or ``host-timed`` for an output; None for a probe or an unknown device."""
        return None if self.classification is None else self.classification.safety_class

    @property
    def supported(self) -> bool:
        """Whether relieve can drive it."""
        return self.classification is not None and self.classification.supported

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``relieve scan --json``)."""
        return {
            "address": self.address,
            "name": self.name,
            "kind": self.kind,
            "driver": self.driver,
            "rssi": self.rssi,
            "safety_class": None if self.safety_class is None else str(self.safety_class),
            "model": None if self.classification is None else self.classification.model,
            "service_uuids": list(self.service_uuids),
        }


async def scan(
    backend: BleBackend = OS_BACKEND, *, timeout_s: float = DEFAULT_SCAN_S
) -> list[ScanResult]:
    """Every device heard within ``timeout_s``, strongest signal first."""
    from bleak import BleakScanner
    from bleak.exc import BleakBluetoothNotAvailableError, BleakError

    try:
        found = await BleakScanner.discover(
            timeout=timeout_s, return_adv=True, **backend.scanner_kwargs()
        )
    except BleakBluetoothNotAvailableError as exc:
        raise bluetooth_unavailable(exc, backend) from exc
    except BleakError as exc:
        raise DeviceError(f"Scanning failed ({message_of(exc)}); try again.") from exc
    results = [ScanResult.of(device, advertisement) for device, advertisement in found.values()]
    logger.debug("scan heard %d device(s)", len(results))
    return sorted(results, key=lambda r: (-(r.rssi if r.rssi is not None else -999), r.address))


async def find(
    address: str, backend: BleBackend = OS_BACKEND, *, timeout_s: float | None = None
) -> ScanResult | None:
    """The device at ``address`` as soon as it is heard, or None after ``timeout_s``."""
    from bleak import BleakScanner
    from bleak.exc import BleakBluetoothNotAvailableError, BleakError

    wanted = address.strip().upper()
    limit = backend.find_timeout_s if timeout_s is None else timeout_s
    heard: asyncio.Future[ScanResult] = asyncio.get_running_loop().create_future()

    def on_advertisement(device: BLEDevice, advertisement: AdvertisementData) -> None:
        if device.address.upper() == wanted and not heard.done():
            heard.set_result(ScanResult.of(device, advertisement))

    scanner = BleakScanner(detection_callback=on_advertisement, **backend.scanner_kwargs())
    try:
        async with scanner:
            try:
                async with asyncio.timeout(limit):
                    return await heard
            except TimeoutError:
                return None
    except BleakBluetoothNotAvailableError as exc:
        raise bluetooth_unavailable(exc, backend) from exc
    except BleakError as exc:
        raise DeviceError(f"Scanning for {wanted} failed ({message_of(exc)}); try again.") from exc
