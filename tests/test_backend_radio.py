"""The virtual radio under the backend: delayed link, controller fixes, advertising parsing."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator

import pytest
from bleak import BleakClient, BleakScanner
from bumble import core, gatt, hci
from bumble.device import Connection, Device
from bumble.snoop import Snooper

from simulators import backend
from simulators.radio import DelayedLink, detach_controller
from simulators.testing import parse_advertising_data, start_peripheral

WAIT_S = 1.0
LATENCY_S = 0.005
ADDRESS = "F0:00:00:00:02:01"
SERVICE = "5a1e2000-0000-4000-8000-00000000c0c0"
SINK = "5a1e2001-0000-4000-8000-00000000c0c0"
P = gatt.Characteristic.Properties


async def start_sink(
    link: DelayedLink, received: list[bytes], *, fast_path: bool = False
) -> Device:
    def record(connection: Connection, value: bytes) -> None:
        del connection
        received.append(value)

    sink: gatt.Characteristic[bytes] = gatt.Characteristic(
        SINK,
        P.READ | P.WRITE | P.WRITE_WITHOUT_RESPONSE,
        gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE,
        gatt.CharacteristicValue[bytes](read=lambda connection: b"ok", write=record),
    )
    return await start_peripheral(
        link,
        name="Sink",
        address=ADDRESS,
        services=[gatt.Service(SERVICE, [sink])],
        advertising_interval_ms=20,
        fast_path=fast_path,
    )


class HciCounter(Snooper):
    """Counts the HCI packets a host exchanges with its controller, by H4 packet type."""

    ACL = hci.HCI_ACL_DATA_PACKET

    def __init__(self) -> None:
        self.types: collections.Counter[int] = collections.Counter()

    def snoop(self, hci_packet: bytes, direction: Snooper.Direction) -> None:
        del direction
        self.types[hci_packet[0]] += 1


def ended(device: Device) -> asyncio.Event:
    """An event set when the device's current connection ends."""
    event = asyncio.Event()
    (connection,) = device.connections.values()
    connection.once(connection.EVENT_DISCONNECTION, lambda reason: event.set())
    return event


@pytest.fixture
async def reset_backend() -> AsyncIterator[None]:
    yield
    await backend.reset()


@pytest.mark.parametrize("fast_path", [False, True], ids=["hci-acl", "fast-path"])
@pytest.mark.usefixtures("reset_backend")
async def test_delayed_link_delays_every_packet_and_keeps_order(fast_path: bool) -> None:
    link = DelayedLink(LATENCY_S)
    received: list[bytes] = []
    sink = await start_sink(link, received, fast_path=fast_path)
    backend.use_link(link)
    async with BleakClient(ADDRESS, backend=backend.SimClient) as client:
        link_ended = ended(sink)
        started = time.perf_counter()
        await client.write_gatt_char(SINK, b"\x00", response=True)
        round_trip = time.perf_counter() - started
        for value in range(1, 20):
            await client.write_gatt_char(SINK, bytes([value]), response=False)
        assert await client.read_gatt_char(SINK) == b"ok"
    async with asyncio.timeout(WAIT_S):
        await link_ended.wait()  # the sink hears of it one link latency later
    assert 2 * LATENCY_S <= round_trip < 0.5  # the request and the response are both delayed
    assert received == [bytes([value]) for value in range(20)]


@pytest.mark.parametrize("fast_path", [False, True], ids=["hci-acl", "fast-path"])
@pytest.mark.usefixtures("reset_backend")
async def test_the_fast_path_carries_the_same_gatt_traffic_without_hci_acl_packets(
    fast_path: bool,
) -> None:
    link = DelayedLink()
    received: list[bytes] = []
    sink = await start_sink(link, received, fast_path=fast_path)
    counter = HciCounter()
    sink.host.snooper = counter
    backend.use_link(link)  # the backend's own adapter is always a SimHost
    async with BleakClient(ADDRESS, backend=backend.SimClient) as client:
        for value in range(10):
            await client.write_gatt_char(SINK, bytes([value]), response=value % 2 == 0)
        assert await client.read_gatt_char(SINK) == b"ok"
    assert received == [bytes([value]) for value in range(10)]
    assert counter.types[hci.HCI_EVENT_PACKET] > 0  # connecting and disconnecting: HCI
    if fast_path:
        assert counter.types[HciCounter.ACL] == 0
    else:  # a stock bumble peripheral: every ATT PDU is an ACL packet, both ways
        requests = 5 + 1  # the writes with response and the read, each answered
        commands = 5  # the writes without response
        assert counter.types[HciCounter.ACL] >= 2 * requests + commands


@pytest.mark.usefixtures("reset_backend")
async def test_the_fast_path_drops_frames_for_a_link_that_has_ended() -> None:
    link = DelayedLink()
    received: list[bytes] = []
    sink = await start_sink(link, received, fast_path=True)
    backend.use_link(link)
    gone = asyncio.Event()
    async with BleakClient(
        ADDRESS, backend=backend.SimClient, disconnected_callback=lambda _: gone.set()
    ) as client:
        await client.write_gatt_char(SINK, b"\x01", response=True)
        controller = next(c for c in link.controllers if c.random_address == sink.random_address)
        # The peripheral vanishes; the client has not heard yet and sends on.
        detach_controller(controller, notify_host=True)
        await client.write_gatt_char(SINK, b"\x02", response=False)
        async with asyncio.timeout(WAIT_S):
            await gone.wait()
    assert received == [b"\x01"]


def test_delayed_link_refuses_negative_latency() -> None:
    with pytest.raises(ValueError, match="latency"):
        DelayedLink(-0.001)


@pytest.mark.usefixtures("reset_backend")
async def test_connection_cancel_leaves_the_controller_usable() -> None:
    link = DelayedLink()
    await start_sink(link, [])
    adapter = await backend.SimAdapter.on_link(link)
    try:
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await adapter.connect(hci.Address("F0:00:00:00:02:99"), within_s=0.05)
        assert time.perf_counter() - started < WAIT_S
        # A stock bumble controller would still hold the cancelled connection and refuse this.
        connection = await adapter.connect(hci.Address(ADDRESS), within_s=WAIT_S)
        assert connection.peer_address == hci.Address(ADDRESS)
    finally:
        await adapter.close()


@pytest.mark.usefixtures("reset_backend")
async def test_hci_reset_ends_the_links_of_a_restarting_host() -> None:
    link = DelayedLink()
    await start_sink(link, [])
    adapter = await backend.SimAdapter.on_link(link)
    try:
        connection = await adapter.connect(hci.Address(ADDRESS), within_s=WAIT_S)
        peripheral = next(c for c in link.controllers if c is not adapter.device.host.controller)
        assert peripheral.le_connections
        ended = asyncio.Event()
        connection.once(connection.EVENT_DISCONNECTION, lambda reason: ended.set())
        await adapter.device.power_on()  # starts with HCI Reset, as a restarted host does
        assert not peripheral.le_connections
    finally:
        await adapter.close()
    assert ended.is_set()


def test_advertising_data_parsing() -> None:
    raw = bytes(
        core.AdvertisingData(
            [
                (core.AdvertisingData.SHORTENED_LOCAL_NAME, b"Pa"),
                (core.AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, b"\x0f\x18"),
                (
                    core.AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
                    b"\x78\x56\x34\x12",
                ),
                (core.AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, b"\x0f\x18"),
                (core.AdvertisingData.TX_POWER_LEVEL, b"\xf6"),
                (core.AdvertisingData.MANUFACTURER_SPECIFIC_DATA, b"\x4c\x00\x01"),
                (core.AdvertisingData.MANUFACTURER_SPECIFIC_DATA, b"\x4c\x00\x02"),
            ]
        )
    )
    parsed = parse_advertising_data(raw + b"\x05\x09")  # a truncated structure at the end
    assert parsed.local_name == "Pa"
    assert parsed.service_uuids == [
        "0000180f-0000-1000-8000-00805f9b34fb",
        "12345678-0000-1000-8000-00805f9b34fb",
    ]
    assert parsed.tx_power == -10
    assert parsed.manufacturer_data == {0x004C: b"\x02"}
    complete = parse_advertising_data(raw + bytes([5, 0x09]) + b"Pads")
    assert complete.local_name == "Pads"


@pytest.mark.usefixtures("reset_backend")
async def test_cancelled_connection_attempt_leaves_nothing_behind() -> None:
    link = DelayedLink()
    adapter = await backend.SimAdapter.on_link(link)
    try:
        attempt = asyncio.ensure_future(adapter.connect(hci.Address(ADDRESS), within_s=5.0))
        await asyncio.sleep(0.02)  # the controller now waits for ADDRESS to advertise
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
        await start_sink(link, [])  # ADDRESS appears: nothing may connect to it by itself
        await asyncio.sleep(0.05)  # more than two of its advertising intervals
        assert not adapter.device.connections
        connection = await adapter.connect(hci.Address(ADDRESS), within_s=WAIT_S)
        assert connection.peer_address == hci.Address(ADDRESS)
    finally:
        await adapter.close()


@pytest.mark.usefixtures("reset_backend")
async def test_connect_cancelled_during_discovery_disconnects_quietly() -> None:
    link = DelayedLink(LATENCY_S)  # discovery takes many round trips of 2 x 5 ms
    sink = await start_sink(link, [])
    backend.use_link(link)
    adapter = await backend.default_adapter()
    linked = asyncio.Event()
    sink.once(sink.EVENT_CONNECTION, lambda connection: linked.set())
    calls: list[BleakClient] = []
    client = BleakClient(ADDRESS, calls.append, backend=backend.SimClient)
    connecting = asyncio.ensure_future(client.connect())
    async with asyncio.timeout(WAIT_S):
        await linked.wait()  # both ends have the link; discovery has just begun
    link_ended = ended(sink)
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    assert not client.is_connected
    assert not adapter.device.connections
    assert calls == []  # a connection that never completed is not reported as disconnected
    async with asyncio.timeout(WAIT_S):
        await link_ended.wait()


def test_the_default_adapter_belongs_to_one_event_loop() -> None:
    link = DelayedLink()
    backend.use_link(link)
    try:
        first = asyncio.run(backend.default_adapter())
        second = asyncio.run(backend.default_adapter())  # a new loop, as in the next test
        assert second is not first
        assert not first.is_open
        assert len(link.controllers) == 1  # the first one left the air
    finally:
        asyncio.run(backend.reset())
    assert not link.controllers


@pytest.mark.usefixtures("reset_backend")
async def test_connect_by_address_while_scanning_does_not_wait_for_the_next_advert() -> None:
    link = DelayedLink()
    await start_peripheral(link, name="Slow", address=ADDRESS, advertising_interval_ms=2000)
    backend.use_link(link)
    async with BleakScanner(backend=backend.SimScanner):
        await asyncio.sleep(0.01)  # the scan heard the device's first advertisement already
        started = time.perf_counter()
        async with BleakClient(ADDRESS, backend=backend.SimClient) as client:
            assert client.is_connected
        assert time.perf_counter() - started < WAIT_S  # not up to one 2 s advertising interval
