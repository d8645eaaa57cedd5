"""Which bleak backend the drivers talk through: the OS Bluetooth stack, or a simulated radio.

A :class:`BleBackend` is a small value handed to discovery and to every device object. With
both backend classes ``None`` bleak picks the operating system's stack (BlueZ, CoreBluetooth,
WinRT); the simulation seam (:mod:`controller.session.simulation`) hands out one whose classes
are the simulated client and scanner, so the driver code is the same plain bleak either way.

This module imports nothing from bleak at run time, so the controller can hold a backend
without loading bleak (docs/architecture.md: heavy imports stay lazy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drivers.core.base import DeviceError

if TYPE_CHECKING:
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.scanner import BaseBleakScanner

__all__ = [
    "DEFAULT_FIND_TIMEOUT_S",
    "OS_BACKEND",
    "BleBackend",
    "bluetooth_unavailable",
    "message_of",
]

# How long (real seconds) to scan for a device addressed by its address before saying it is
# not there. Real adapters may need several advertising intervals of a sleepy device; connect
# time-outs under 10 s are too short on real hardware.
DEFAULT_FIND_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BleBackend:
    """The bleak client and scanner backend classes to use (None: the OS default)."""

    client: type[BaseBleakClient] | None = None
    scanner: type[BaseBleakScanner] | None = None
    name: str = "os"
    find_timeout_s: float = DEFAULT_FIND_TIMEOUT_S

    @property
    def simulated(self) -> bool:
        """True when this backend reaches a simulated radio rather than the OS stack."""
        return self.client is not None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``BleakClient`` (``backend=`` only when not the default)."""
        return {} if self.client is None else {"backend": self.client}

    def scanner_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``BleakScanner`` (``backend=`` only when not the default)."""
        return {} if self.scanner is None else {"backend": self.scanner}


OS_BACKEND = BleBackend()
"""The operating system's Bluetooth stack."""


def message_of(exc: BaseException) -> str:
    """An exception's message without the tuple bleak makes of several arguments."""
    first = exc.args[0] if exc.args else None
    text = first if isinstance(first, str) else str(exc)
    return text.rstrip(".") or type(exc).__name__


def bluetooth_unavailable(exc: BaseException, backend: BleBackend = OS_BACKEND) -> DeviceError:
    """The error for a machine whose Bluetooth (or simulated radio) cannot be used."""
    detail = message_of(exc)
    if backend.simulated:
        return DeviceError(f"The simulated radio is not available: {detail}.")
    return DeviceError(
        f"Bluetooth is not available ({detail}); switch the adapter on, "
        "or try the simulated devices with --simulate."
    )
