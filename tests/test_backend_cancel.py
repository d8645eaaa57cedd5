"""A cancelled GATT operation of the simulated bleak backend leaves the ATT bearer in order.

ATT allows one outstanding request per connection and a response names no request. Like BlueZ,
the backend raises the cancellation to the caller at once but lets its request, sent or waiting
in line, complete unseen; the next request goes out only after the response to the one before.
So every later operation gets its own answer, and nothing is logged. The peripheral here
answers only when the test opens its ``gate``, and answers every request it receives, even one
sent while another is outstanding (as a stack breaking ATT's rule would be answered), so a
backend that breaks the rule shows it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError
from bumble import att, gatt
from bumble.device import Connection
from bumble.link import LocalLink

from simulators import backend
from simulators.testing import start_peripheral

# Real-time bound for anything a test waits for.
WAIT_S = 1.0

# Real-time limit given to the operation a test times out with ``asyncio.wait_for``.
SHORT_TIMEOUT_S = 0.02

ADDRESS = "F0:00:00:00:00:0C"
NAME = "Gated Pad"
SERVICE = "5a1e0000-0000-4000-8000-00000000c0c0"
GATED = "5a1e0001-0000-4000-8000-00000000c0c0"
PROMPT = "5a1e0002-0000-4000-8000-00000000c0c0"
LEASE_REFUSED = 0x82  # what the gated characteristic answers to a write of REFUSED_VALUE
REFUSED_VALUE = b"\xff"

P = gatt.Characteristic.Properties


@dataclass
class GatedPad:
    """A peripheral whose GATED characteristic answers once ``gate`` is open."""

    gate: asyncio.Event
    arrived: asyncio.Event  # set when a request for GATED arrives
    log: list[str] = field(default_factory=list)  # what the server did, in order
    reads: int = 0

    def __post_init__(self) -> None:
        self.arrived.clear()

    async def read(self, connection: Connection) -> bytes:
        del connection
        self.reads += 1
        value = f"read {self.reads}".encode()
        self.log.append(f"request: {value.decode()}")
        self.arrived.set()
        await self.gate.wait()
        self.log.append(f"answer: {value.decode()}")
        return value

    async def write(self, connection: Connection, value: bytes) -> None:
        del connection
        self.log.append(f"request: write {value.hex()}")
        self.arrived.set()
        await self.gate.wait()
        self.log.append(f"answer: write {value.hex()}")
        if value == REFUSED_VALUE:
            raise att.ATT_Error(LEASE_REFUSED)


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Everything the event loop reports to its exception handler during the test."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)


@pytest.fixture
async def pad() -> AsyncIterator[GatedPad]:
    link = LocalLink()  # type: ignore[no-untyped-call]  # bumble's own, as third parties use
    backend.use_link(link)
    pad = GatedPad(asyncio.Event(), asyncio.Event())
    rw = gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE
    gated: gatt.Characteristic[bytes] = gatt.Characteristic(
        GATED, P.READ | P.WRITE, rw, gatt.CharacteristicValue(pad.read, pad.write)
    )
    prompt = gatt.Characteristic(PROMPT, P.READ, gatt.Characteristic.READABLE, b"prompt")
    await start_peripheral(
        link, name=NAME, address=ADDRESS, services=[gatt.Service(SERVICE, [gated, prompt])]
    )
    yield pad
    await backend.reset()


@pytest.fixture
async def client(pad: GatedPad) -> AsyncIterator[BleakClient]:
    del pad
    async with BleakClient(ADDRESS, backend=backend.SimClient, timeout=5) as connected:
        yield connected


async def _cancel_in_flight(pad: GatedPad, operation: asyncio.Task[Any]) -> None:
    """Cancel ``operation`` once its request is at the peripheral; check the cancel is prompt."""
    async with asyncio.timeout(WAIT_S):
        await pad.arrived.wait()
    pad.arrived.clear()
    operation.cancel()
    with pytest.raises(asyncio.CancelledError):
        await operation  # at once: the peripheral has not answered yet
    assert not pad.gate.is_set()


def _assert_nothing_logged(
    loop_errors: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    gc.collect()  # a task whose exception nobody retrieved reports it when collected
    assert loop_errors == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_write_after_a_cancelled_write_gets_its_own_answer(
    client: BleakClient,
    pad: GatedPad,
    loop_errors: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    renewal = asyncio.ensure_future(client.write_gatt_char(GATED, REFUSED_VALUE, response=True))
    await _cancel_in_flight(pad, renewal)
    stop = asyncio.ensure_future(client.write_gatt_char(GATED, b"\x00", response=True))
    await asyncio.sleep(0.01)  # time for a backend that does not wait to send it early
    pad.gate.set()
    async with asyncio.timeout(WAIT_S):
        await stop  # succeeds: the refusal answered the cancelled renewal, not this
    assert pad.log == [
        "request: write ff",
        "answer: write ff",
        "request: write 00",
        "answer: write 00",
    ]
    _assert_nothing_logged(loop_errors, caplog)


async def test_read_after_a_timed_out_read_gets_its_own_value(
    client: BleakClient,
    pad: GatedPad,
    loop_errors: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.read_gatt_char(GATED), SHORT_TIMEOUT_S)
    second = asyncio.ensure_future(client.read_gatt_char(GATED))
    await asyncio.sleep(0.01)
    pad.gate.set()
    async with asyncio.timeout(WAIT_S):
        assert await second == bytearray(b"read 2")
        assert await client.read_gatt_char(PROMPT) == bytearray(b"prompt")
    _assert_nothing_logged(loop_errors, caplog)


async def test_error_after_a_cancelled_write_is_its_own(
    client: BleakClient,
    pad: GatedPad,
    loop_errors: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = asyncio.ensure_future(client.write_gatt_char(GATED, b"\x01", response=True))
    await _cancel_in_flight(pad, first)
    refused = asyncio.ensure_future(client.write_gatt_char(GATED, REFUSED_VALUE, response=True))
    await asyncio.sleep(0.01)
    pad.gate.set()
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(BleakGATTProtocolError) as caught:
            await refused
        assert caught.value.code == LEASE_REFUSED
        assert await client.read_gatt_char(PROMPT) == bytearray(b"prompt")
    _assert_nothing_logged(loop_errors, caplog)


async def test_a_cancelled_request_waiting_in_line_keeps_its_place(
    client: BleakClient,
    pad: GatedPad,
    loop_errors: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = asyncio.ensure_future(client.write_gatt_char(GATED, b"\x01", response=True))
    async with asyncio.timeout(WAIT_S):
        await pad.arrived.wait()
    queued = asyncio.ensure_future(client.write_gatt_char(GATED, REFUSED_VALUE, response=True))
    await asyncio.sleep(0.01)  # it waits in line behind the first
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    last = asyncio.ensure_future(client.read_gatt_char(GATED))
    await asyncio.sleep(0.01)
    pad.gate.set()
    async with asyncio.timeout(WAIT_S):
        await first
        assert await last == bytearray(b"read 1")
    # As with BlueZ, the cancelled write was still sent, in its turn.
    assert pad.log == [
        "request: write 01",
        "answer: write 01",
        "request: write ff",
        "answer: write ff",
        "request: read 1",
        "answer: read 1",
    ]
    _assert_nothing_logged(loop_errors, caplog)


async def test_link_loss_under_a_cancelled_request_is_quiet(
    pad: GatedPad, loop_errors: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    gone = asyncio.Event()
    client = BleakClient(
        ADDRESS, backend=backend.SimClient, timeout=5, disconnected_callback=lambda _: gone.set()
    )
    await client.connect()
    renewal = asyncio.ensure_future(client.write_gatt_char(GATED, REFUSED_VALUE, response=True))
    await _cancel_in_flight(pad, renewal)
    await client.disconnect()
    async with asyncio.timeout(WAIT_S):
        await gone.wait()
    assert not client.is_connected
    await asyncio.sleep(0.01)  # let the abandoned request end with the link
    _assert_nothing_logged(loop_errors, caplog)
