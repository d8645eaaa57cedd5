"""One BLE link to one device: finding it, connecting, and GATT I/O with our own errors.

:class:`Connection` is the plumbing every device class shares. It

* finds the device by address when no ``BLEDevice`` was handed in (a short scan),
* connects through ``bleak_retry_connector.establish_connection`` with the chosen backend
  (a new ``BleakClient`` for every connection, never reused),
* serialises GATT operations with one lock, gives each a real-time time-out and retries a
  command that is not acknowledged (:data:`COMMAND_RETRIES`, S4 in docs/safety.md),
* turns bleak's exceptions into :mod:`drivers.core.base` errors with a sentence that says what to
  do (ATT error codes named by the protocol's ``describe`` function),
* tells its owner when the link drops without being asked to (``on_lost``).

BLE time-outs here are real time, never the therapy clock (docs/architecture.md). Every GATT
write is logged at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from bleak import BleakClient, BleakScanner
from bleak.exc import (
    PROTOCOL_ERROR_CODES,
    BleakBluetoothNotAvailableError,
    BleakCharacteristicNotFoundError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
)
from bleak_retry_connector import BleakNotFoundError, establish_connection

from drivers.core.backend import OS_BACKEND, BleBackend, bluetooth_unavailable, message_of
from drivers.core.base import (
    DeviceError,
    DeviceNotFoundError,
    DeviceRefusedError,
    DeviceTimeoutError,
    NotConnectedError,
)

if TYPE_CHECKING:
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice

__all__ = [
    "COMMAND_RETRIES",
    "COMMAND_TIMEOUT_S",
    "CONNECT_ATTEMPTS",
    "AttDescriber",
    "Connection",
    "describe_standard_att_error",
]

logger = logging.getLogger(__name__)

# Real seconds one GATT command (write with response, read) may take to be acknowledged.
# A connection interval is 7.5 ms-4 s; 5 s covers a slow interval plus a retransmission.
COMMAND_TIMEOUT_S = 5.0
# A command not acknowledged is sent again this many times before DeviceTimeoutError
# (S4 in docs/safety.md: "command not acknowledged after 2 retries").
COMMAND_RETRIES = 2
# Real seconds between a failed attempt and its retry: lets a link that hiccupped recover.
RETRY_PAUSE_S = 0.05
# Connection attempts bleak_retry_connector makes before giving up.
CONNECT_ATTEMPTS = 3

AttDescriber = Callable[[int], str]
"""Turns an ATT error code into a short phrase ("a value is outside what the device supports")."""

_T = TypeVar("_T")


def describe_standard_att_error(code: int) -> str:
    """A phrase for a standard ATT error code (Core Spec Vol 3 Part F 3.4.1.1)."""
    name = PROTOCOL_ERROR_CODES.get(code)
    if name is None:
        return f"the device answered with ATT error 0x{code:02X}"
    return f"the device answered with ATT error 0x{code:02X} ({name})"


class Connection:
    """The link to one device, and every GATT operation on it."""

    def __init__(
        self,
        address: str,
        *,
        name: str | None = None,
        backend: BleBackend = OS_BACKEND,
        ble_device: BLEDevice | None = None,
        describe_att_error: AttDescriber = describe_standard_att_error,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.address = address.upper()
        self.name = name or self.address
        self.backend = backend
        self.command_timeout_s = command_timeout_s
        self.on_lost = on_lost
        self._ble_device = ble_device
        self._describe = describe_att_error
        self._client: BleakClient | None = None
        self._op_lock = asyncio.Lock()

    @property
    def label(self) -> str:
        """How messages name the device: ``relieve Heat Pad (C0:DE:00:00:00:02)``."""
        return self.address if self.name == self.address else f"{self.name} ({self.address})"

    @property
    def connected(self) -> bool:
        """True while the link is up."""
        return self._client is not None and self._client.is_connected

    # --- connecting ---------------------------------------------------------------------------

    def forget_device(self) -> None:
        """Find the device by scanning again on the next :meth:`open` (after a link loss)."""
        self._ble_device = None

    async def _resolve(self) -> BLEDevice:
        if self._ble_device is not None:
            return self._ble_device
        logger.debug("looking for %s (up to %.1f s)", self.address, self.backend.find_timeout_s)
        try:
            device = await BleakScanner.find_device_by_address(
                self.address, timeout=self.backend.find_timeout_s, **self.backend.scanner_kwargs()
            )
        except BleakBluetoothNotAvailableError as exc:
            raise bluetooth_unavailable(exc, self.backend) from exc
        except BleakError as exc:
            raise DeviceError(
                f"Scanning for {self.label} failed ({message_of(exc)}); try again.",
                address=self.address,
            ) from exc
        if device is None:
            raise DeviceNotFoundError(
                f"Nothing answers at {self.label}: the device is off, out of range, or connected "
                "to another phone or computer; switch it on, bring it closer, and try again.",
                address=self.address,
            )
        self._ble_device = device
        if device.name and self.name == self.address:
            self.name = device.name
        return device

    async def open(self) -> None:
        """Find the device if needed and connect (retrying); raises DeviceNotFoundError."""
        if self.connected:
            return
        device = await self._resolve()
        try:
            client = await establish_connection(
                BleakClient,
                device,
                self.name,
                disconnected_callback=self._on_disconnected,
                max_attempts=CONNECT_ATTEMPTS,
                **self.backend.client_kwargs(),
            )
        except BleakBluetoothNotAvailableError as exc:
            raise bluetooth_unavailable(exc, self.backend) from exc
        except (BleakNotFoundError, BleakDeviceNotFoundError) as exc:
            self.forget_device()
            raise DeviceNotFoundError(
                f"{self.label} could not be reached; switch it on, bring it closer, and try again.",
                address=self.address,
            ) from exc
        except (BleakError, TimeoutError, EOFError, OSError) as exc:
            self.forget_device()
            raise DeviceNotFoundError(
                f"Connecting to {self.label} failed ({message_of(exc)}); make sure no "
                "other app holds the device, then try again.",
                address=self.address,
            ) from exc
        self._client = client
        if not client.is_connected:  # the link dropped before we held the client
            self._client = None
            raise NotConnectedError(
                f"{self.label} dropped the link while connecting; try again.",
                address=self.address,
            )
        logger.info("connected to %s", self.label)

    async def close(self) -> None:
        """Disconnect on purpose (``on_lost`` is not called)."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.disconnect()
        except BleakError as exc:
            logger.debug("disconnect from %s did not complete: %r", self.label, exc)
        logger.info("disconnected from %s", self.label)

    def _on_disconnected(self, client: BleakClient) -> None:
        if client is not self._client:
            return  # an old client, or our own close()
        self._client = None
        logger.warning("%s dropped the link", self.label)
        if self.on_lost is not None:
            self.on_lost()

    # --- GATT -----------------------------------------------------------------------------

    def _require(self) -> BleakClient:
        client = self._client
        if client is None or not client.is_connected:
            raise NotConnectedError(
                f"{self.label} is not connected; connect to it first.", address=self.address
            )
        return client

    def characteristic(self, uuid: str) -> BleakGATTCharacteristic | None:
        """The characteristic ``uuid`` of the connected device, or None when it has none."""
        return self._require().services.get_characteristic(uuid)

    def has(self, uuid: str) -> bool:
        """Whether the connected device has characteristic ``uuid``."""
        return self.characteristic(uuid) is not None

    def can_notify(self, uuid: str) -> bool:
        """Whether characteristic ``uuid`` notifies or indicates."""
        char = self.characteristic(uuid)
        return char is not None and bool({"notify", "indicate"} & set(char.properties))

    async def write(
        self,
        uuid: str,
        data: bytes,
        *,
        what: str,
        response: bool = True,
        withdrawn: Callable[[], bool] | None = None,
    ) -> None:
        """Write ``data`` to ``uuid``; retried when not acknowledged, refusals raised.

        ``withdrawn`` is asked before every attempt; when it says True the write is abandoned
        with ``CancelledError`` (its owner stopped it; the cancellation may have been lost below).
        """

        async def attempt(client: BleakClient) -> None:
            logger.debug("GATT write %s %s <- %s (%s)", self.address, uuid, data.hex(" "), what)
            await client.write_gatt_char(uuid, data, response=response)

        await self._command(what, attempt, withdrawn=withdrawn)

    async def read(self, uuid: str, *, what: str) -> bytes:
        """Read characteristic ``uuid``."""

        async def attempt(client: BleakClient) -> bytes:
            value = bytes(await client.read_gatt_char(uuid))
            logger.debug("GATT read %s %s -> %s (%s)", self.address, uuid, value.hex(" "), what)
            return value

        return await self._command(what, attempt)

    async def subscribe(self, uuid: str, callback: Callable[[bytes], None]) -> None:
        """Call ``callback`` with every notification or indication of ``uuid``."""

        def on_value(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            try:
                callback(bytes(data))
            except Exception:  # a bad frame must not break bleak's dispatch
                logger.exception("handling a notification of %s from %s failed", uuid, self.label)

        async def attempt(client: BleakClient) -> None:
            await client.start_notify(uuid, on_value)

        await self._command(f"subscription to {uuid}", attempt)

    async def _command(
        self,
        what: str,
        attempt: Callable[[BleakClient], Awaitable[_T]],
        *,
        withdrawn: Callable[[], bool] | None = None,
    ) -> _T:
        async with self._op_lock:
            tries = 1 + COMMAND_RETRIES
            for number in range(1, tries + 1):
                if withdrawn is not None and withdrawn():
                    logger.debug("%s: %s withdrawn before attempt %d", self.label, what, number)
                    raise asyncio.CancelledError(f"the {what} was withdrawn")
                client = self._require()
                try:
                    async with asyncio.timeout(self.command_timeout_s):
                        return await attempt(client)
                except BleakGATTProtocolError as exc:
                    code = int(exc.code)
                    raise DeviceRefusedError(
                        f"{self.label} refused the {what}: {self._describe(code)}.",
                        address=self.address,
                        att_error=code,
                    ) from exc
                except BleakCharacteristicNotFoundError as exc:
                    raise DeviceError(
                        f"{self.label} has no characteristic for the {what}; it does not speak "
                        "this protocol: check the device type (--driver).",
                        address=self.address,
                    ) from exc
                except (TimeoutError, BleakError, EOFError, OSError) as exc:
                    if not self.connected:
                        raise NotConnectedError(
                            f"The link to {self.label} dropped during the {what}; wait until it is "
                            "connected again (it reconnects by itself), then retry.",
                            address=self.address,
                        ) from exc
                    logger.warning(
                        "%s: %s not acknowledged (attempt %d of %d): %r",
                        self.label,
                        what,
                        number,
                        tries,
                        exc,
                    )
                if number < tries:
                    await asyncio.sleep(RETRY_PAUSE_S)
            raise DeviceTimeoutError(
                f"{self.label} did not acknowledge the {what} after {COMMAND_RETRIES} retries; "
                "it may be out of range or hung: switch it off at the device.",
                address=self.address,
            )
