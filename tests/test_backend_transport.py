"""The simulated backend through an HCI transport to an :class:`HciServer` (the server path).

Peripherals live on the server's link in this process; clients reach them as a separate
process would: a bumble host over a unix or TCP socket, given its own virtual controller.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakDeviceNotFoundError
from bumble import gatt
from bumble.device import Device
from bumble.link import LocalLink

from simulators import backend
from simulators.hci_server import HciServer
from simulators.radio import DelayedLink
from simulators.testing import start_peripheral

# Real-time bound for anything a test waits for.
WAIT_S = 2.0
# Real-time bound for a child Python process to import bleak and bumble and connect.
CHILD_START_S = 20.0

SERVICE = "5a1e1000-0000-4000-8000-00000000b0b0"
VALUE = "5a1e1001-0000-4000-8000-00000000b0b0"
P = gatt.Characteristic.Properties


async def start_thing(link: LocalLink, index: int) -> tuple[Device, gatt.Characteristic[bytes]]:
    value = gatt.Characteristic(
        VALUE,
        P.READ | P.WRITE | P.NOTIFY,
        gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE,
        bytes([index]),
    )
    device = await start_peripheral(
        link,
        name=f"Thing {index}",
        address=f"F0:00:00:00:01:0{index}",
        services=[gatt.Service(SERVICE, [value])],
    )
    return device, value


def ended(device: Device) -> asyncio.Event:
    """An event set when the device's current connection ends."""
    event = asyncio.Event()
    (connection,) = device.connections.values()
    connection.once(connection.EVENT_DISCONNECTION, lambda reason: event.set())
    return event


@pytest.fixture
async def link() -> LocalLink:
    return DelayedLink()  # zero latency: a plain LocalLink


@pytest.fixture
async def server(link: LocalLink, tmp_path: Path) -> AsyncIterator[HciServer]:
    hci_server = await HciServer.start(link, f"unix:{tmp_path / 'hci.sock'}")
    yield hci_server
    await backend.reset()
    await hci_server.close()


async def test_end_to_end_over_a_unix_socket(link: LocalLink, server: HciServer) -> None:
    thing, value = await start_thing(link, 1)
    backend.use_transport(server.client_spec)
    device = await BleakScanner.find_device_by_name(
        "Thing 1", timeout=WAIT_S, backend=backend.SimScanner
    )
    assert device is not None
    notified: asyncio.Queue[bytes] = asyncio.Queue()

    def on_value(sender: BleakGATTCharacteristic, data: bytearray) -> None:
        notified.put_nowait(bytes(data))

    async with BleakClient(device, backend=backend.SimClient) as client:
        assert await client.read_gatt_char(VALUE) == b"\x01"
        await client.write_gatt_char(VALUE, b"\x09", response=True)
        assert value.value == b"\x09"
        await client.start_notify(VALUE, on_value)
        await thing.notify_subscribers(value, b"\x0a")
        async with asyncio.timeout(WAIT_S):
            assert await notified.get() == b"\x0a"
    assert len(server.sessions) == 1


async def test_tcp_transport(link: LocalLink) -> None:
    await start_thing(link, 2)
    async with await HciServer.start(link, "tcp-server:127.0.0.1:0") as tcp_server:
        assert tcp_server.client_spec.startswith("tcp-client:127.0.0.1:")
        backend.use_transport(tcp_server.client_spec)
        try:
            async with BleakClient("F0:00:00:00:01:02", backend=backend.SimClient) as client:
                assert await client.read_gatt_char(VALUE) == b"\x02"
        finally:
            await backend.reset()


async def test_three_adapters_at_once(link: LocalLink, server: HciServer) -> None:
    things = [await start_thing(link, i) for i in range(3)]
    adapters = [await backend.SimAdapter.over_transport(server.client_spec) for _ in range(3)]
    assert len(server.sessions) == 3

    async def session(adapter: backend.SimAdapter, index: int) -> bytes:
        address = f"F0:00:00:00:01:0{index}"
        async with BleakClient(address, backend=backend.SimClient, sim_adapter=adapter) as client:
            for step in range(5):
                await client.write_gatt_char(VALUE, bytes([index, step]), response=True)
            return bytes(await client.read_gatt_char(VALUE))

    try:
        results = await asyncio.gather(*(session(a, i) for i, a in enumerate(adapters)))
    finally:
        for adapter in adapters:
            await adapter.close()
    assert results == [bytes([i, 4]) for i in range(3)]
    assert [v.value for _, v in things] == results


async def test_a_connected_device_is_not_found_by_another_adapter(
    link: LocalLink, server: HciServer
) -> None:
    await start_thing(link, 3)
    first = await backend.SimAdapter.over_transport(server.client_spec)
    second = await backend.SimAdapter.over_transport(server.client_spec)
    try:
        async with BleakClient("F0:00:00:00:01:03", backend=backend.SimClient, sim_adapter=first):
            other = BleakClient(
                "F0:00:00:00:01:03", backend=backend.SimClient, sim_adapter=second, timeout=0.2
            )
            with pytest.raises(BleakDeviceNotFoundError):
                await other.connect()
        async with BleakClient("F0:00:00:00:01:03", backend=backend.SimClient, sim_adapter=second):
            pass
    finally:
        await first.close()
        await second.close()


async def test_a_client_closed_mid_connection_frees_the_device(
    link: LocalLink, server: HciServer
) -> None:
    thing, _ = await start_thing(link, 4)
    doomed = await backend.SimAdapter.over_transport(server.client_spec)
    client = BleakClient("F0:00:00:00:01:04", backend=backend.SimClient, sim_adapter=doomed)
    await client.connect()
    link_ended = ended(thing)
    await doomed.close()  # the socket closes; no HCI Disconnect is ever sent
    assert not client.is_connected
    async with asyncio.timeout(WAIT_S):
        await link_ended.wait()
    backend.use_transport(server.client_spec)
    async with BleakClient("F0:00:00:00:01:04", backend=backend.SimClient) as again:
        assert again.is_connected
    assert len(server.sessions) == 1


CHILD = """
import asyncio, sys
from bleak import BleakClient
from simulators import backend

async def main():
    backend.use_transport(sys.argv[1])
    client = BleakClient(sys.argv[2], backend=backend.SimClient)
    await client.connect()
    print("connected", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_killed_client_process_frees_the_device(link: LocalLink, server: HciServer) -> None:
    thing, _ = await start_thing(link, 5)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        server.client_spec,
        "F0:00:00:00:01:05",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(CHILD_START_S):
            assert await child.stdout.readline() == b"connected\n"
        link_ended = ended(thing)
    finally:
        child.kill()
        await child.wait()
    async with asyncio.timeout(WAIT_S):
        await link_ended.wait()
    backend.use_transport(server.client_spec)
    async with BleakClient("F0:00:00:00:01:05", backend=backend.SimClient) as client:
        assert await client.read_gatt_char(VALUE) == b"\x05"


async def test_server_going_away_disconnects_clients(link: LocalLink, server: HciServer) -> None:
    await start_thing(link, 6)
    backend.use_transport(server.client_spec)
    gone = asyncio.Event()
    client = BleakClient("F0:00:00:00:01:06", lambda c: gone.set(), backend=backend.SimClient)
    await client.connect()
    await server.close()
    async with asyncio.timeout(WAIT_S):
        await gone.wait()
    assert not client.is_connected
    with pytest.raises(backend.SimulatorUnreachableError, match="relieve sim serve"):
        await client.connect()


async def test_unreachable_simulator_is_an_actionable_error(tmp_path: Path) -> None:
    backend.use_transport(f"unix:{tmp_path / 'nobody.sock'}")
    try:
        with pytest.raises(backend.SimulatorUnreachableError, match=r"nobody\.sock"):
            await BleakScanner.discover(timeout=0.01, backend=backend.SimScanner)
    finally:
        await backend.reset()


async def test_transport_string_is_checked() -> None:
    with pytest.raises(ValueError, match="transport string"):
        backend.use_transport("relieve.sock")


async def test_serve_forever_serves_until_cancelled(link: LocalLink, tmp_path: Path) -> None:
    await start_thing(link, 7)
    hci_server = await HciServer.start(link, f"unix:{tmp_path / 'forever.sock'}")
    serving = asyncio.ensure_future(hci_server.serve_forever())
    backend.use_transport(hci_server.client_spec)
    try:
        async with BleakClient("F0:00:00:00:01:07", backend=backend.SimClient) as client:
            assert await client.read_gatt_char(VALUE) == b"\x07"
    finally:
        await backend.reset()
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
    assert not (tmp_path / "forever.sock").exists()
