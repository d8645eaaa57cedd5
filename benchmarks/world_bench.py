"""Benchmark of the simulated world and the simulator server (``relieve sim serve``).

Measures, on real time (MonotonicClock, as the server runs):

* importing the world and the HCI server (bumble's import dominates; once per process),
* building a fresh in-process world of every simulated device and starting it (every device
  powered, advertising, its firmware task running), and stopping it,
* starting an in-process simulator server (that world behind a unix socket) and closing it,
* a client's first connection through that server: open an adapter over the socket, connect
  to the contrast pad (MTU exchange, service discovery) and read its model number.

    python benchmarks/world_bench.py            # a readable table
    python benchmarks/world_bench.py --json     # one JSON object

Target (issue 3): a fresh world of all devices built and started in <= 50 ms p50, bumble's
import excluded.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORLDS = 30  # fresh worlds built, started and stopped
SERVERS = 10  # in-process servers started and closed
FIRST_CONNECTS = 10  # first connections through a server (one server, fresh adapters)

TARGETS_MS = {"world_build_start_p50": 50.0}


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered) * 1000, 3),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
        "n": len(ordered),
    }


def time_imports() -> float:
    """Seconds to import the world and the HCI server (bumble with them), first time."""
    started = time.perf_counter()
    importlib.import_module("simulators.world")
    importlib.import_module("simulators.hci_server")
    return time.perf_counter() - started


async def bench_worlds() -> dict[str, Any]:
    from drivers.core.clock import MonotonicClock
    from simulators.world import SimWorld

    builds: list[float] = []
    starts: list[float] = []
    totals: list[float] = []
    stops: list[float] = []
    devices = 0
    for _ in range(WORLDS):
        began = time.perf_counter()
        world = SimWorld(clock=MonotonicClock())
        built = time.perf_counter()
        await world.start()
        started = time.perf_counter()
        await world.stop()
        stopped = time.perf_counter()
        devices = len(world)
        builds.append(built - began)
        starts.append(started - built)
        totals.append(started - began)
        stops.append(stopped - started)
    return {
        "devices": devices,
        "build_ms": _ms(builds),
        "start_ms": _ms(starts),
        "build_start_ms": _ms(totals),
        "stop_ms": _ms(stops),
    }


async def bench_servers(directory: Path) -> dict[str, Any]:
    from bleak import BleakClient

    from drivers.codecs import sig_common as sig
    from drivers.core.clock import MonotonicClock
    from simulators import backend
    from simulators.catalog import spec_for
    from simulators.serve import SimServer

    starts: list[float] = []
    closes: list[float] = []
    for index in range(SERVERS):
        began = time.perf_counter()
        server = await SimServer.start(
            f"unix:{directory / f's{index}.sock'}", clock=MonotonicClock()
        )
        started = time.perf_counter()
        await server.close()
        starts.append(started - began)
        closes.append(time.perf_counter() - started)

    connects: list[float] = []
    pad = spec_for("contrast-pad")
    async with await SimServer.start(
        f"unix:{directory / 'connect.sock'}", clock=MonotonicClock()
    ) as server:
        for _ in range(FIRST_CONNECTS):
            began = time.perf_counter()
            adapter = await backend.SimAdapter.over_transport(server.client_spec)
            try:
                async with BleakClient(
                    pad.address, backend=backend.SimClient, sim_adapter=adapter
                ) as client:
                    model = bytes(await client.read_gatt_char(sig.MODEL_NUMBER_UUID)).decode()
                    connects.append(time.perf_counter() - began)
            finally:
                await adapter.close()
            if model != pad.model:
                raise RuntimeError(f"read model {model!r} from the contrast pad")
            await asyncio.sleep(0.01)  # the pad advertises again after the link ends
    return {
        "server_start_ms": _ms(starts),
        "server_close_ms": _ms(closes),
        "first_connection_ms": _ms(connects),
    }


async def run_all(import_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="relieve-world-bench-") as directory:
        results: dict[str, Any] = {
            "import_world_and_server_ms": round(import_s * 1000, 1),
            "world": await bench_worlds(),
            "server": await bench_servers(Path(directory)),
        }
    p50 = results["world"]["build_start_ms"]["p50"]
    results["targets_ms"] = TARGETS_MS
    results["meets_targets"] = p50 <= TARGETS_MS["world_build_start_p50"]
    return results


def _table(results: dict[str, Any]) -> str:
    world = results["world"]
    server = results["server"]

    def row(label: str, figures: dict[str, float]) -> str:
        return (
            f"{label:<44}p50 {figures['p50']:>7.2f} ms   p99 {figures['p99']:>7.2f} ms"
            f"   max {figures['max']:>7.2f} ms"
        )

    lines = [
        f"import world + HCI server (bumble): {results['import_world_and_server_ms']:.0f} ms",
        row(f"fresh world of {world['devices']} devices: build", world["build_ms"]),
        row("  start (power on, advertise, firmware)", world["start_ms"]),
        row("  build + start", world["build_start_ms"]),
        row("  stop", world["stop_ms"]),
        row("server (world + unix socket): start", server["server_start_ms"]),
        row("  close", server["server_close_ms"]),
        row("first connection through it (+ read)", server["first_connection_ms"]),
        f"target: world build + start p50 <= {TARGETS_MS['world_build_start_p50']:.0f} ms -> "
        f"{'met' if results['meets_targets'] else 'NOT met'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    import_s = time_imports()
    results = asyncio.run(run_all(import_s))
    sys.stdout.write((json.dumps(results, indent=2) if args.json else _table(results)) + "\n")
    return 0 if results["meets_targets"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
