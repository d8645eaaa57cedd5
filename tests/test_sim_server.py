"""``relieve sim serve`` and ``relieve sim list``, as scripts and other processes meet them.

Most tests share one real server process (``relieve sim serve --socket ... --speed 10
--events-json``) and reach it as separate machines would: bumble hosts over the unix socket,
each given its own virtual controller (in-process adapters, and a child process for kill -9).
Device time runs x10, so the 3 s lease of the open profile ends in 0.3 real seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from controller.cli import main
from drivers.codecs import open_profile as op
from drivers.codecs import sig_common as sig
from drivers.core.clock import VirtualClock
from simulators import backend
from simulators.catalog import CATALOG, device_keys, spec_for
from simulators.devices.state import DeviceState
from simulators.serve import EventStream, ServeError, SimServer, event_line

# Real-time bound for a server or client process to start (import bleak and bumble).
PROCESS_START_S = 20.0
# Real-time bound for anything a test waits for from a running server.
WAIT_S = 3.0
# Real seconds a scan listens: the simulated radio hears every advertiser as the scan starts.
SCAN_S = 0.5
# Real seconds of silence that show no device is free: every advertiser is heard at once.
SILENCE_S = 0.2
# Device time per real second of the shared server.
SPEED = 10
# Lease of the open profile's START frames in these tests (the codec's default, 3 s).
LEASE_MS = op.DEFAULT_LEASE_MS
# Real seconds between the killed child's lease renewals (0.5 device seconds at x10).
CHILD_RENEW_S = 0.05
# Device seconds past START at which the killed child's pad must still be on: longer than
# the 5 s lease of its START, so only its renewals can have kept it on.
RENEWED_PAST_S = op.LEASE_MAX_MS / 1000 + 0.5
# Device seconds from a client's death to its pad's OFF: the link loss ends the output at
# once (the profile's rule), well before the 5 s lease of the last renewal would.
LINK_LOSS_OFF_S = 4.0

READY = re.compile(
    r"^relieve simulator: (\d+) devices on (\S+?)[ ,].*\(connect with --simulator (\S+)\)$"
)
CLI = [sys.executable, "-m", "controller.cli"]


class ServerProcess:
    """A ``relieve sim serve`` child: its ready line, its JSON events and its stderr."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "sim", "serve", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, object]] = []
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self.terminated = False
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read_events, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))
            if READY.match(line.rstrip("\n")):
                self.ready.set()
        self.ready.set()  # the process ended: whoever waits must look

    def wait_ready(self) -> re.Match[str]:
        assert self.ready.wait(PROCESS_START_S), "the simulator server did not start"
        lines = (READY.match(line) for line in list(self.stderr))
        ready = next((match for match in lines if match is not None), None)
        assert ready is not None, f"no ready line, stderr: {self.stderr}"
        return ready

    @property
    def client_spec(self) -> str:
        return self.wait_ready().group(3)

    def mark(self) -> int:
        """Index of the next event (wait for events after this point)."""
        with self._lock:
            return len(self.events)

    async def event(
        self, check: Callable[[dict[str, object]], bool], *, since: int = 0
    ) -> dict[str, object]:
        """The first event from index ``since`` on that passes ``check`` (waits up to WAIT_S)."""
        async with asyncio.timeout(WAIT_S):
            while True:
                with self._lock:
                    found = [e for e in self.events[since:] if check(e)]
                if found:
                    return found[0]
                await asyncio.sleep(0.005)

    def after(self, event: dict[str, object]) -> int:
        """Index of the event that follows ``event``."""
        with self._lock:
            return next(i for i, e in enumerate(self.events) if e is event) + 1

    def terminate(self) -> None:
        """Send SIGTERM once (a second one during the clean stop would kill the process)."""
        if not self.terminated and self.proc.poll() is None:
            self.terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        self.terminate()
        code = self.proc.wait(timeout=PROCESS_START_S)
        for reader in self._readers:
            reader.join(timeout=WAIT_S)
        return code


def of(device: str, **fields: object) -> Callable[[dict[str, object]], bool]:
    """An event check: this device, with these field values."""
    return lambda e: e["device"] == device and all(e[k] == v for k, v in fields.items())


CHILD = """
import asyncio, sys
from bleak import BleakClient
from drivers.codecs import open_profile as op
from simulators import backend

async def main():
    backend.use_transport(sys.argv[1])
    async with BleakClient(sys.argv[2], backend=backend.SimClient) as client:
        start = op.ThermalStart.heat(40.0, lease_ms=op.LEASE_MAX_MS)
        await client.write_gatt_char(op.THERMAL_CONTROL_POINT_UUID, bytes(start), response=True)
        print("on", flush=True)
        while True:
            await asyncio.sleep(float(sys.argv[3]))
            renew = op.LeaseRenew(op.LEASE_MAX_MS)
            await client.write_gatt_char(op.THERMAL_CONTROL_POINT_UUID, bytes(renew), response=True)

sys.stdin.readline()  # imported: wait for the test's "go"
asyncio.run(main())
"""
"""A client process: on "go" it connects to a contrast pad, heats and renews until killed."""

SCENARIO = """
name = "weak gun"

[[device]]
key = "massage-gun"
battery = 15

[[fault]]
device = "skin-probe"
kind = "sensor_nan"
"""


@dataclasses.dataclass
class Spawned:
    """The processes of this file, started together so their imports overlap."""

    server: ServerProcess  # --speed 10 --events-json, shared by most tests
    scenario_server: ServerProcess  # --scenario, real time, stopped by its test
    scenario_socket: Path
    child: subprocess.Popen[str]  # the client process that gets killed


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spawned]:
    directory = tmp_path_factory.mktemp("sim")
    shared = directory / "hci.sock"
    scenario = directory / "weak.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    own = directory / "own.sock"
    processes = Spawned(
        server=ServerProcess("--socket", str(shared), "--speed", str(SPEED), "--events-json"),
        scenario_server=ServerProcess(
            "--socket", str(own), "--scenario", str(scenario), "--events-json"
        ),
        scenario_socket=own,
        child=subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                f"unix:{shared}",
                spec_for("contrast-pad").address,
                str(CHILD_RENEW_S),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ),
    )
    yield processes
    processes.child.kill()
    processes.child.wait()
    processes.scenario_server.stop()
    assert processes.server.stop() == 0


@pytest.fixture(scope="module")
def server(spawned: Spawned) -> ServerProcess:
    spawned.server.wait_ready()
    return spawned.server


@pytest.fixture
async def adapters(server: ServerProcess) -> AsyncIterator[list[backend.SimAdapter]]:
    """Each test opens as many adapters (separate "machines") as it needs; all are closed."""
    opened: list[backend.SimAdapter] = []
    yield opened
    for adapter in opened:
        await adapter.close()


async def open_adapters(
    server: ServerProcess, opened: list[backend.SimAdapter], count: int
) -> list[backend.SimAdapter]:
    new = await asyncio.gather(
        *(backend.SimAdapter.over_transport(server.client_spec) for _ in range(count))
    )
    opened.extend(new)
    return list(new)


async def find(
    adapter: backend.SimAdapter, addresses: set[str], *, listen_s: float = SCAN_S
) -> dict[str, BLEDevice]:
    """Scan on ``adapter`` until every address is heard (or ``listen_s`` passes)."""
    found: dict[str, BLEDevice] = {}
    complete = asyncio.Event()

    def seen(device: BLEDevice, advertisement: AdvertisementData) -> None:
        if device.address in addresses:
            found[device.address] = device
            if found.keys() == addresses:
                complete.set()

    scanner = BleakScanner(seen, backend=backend.SimScanner, sim_adapter=adapter)
    async with scanner:
        try:
            async with asyncio.timeout(listen_s):
                await complete.wait()
        except TimeoutError:
            pass
    return found


async def model_of(device: BLEDevice | str, adapter: backend.SimAdapter) -> str:
    async with BleakClient(device, backend=backend.SimClient, sim_adapter=adapter) as client:
        return bytes(await client.read_gatt_char(sig.MODEL_NUMBER_UUID)).decode()


# --- one shared server --------------------------------------------------------------------


async def test_the_server_announces_itself_and_reports_every_device(
    server: ServerProcess,
) -> None:
    ready = server.wait_ready()
    assert ready.group(1) == str(len(CATALOG))
    assert ready.group(3) == ready.group(2)  # a unix socket: clients use the same string
    assert ", clock x10" in ready.group(0)
    for key in device_keys():
        first = await server.event(of(key))
        assert first["powered"] is True
        assert first["on"] is False
        assert first["address"] == spec_for(key).address


async def test_three_machines_use_three_devices_at_once(
    server: ServerProcess, adapters: list[backend.SimAdapter]
) -> None:
    keys = ("heat-pad", "massage-gun", "skin-probe")
    machines = await open_adapters(server, adapters, len(keys))

    async def use(adapter: backend.SimAdapter, key: str) -> str:
        spec = spec_for(key)
        heard = await find(adapter, {spec.address})
        assert heard, f"{spec.name} not heard"
        device = heard[spec.address]
        assert device.name == spec.name
        async with BleakClient(device, backend=backend.SimClient, sim_adapter=adapter) as client:
            model = bytes(await client.read_gatt_char(sig.MODEL_NUMBER_UUID)).decode()
            # while this machine holds it, the server reports the link
            await server.event(of(key, connected=True), since=since)
            return model

    since = server.mark()
    models = await asyncio.gather(*(use(a, k) for a, k in zip(machines, keys, strict=True)))
    assert models == [spec_for(k).model for k in keys]
    for key in keys:
        await server.event(of(key, connected=False, advertising=True), since=since)


async def test_eight_machines_at_once(
    server: ServerProcess, adapters: list[backend.SimAdapter]
) -> None:
    machines = await open_adapters(server, adapters, 8)
    everyone = {spec.address for spec in CATALOG}
    heard = await asyncio.gather(*(find(m, everyone) for m in machines))
    assert [found.keys() for found in heard] == [everyone] * 8

    # seven machines each take one device at the same time; the eighth then finds none free
    pairs = list(zip(machines, CATALOG, strict=False))
    holders = [
        BleakClient(heard[i][spec.address], backend=backend.SimClient, sim_adapter=m)
        for i, (m, spec) in enumerate(pairs)
    ]
    await asyncio.gather(*(h.connect() for h in holders))
    try:
        models = await asyncio.gather(*(h.read_gatt_char(sig.MODEL_NUMBER_UUID) for h in holders))
        assert [bytes(m).decode() for m in models] == [spec.model for spec in CATALOG]
        assert await find(machines[7], everyone, listen_s=SILENCE_S) == {}
    finally:
        await asyncio.gather(*(h.disconnect() for h in holders))
    # released, the contrast pad advertises again and the eighth machine gets it
    assert await model_of(CATALOG[0].address, machines[7]) == CATALOG[0].model


async def test_events_show_a_pad_switched_on_and_its_lease_switching_it_off(
    server: ServerProcess, adapters: list[backend.SimAdapter]
) -> None:
    (machine,) = await open_adapters(server, adapters, 1)
    address = spec_for("heat-pad").address
    since = server.mark()
    async with BleakClient(address, backend=backend.SimClient, sim_adapter=machine) as client:
        start = op.ThermalStart.heat(40.0, lease_ms=LEASE_MS)
        await client.write_gatt_char(op.THERMAL_CONTROL_POINT_UUID, bytes(start), response=True)
        on = await server.event(of("heat-pad", on=True), since=since)
        # nobody renews: the pad turns itself off when the lease runs out, still connected
        off = await server.event(of("heat-pad", on=False, connected=True), since=server.after(on))
    assert on["mode"] == "heat"
    assert on["setpoint"] == 40.0
    assert on["output"] == "thermal"
    assert off["flags"] == ["lease-expired"]
    assert off["mode"] == "off"
    # the lease left when the pad reported ON says when it must end, on the server's clock
    assert isinstance(on["t"], float)
    assert isinstance(on["lease_s"], float)
    assert isinstance(off["t"], float)
    assert LEASE_MS / 1000 - 0.5 < on["lease_s"] <= LEASE_MS / 1000
    lease_end = on["t"] + on["lease_s"]
    assert lease_end - 0.01 <= off["t"] <= lease_end + 0.5
    assert isinstance(on["celsius"], float)
    assert isinstance(off["celsius"], float)
    assert off["celsius"] > on["celsius"] + 0.5  # the plate heated meanwhile


async def test_a_killed_client_frees_the_contrast_pad_and_its_output_stops(
    spawned: Spawned, server: ServerProcess, adapters: list[backend.SimAdapter]
) -> None:
    address = spec_for("contrast-pad").address
    since = server.mark()
    child = spawned.child
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        child.stdin.write("go\n")
        child.stdin.flush()
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), PROCESS_START_S)
        assert line == "on\n"
        on = await server.event(of("contrast-pad", on=True), since=since)
        assert isinstance(on["t"], float)
        renewed_until = on["t"] + RENEWED_PAST_S
        # the heating plate changes every few tenths of a device second: events keep coming
        renewed = await server.event(
            lambda e: of("contrast-pad", on=True)(e) and renewed_until <= cast("float", e["t"]),
            since=since,
        )
        killed = server.mark()
    finally:
        child.kill()
    off = await server.event(of("contrast-pad", on=False), since=killed)
    assert off["connected"] is False
    assert off["flags"] == ["link-lost"]  # ended by the link loss, not a lease running out
    assert isinstance(renewed["t"], float)
    assert isinstance(off["t"], float)
    assert off["t"] - renewed["t"] < LINK_LOSS_OFF_S
    (machine,) = await open_adapters(server, adapters, 1)
    assert await model_of(address, machine) == spec_for("contrast-pad").model


# --- a server of its own: scenario and SIGTERM ---------------------------------------------


async def test_a_scenario_is_applied_and_sigterm_stops_everything(spawned: Spawned) -> None:
    process = spawned.scenario_server
    try:
        assert "scenario 'weak gun'" in process.wait_ready().group(0)
        gun = await process.event(of("massage-gun"))
        assert gun["battery"] == 15.0
        probe = await process.event(of("skin-probe", faults=["sensor_nan"]))
        assert probe["sensor_celsius"] is None
        assert isinstance(probe["celsius"], float)  # the skin itself is still there

        machine = await backend.SimAdapter.over_transport(process.client_spec)
        try:
            async with BleakClient(
                spec_for("heat-pad").address, backend=backend.SimClient, sim_adapter=machine
            ) as client:
                start = op.ThermalStart.heat(42.0, lease_ms=op.LEASE_MAX_MS)
                await client.write_gatt_char(
                    op.THERMAL_CONTROL_POINT_UUID, bytes(start), response=True
                )
                await process.event(of("heat-pad", on=True))
                since = process.mark()
                process.terminate()
                # the server hangs up on this machine and the pad turns off as it goes
                off = await process.event(of("heat-pad", on=False), since=since)
                assert off["flags"] == ["link-lost"]
        finally:
            await machine.close()
    finally:
        code = process.stop()
    assert code == 0
    assert process.stderr[-1] == "relieve simulator: stopped."
    assert not any("Traceback" in line for line in process.stderr)
    assert not spawned.scenario_socket.exists()


# --- bad arguments ------------------------------------------------------------------------


BAD_ARGUMENTS: list[tuple[list[str], int, str]] = [
    ([], 2, "one of the arguments --socket --tcp is required"),
    (["--socket", "{dir}/x.sock", "--tcp", "127.0.0.1:9"], 2, "not allowed with argument"),
    (["--socket", "{dir}/x.sock", "--speed", "0"], 2, "is not a clock speed"),
    (["--socket", "{dir}/x.sock", "--speed", "fast"], 2, "is not a number"),
    (["--tcp", "localhost"], 2, "is not HOST:PORT"),
    (["--tcp", "127.0.0.1:70000"], 2, "is not HOST:PORT"),
    (["--socket", "{dir}/x.sock", "--scenario", "{dir}/none.toml"], 1, "Cannot read"),
    (["--socket", "{dir}/x.sock", "--scenario", "{dir}/bad.toml"], 1, "cannot have a stuck_heat"),
    (["--socket", "{busy}"], 1, "Another simulator is already serving on"),
    (["--socket", "{dir}/plain.txt"], 1, "exists and is not a socket"),
    (["--socket", "{dir}/no/such/dir.sock"], 1, "there is no directory"),
    (["--tcp", "127.0.0.1:{port}"], 1, "Address already in use"),
]


@pytest.mark.parametrize(("args", "code", "words"), BAD_ARGUMENTS)
def test_bad_arguments_get_one_sentence(
    server: ServerProcess,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    words: str,
) -> None:
    (tmp_path / "plain.txt").write_text("not a socket", encoding="utf-8")
    (tmp_path / "bad.toml").write_text(
        '[[fault]]\ndevice = "theragun"\nkind = "stuck_heater"\n', encoding="utf-8"
    )
    busy = server.client_spec.removeprefix("unix:")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        argv = ["sim", "serve", *(a.format(dir=tmp_path, busy=busy, port=port) for a in args)]
        got: int | str | None
        try:
            got = main(argv)
        except SystemExit as exc:  # argparse refuses
            got = exc.code
    err = capsys.readouterr().err
    assert got == code
    assert words in err
    if code == 1:  # our own errors: one line, one sentence
        assert err.count("\n") == 1, err
        assert err.startswith("relieve: ")
        assert err.endswith(".\n")


def test_a_busy_socket_is_one_sentence_from_the_real_command(server: ServerProcess) -> None:
    busy = server.client_spec.removeprefix("unix:")
    result = subprocess.run(
        [*CLI, "sim", "serve", "--socket", busy],
        capture_output=True,
        text=True,
        timeout=PROCESS_START_S,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"relieve: Another simulator is already serving on {busy}: stop it, or choose another "
        "--socket path.\n"
    )
    # the running server's socket was left alone: it still answers
    with socket.socket(socket.AF_UNIX) as probe:
        probe.connect(busy)


# --- in-process: the server API, the TCP socket, socket files ------------------------------


async def test_in_process_server_over_tcp() -> None:
    events: list[dict[str, object]] = []
    async with await SimServer.start(
        "tcp-server:127.0.0.1:0", clock=VirtualClock(), on_event=events.append
    ) as server:
        assert server.client_spec.startswith("tcp-client:127.0.0.1:")
        port = server.client_spec.rpartition(":")[2]
        assert port != "0"
        assert server.listen == f"tcp-server:127.0.0.1:{port}"
        assert server.ready_message().endswith(f"(connect with --simulator {server.client_spec})")
        machine = await backend.SimAdapter.over_transport(server.client_spec)
        try:
            assert server.clients == 1
            assert await model_of(spec_for("theragun").address, machine) == "PRO Gen 4"
        finally:
            await machine.close()
    assert {e["device"] for e in events} == set(device_keys())


async def test_a_stale_socket_file_is_replaced_and_removed_on_close(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    left_behind = socket.socket(socket.AF_UNIX)
    left_behind.bind(str(path))  # a server killed with kill -9 leaves its file like this
    left_behind.close()
    async with await SimServer.start(f"unix:{path}", clock=VirtualClock()) as server:
        assert server.client_spec == f"unix:{path}"
        machine = await backend.SimAdapter.over_transport(server.client_spec)
        await machine.close()
    assert not path.exists()


async def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sock"
    path.write_text("keep me", encoding="utf-8")
    with pytest.raises(ServeError, match="exists and is not a socket"):
        await SimServer.start(f"unix:{path}", clock=VirtualClock())
    assert path.read_text(encoding="utf-8") == "keep me"


HEAT_PAD_AT_REST = DeviceState(
    key="heat-pad",
    address="C0:DE:00:00:00:02",
    time=110.0,
    powered=True,
    advertising=False,
    connected=True,
    plate_c=33.0,
    skin_c=33.0,
    sensor_c=33.0,
)


def snapshot(**fields: Any) -> DeviceState:
    return dataclasses.replace(HEAT_PAD_AT_REST, **fields)


def test_only_changes_a_person_would_see_are_events() -> None:
    events: list[dict[str, object]] = []
    stream = EventStream(100.0, events.append)
    stream(snapshot())
    stream(snapshot(time=111.0, plate_c=33.04, skin_c=33.02, lease_remaining_s=2.0))
    assert len(events) == 1  # drift below 0.1 degC and a lease countdown are not changes
    stream(snapshot(time=112.0, plate_c=33.2))
    stream(snapshot(time=113.0, plate_c=33.2, output_on=True, mode="heat", setpoint_c=40.0))
    stream(snapshot(time=114.0, plate_c=33.2, sensor_c=float("nan"), faults=("sensor_nan",)))
    assert [e["t"] for e in events] == [10.0, 12.0, 13.0, 14.0]
    assert events[2]["on"] is True
    assert events[2]["setpoint"] == 40.0
    assert events[3]["sensor_celsius"] is None
    assert json.loads(json.dumps(events[3])) == events[3]  # NaN never reaches the JSON


def test_the_probe_reports_skin_temperature() -> None:
    probe = snapshot(
        key="skin-probe", address="C0:DE:00:00:00:07", plate_c=None, skin_c=36.5, sensor_c=36.4
    )
    line = event_line(probe, 100.0)
    assert (line["output"], line["celsius"], line["on"]) == ("probe", 36.5, False)


# --- sim list ------------------------------------------------------------------------------


def test_sim_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in rows] == list(device_keys())
    by_key = {r["key"]: r for r in rows}
    assert by_key["contrast-pad"]["safety_class"] == "lease"
    assert by_key["theragun"]["safety_class"] == "host-timed"
    assert by_key["skin-probe"]["safety_class"] is None
    assert by_key["massage-gun"]["kind"] == "percussion"
    assert "stuck_heater" in by_key["contrast-pad"]["faults"]
    assert "stuck_heater" not in by_key["theragun"]["faults"]


def test_sim_list_table_does_not_import_bumble() -> None:
    code = (
        "import sys\n"
        "from controller.cli import main\n"
        "code = main(['sim', 'list'])\n"
        "assert 'bumble' not in sys.modules, 'bumble was imported'\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KEY", "NAME", "ADDRESS", "KIND", "SAFETY", "PROTOCOL"]
    assert any(line.startswith("theragun") and "host-timed" in line for line in lines)
