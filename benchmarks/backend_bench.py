"""Benchmark of the simulated bleak backend (simulators.backend).

Measures, through plain bleak calls:

* connect + MTU exchange + service discovery time,
* write-with-response round trip (p50 / p99),
* notification latency (device sends -> client callback; both stamp ``time.monotonic_ns``,
  which is one system-wide clock on Linux, so it also works across processes),

in three set-ups: in-process on a zero-latency link, through a unix socket to a simulator
server in another process, and in-process on a 7.5 ms-per-packet link (the BLE minimum
connection interval). It also times building a fresh in-process link with a few peripherals.

    python benchmarks/backend_bench.py            # a readable table
    python benchmarks/backend_bench.py --json     # one JSON object

Targets (docs/simulation-backend.md): write round trip p50 <= 1 ms in-process, <= 2 ms through
a socket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bumble import gatt
from bumble.device import Connection, Device
from bumble.link import LocalLink

from simulators import backend
from simulators.hci_server import HciServer
from simulators.radio import BLE_MIN_CONNECTION_INTERVAL_S, DelayedLink
from simulators.testing import start_peripheral

ADDRESS = "F0:00:00:00:0B:01"
SERVICE = "5a1eb000-0000-4000-8000-00000000beec"
SINK = "5a1eb001-0000-4000-8000-00000000beec"  # write with response: round trips
ECHO = "5a1eb002-0000-4000-8000-00000000beec"  # any write: the device notifies a timestamp

CONNECTS = 20  # connect + discovery samples per set-up
WRITES = 500  # write round-trip and notification samples per set-up (fast links)
SLOW_LINK_SAMPLES = 30  # write and notification samples on the 7.5 ms link
SLOW_LINK_CONNECTS = 5  # connect samples on the 7.5 ms link (each takes ~0.3 s)
FRESH_LINKS = 10  # fresh links built
PERIPHERALS_PER_LINK = 4
SERVER_START_TIMEOUT_S = 30.0  # real time for the server process to import and listen

TARGETS_MS = {"in_process_write_p50": 1.0, "unix_socket_write_p50": 2.0}

P = gatt.Characteristic.Properties
RW = gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE


async def start_bench_peripheral(link: LocalLink, address: str = ADDRESS) -> Device:
    """A peripheral with a sink, and an echo that notifies the monotonic time it sends at."""
    pending: set[asyncio.Task[None]] = set()
    devices: list[Device] = []

    async def send_stamp() -> None:
        await devices[0].notify_subscribers(echo, struct.pack("<Q", time.monotonic_ns()))

    def on_echo(connection: Connection, value: bytes) -> None:
        del connection, value
        task = asyncio.get_running_loop().create_task(send_stamp())
        pending.add(task)
        task.add_done_callback(pending.discard)

    sink: gatt.Characteristic[bytes] = gatt.Characteristic(SINK, P.READ | P.WRITE, RW, b"")
    echo: gatt.Characteristic[bytes] = gatt.Characteristic(
        ECHO,
        P.WRITE_WITHOUT_RESPONSE | P.NOTIFY,
        RW,
        gatt.CharacteristicValue[bytes](write=on_echo),
    )
    devices.append(
        await start_peripheral(
            link,
            name="Bench",
            address=address,
            services=[gatt.Service(SERVICE, [sink, echo])],
            advertising_interval_ms=20,
        )
    )
    return devices[0]


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered) * 1000, 3),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
        "n": len(ordered),
    }


async def measure(writes: int, notifications: int, connects: int) -> dict[str, Any]:
    """Measure against the device at ADDRESS through the currently selected backend."""
    connect_times: list[float] = []
    for _ in range(connects):
        started = time.perf_counter()
        client = BleakClient(ADDRESS, backend=backend.SimClient)
        await client.connect()
        connect_times.append(time.perf_counter() - started)
        await client.disconnect()

    round_trips: list[float] = []
    latencies: list[float] = []
    async with BleakClient(ADDRESS, backend=backend.SimClient) as client:
        for index in range(writes):
            payload = index.to_bytes(2, "little")
            started = time.perf_counter()
            await client.write_gatt_char(SINK, payload, response=True)
            round_trips.append(time.perf_counter() - started)

        stamps: asyncio.Queue[float] = asyncio.Queue()

        def on_stamp(sender: BleakGATTCharacteristic, data: bytearray) -> None:
            (sent_ns,) = struct.unpack("<Q", data)
            stamps.put_nowait((time.monotonic_ns() - sent_ns) / 1e9)

        await client.start_notify(ECHO, on_stamp)
        for _ in range(notifications):
            await client.write_gatt_char(ECHO, b"\x01", response=False)
            latencies.append(await asyncio.wait_for(stamps.get(), 5.0))
    return {
        "connect_discovery_ms": _ms(connect_times),
        "write_rtt_ms": _ms(round_trips),
        "notification_ms": _ms(latencies),
    }


async def bench_in_process(
    latency_s: float, *, samples: int = WRITES, connects: int = CONNECTS
) -> dict[str, Any]:
    link = DelayedLink(latency_s)
    await start_bench_peripheral(link)
    backend.use_link(link)
    try:
        return await measure(writes=samples, notifications=samples, connects=connects)
    finally:
        await backend.reset()


async def bench_unix_socket() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="relieve-bench-") as directory:
        socket_path = Path(directory) / "hci.sock"
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            str(socket_path),
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.PIPE,
        )
        try:
            ready = b""
            if server.stdout is not None:
                ready = await asyncio.wait_for(server.stdout.readline(), SERVER_START_TIMEOUT_S)
            if not ready.startswith(b"ready"):
                raise RuntimeError("the benchmark's simulator server did not start")
            backend.use_transport(f"unix:{socket_path}")
            try:
                return await measure(WRITES, WRITES, CONNECTS)
            finally:
                await backend.reset()
        finally:
            server.kill()
            await server.wait()


async def bench_fresh_links() -> dict[str, Any]:
    times: list[float] = []
    for _ in range(FRESH_LINKS):
        started = time.perf_counter()
        link = DelayedLink()
        for index in range(PERIPHERALS_PER_LINK):
            await start_bench_peripheral(link, f"F0:00:00:00:0C:{index:02X}")
        adapter = await backend.SimAdapter.on_link(link)
        times.append(time.perf_counter() - started)
        await adapter.close()
    return {"peripherals": PERIPHERALS_PER_LINK, "build_ms": _ms(times)}


async def serve(socket_path: str) -> None:
    """The server side of the unix-socket benchmark: a bench peripheral behind an HciServer."""
    link = DelayedLink()
    await start_bench_peripheral(link)
    async with await HciServer.start(link, f"unix:{socket_path}"):
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def run_all() -> dict[str, Any]:
    results: dict[str, Any] = {
        "in_process": await bench_in_process(0.0, samples=WRITES),
        "unix_socket": await bench_unix_socket(),
        "in_process_7_5ms_link": await bench_in_process(
            BLE_MIN_CONNECTION_INTERVAL_S, samples=SLOW_LINK_SAMPLES, connects=SLOW_LINK_CONNECTS
        ),
        "fresh_in_process_link": await bench_fresh_links(),
    }
    measured = {
        "in_process_write_p50": results["in_process"]["write_rtt_ms"]["p50"],
        "unix_socket_write_p50": results["unix_socket"]["write_rtt_ms"]["p50"],
    }
    results["targets_ms"] = TARGETS_MS
    results["meets_targets"] = all(measured[k] <= limit for k, limit in TARGETS_MS.items())
    return results


def _table(results: dict[str, Any]) -> str:
    rows = [
        f"{'set-up':<24}{'connect+disc p50':>18}{'write p50':>11}{'write p99':>11}"
        f"{'notify p50':>12}{'notify p99':>12}"
    ]
    for name in ("in_process", "unix_socket", "in_process_7_5ms_link"):
        r = results[name]
        rows.append(
            f"{name:<24}{r['connect_discovery_ms']['p50']:>15.2f} ms"
            f"{r['write_rtt_ms']['p50']:>8.3f} ms{r['write_rtt_ms']['p99']:>8.3f} ms"
            f"{r['notification_ms']['p50']:>9.3f} ms{r['notification_ms']['p99']:>9.3f} ms"
        )
    fresh = results["fresh_in_process_link"]
    rows.append(
        f"fresh link with {fresh['peripherals']} peripherals + adapter: "
        f"p50 {fresh['build_ms']['p50']:.1f} ms, max {fresh['build_ms']['max']:.1f} ms"
    )
    rows.append(
        f"targets: in-process write p50 <= {TARGETS_MS['in_process_write_p50']} ms, "
        f"socket write p50 <= {TARGETS_MS['unix_socket_write_p50']} ms -> "
        f"{'met' if results['meets_targets'] else 'NOT met'}"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--serve", metavar="SOCKET", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    results = asyncio.run(run_all())
    sys.stdout.write((json.dumps(results, indent=2) if args.json else _table(results)) + "\n")
    return 0 if results["meets_targets"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
