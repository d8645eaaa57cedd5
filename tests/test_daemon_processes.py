"""The node daemon (``relieve serve``) and its clients, as real processes in real time.

A `relieve sim serve` on a unix socket plays the devices; a daemon on a data directory of the
test's own runs the session that `relieve run` asks for; `relieve status`, `stop`, `attach` and
`history` are run as a person would run them. Each test asserts what that person observes: the
lines the commands print, their exit status, what the simulated pad reports (ON / OFF), and what
the history records. Every process a test starts is stopped at its end (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.sim_processes import (
    HEAT_PAD,
    RELIEVE,
    WARM_MINUTE,
    json_lines,
    sim_server,
    wait_for,
)

LEASE_MAX_S = 5.0  # H4: a pad turns itself off at most this long after its controller is gone
END_WAIT_S = 15.0  # real seconds a process may take to end once told to
OFF_WAIT_S = 5.0  # real seconds the simulator may take to report a pad OFF once a stop ended
DETACHED_S = 3.5  # how long a session must go on after its client is gone (the pad lease is 3 s)
COMMAND_TIMEOUT_S = 30.0


@dataclass
class Proc:
    """A process started by a test, with the files its stdout and stderr go to."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def lines(self) -> list[dict[str, object]]:
        return json_lines(self.out)

    def log(self) -> str:
        return self.err.read_text() if self.err.exists() else ""

    def wait(self, timeout_s: float = END_WAIT_S) -> int:
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"process {self.pid} did not end within {timeout_s:g} s:\n{self.log()}")


def _end(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL when it has not ended after a while."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=END_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Node:
    """One test's node: its data directory, configuration, simulator and processes."""

    tmp: Path
    stack: contextlib.ExitStack
    spec: str | None = None  # the simulator server's client spec
    events: Path | None = None  # the simulator server's --events-json output
    data: Path = field(init=False)
    profile: Path = field(init=False)
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.data = self.tmp / "d"
        config = self.tmp / "config"
        (config / "profiles").mkdir(parents=True)
        self.profile = self.tmp / "warm.toml"
        self.profile.write_text(WARM_MINUTE)
        # never the real user's configuration, nor their data directory by accident
        self.env = {**os.environ, "RELIEVE_CONFIG_DIR": str(config)}
        self.env.pop("RELIEVE_DATA_DIR", None)

    # --- processes ---------------------------------------------------------------------------

    def start(self, name: str, *args: str, cwd: Path | None = None) -> Proc:
        """``relieve --data-dir D ARGS`` in the background, stopped at the end of the test."""
        out, err = self.tmp / f"{name}.out", self.tmp / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            popen = subprocess.Popen(
                [RELIEVE, "--data-dir", str(self.data), *args],
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                cwd=cwd or self.tmp,
                env=self.env,
            )
        self.stack.callback(_end, popen)
        return Proc(popen, out, err)

    def relieve(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``relieve --data-dir D ARGS``, to its end."""
        return subprocess.run(
            [RELIEVE, "--data-dir", str(self.data), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd=self.tmp,
            env=self.env,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )

    def serve(self, *radio: str, cwd: Path | None = None) -> Proc:
        """``relieve serve`` with the simulator server (or the radio options given), once it
        listens."""
        if not radio:
            assert self.spec is not None
            radio = ("--simulator", self.spec)
        daemon = self.start("serve", "serve", *radio, cwd=cwd)

        def listening() -> bool:
            if daemon.popen.poll() is not None:
                pytest.fail(f"relieve serve ended ({daemon.popen.returncode}):\n{daemon.log()}")
            return self.socket.exists() and "serving" in daemon.log()

        wait_for(listening, "relieve serve to listen")
        return daemon

    def run(self, *radio: str, profile: str | None = None, cwd: Path | None = None) -> Proc:
        """``relieve run warm.toml --heat HEAT_PAD --yes --json`` (with its radio options)."""
        return self.start(
            "run",
            "run",
            profile or str(self.profile),
            *radio,
            "--heat",
            HEAT_PAD,
            "--yes",
            "--json",
            cwd=cwd,
        )

    # --- what a person observes ----------------------------------------------------------------

    @property
    def socket(self) -> Path:
        return self.data / "relieve.sock"

    def pad_states(self) -> list[bool]:
        """ON (True) / OFF (False), each time the simulated heat pad reported a change."""
        assert self.events is not None
        return [bool(e["on"]) for e in json_lines(self.events) if e["device"] == "heat-pad"]

    def pad_on(self) -> bool:
        states = self.pad_states()
        return bool(states) and states[-1]

    def pad_off(self) -> bool:
        states = self.pad_states()
        return bool(states) and not states[-1]

    def status(self) -> dict[str, Any]:
        done = self.relieve("status", "--json")
        assert done.returncode == 0, done.stderr
        found: dict[str, Any] = json.loads(done.stdout)
        return found

    def outcomes(self) -> list[object]:
        done = self.relieve("history", "--simulated", "--json")
        assert done.returncode == 0, done.stderr
        return [session["outcome"] for session in json.loads(done.stdout)]


def _heating(proc: Proc) -> bool:
    """``proc``'s JSON event lines have reached the heat phase."""
    return any(e.get("type") == "phase" and e.get("mode") == "heat" for e in proc.lines())


def _types(proc: Proc) -> list[object]:
    return [e.get("type") for e in proc.lines()]


def _finished(proc: Proc) -> dict[str, object]:
    """The ``finished`` line ``proc`` printed (it must have printed exactly one, last)."""
    lines = proc.lines()
    done = [e for e in lines if e.get("type") == "finished"]
    assert len(done) == 1, f"finished lines: {done}\n{proc.log()}"
    assert lines[-1] is done[0], "the finished line is the last one"
    return done[0]


def _wait_heating(node: Node, run: Proc) -> None:
    """The run has printed its heat phase and the simulated pad reports ON."""

    def heating() -> bool:
        if run.popen.poll() is not None:
            pytest.fail(f"relieve run ended ({run.popen.returncode}):\n{run.log()}")
        return _heating(run)

    wait_for(heating, "the heat phase")
    wait_for(node.pad_on, "the simulated pad to report ON", timeout_s=OFF_WAIT_S)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """A node with a simulator server; its processes end before the server does."""
    with sim_server(tmp_path) as (spec, events), contextlib.ExitStack() as stack:
        yield Node(tmp_path, stack, spec, events)


@pytest.fixture
def bare_node(tmp_path: Path) -> Iterator[Node]:
    """A node without a simulator server."""
    with contextlib.ExitStack() as stack:
        yield Node(tmp_path, stack)


# --- 1. a session through the daemon, stopped with relieve stop -------------------------------


@pytest.mark.timeout(90)
def test_run_through_the_daemon_shows_in_status_and_relieve_stop_ends_it(node: Node) -> None:
    daemon = node.serve()
    run = node.run()
    _wait_heating(node, run)
    assert _types(run)[0] == "started"

    found = node.status()
    assert found["daemon"] is not None
    assert found["daemon"]["pid"] == daemon.pid
    assert found["daemon"]["simulated"] is True
    session = found["session"]
    assert session is not None
    assert session["profile"] == "warm-minute"
    assert session["state"] == "running"
    assert found["other_sessions"] == []

    stopped = node.relieve("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stderr.startswith("relieve: session stopped"), stopped.stderr
    assert stopped.stderr.rstrip().endswith("every device is off."), stopped.stderr
    wait_for(node.pad_off, "the simulated pad to report OFF", timeout_s=OFF_WAIT_S)

    assert run.wait() == 0, run.log()
    finished = _finished(run)
    assert finished["outcome"] == "stopped"
    assert finished["devices_off"] is True
    assert node.outcomes() == ["stopped"]

    after = node.status()
    assert after["daemon"] is not None
    assert after["session"] is None
    assert after["last"]["finished"]["outcome"] == "stopped"
    assert daemon.popen.poll() is None, "the daemon goes on after the session"
    assert "Traceback" not in daemon.log()


@pytest.mark.timeout(90)
def test_a_relative_profile_path_is_the_clients_file_not_the_daemons(node: Node) -> None:
    """`relieve run warm.toml` in the directory that holds warm.toml runs that file, with a
    daemon as without one; the daemon itself runs in another directory (under systemd, /)."""
    elsewhere = node.tmp / "daemon-cwd"
    elsewhere.mkdir()
    node.serve(cwd=elsewhere)

    run = node.run(profile="warm.toml", cwd=node.tmp)

    def heating_or_ended() -> bool:
        return _heating(run) or run.popen.poll() is not None

    wait_for(heating_or_ended, "the heat phase (or the run to end)")
    assert _heating(run), f"relieve run warm.toml did not run the file: {run.log().strip()}"
    stopped = node.relieve("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert run.wait() == 0


# --- 2. the client killed: the session goes on in the daemon ----------------------------------


@pytest.mark.timeout(90)
def test_kill_9_of_the_run_client_leaves_the_session_running_in_the_daemon(node: Node) -> None:
    node.serve()
    run = node.run()
    _wait_heating(node, run)

    os.kill(run.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert run.wait() == -signal.SIGKILL

    def on_long_enough() -> bool:
        assert node.pad_on(), "the pad went OFF after the client was killed"
        return time.monotonic() - killed_at >= DETACHED_S

    wait_for(on_long_enough, "the session to go on without its client", timeout_s=DETACHED_S + 1)

    found = node.status()
    session = found["session"]
    assert session is not None, "the daemon's session ended with its client"
    assert session["profile"] == "warm-minute"
    assert session["state"] == "running"
    assert session["t"] >= DETACHED_S
    assert found["daemon"]["attached"] == 0
    assert node.pad_on()
    assert node.outcomes() == ["running"]


@pytest.mark.timeout(90)
def test_ctrl_c_of_the_run_client_stops_the_daemons_session(node: Node) -> None:
    node.serve()
    run = node.run()
    _wait_heating(node, run)

    run.popen.send_signal(signal.SIGINT)
    assert run.wait() == 0, run.log()
    assert _finished(run)["outcome"] == "stopped"
    wait_for(node.pad_off, "the simulated pad to report OFF", timeout_s=OFF_WAIT_S)
    assert node.status()["session"] is None
    assert node.outcomes() == ["stopped"]


@pytest.mark.timeout(90)
def test_radio_options_naming_other_devices_than_the_daemons_are_refused(node: Node) -> None:
    """The daemon serves the simulator at one socket; `relieve run --simulator` naming
    another is refused in one sentence, and nothing is turned on."""
    node.serve()
    other = f"unix:{node.tmp / 'other-sim.sock'}"
    run = node.run("--simulator", other)

    def ended_or_heating() -> bool:
        return run.popen.poll() is not None or _heating(run)

    wait_for(ended_or_heating, "relieve run to end (or to heat)")
    assert not _heating(run), "the session ran on the daemon's devices, not those asked for"
    assert run.wait() == 1
    message = run.log().strip()
    assert message.splitlines() == [message], message
    assert "leave out --simulate, --simulator and --speed" in message
    assert not any(node.pad_states()), "a device was turned on"
    assert node.outcomes() == []


# --- 3. the daemon stopped with SIGTERM mid-heat ----------------------------------------------


@pytest.mark.timeout(90)
def test_sigterm_of_the_daemon_stops_the_session_and_removes_its_socket(node: Node) -> None:
    daemon = node.serve()
    run = node.run()
    _wait_heating(node, run)

    daemon.popen.send_signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.log()
    wait_for(node.pad_off, "the simulated pad to report OFF", timeout_s=OFF_WAIT_S)
    assert not node.socket.exists(), "the daemon left its socket behind"
    assert "Traceback" not in daemon.log()
    assert node.outcomes() == ["stopped"]

    # the person who ran it sees it end, stopped
    run.wait()
    assert _finished(run)["outcome"] == "stopped"

    found = node.status()
    assert found["daemon"] is None
    assert found["session"] is None


# --- 4. the daemon killed with SIGKILL mid-heat -----------------------------------------------


@pytest.mark.timeout(90)
def test_kill_9_of_the_daemon_leaves_the_pad_off_and_the_session_interrupted(
    node: Node,
) -> None:
    daemon = node.serve()
    run = node.run()
    _wait_heating(node, run)

    os.kill(daemon.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert daemon.wait() == -signal.SIGKILL
    wait_for(node.pad_off, "the pad to turn itself off", timeout_s=LEASE_MAX_S + 1)
    assert time.monotonic() - killed_at <= LEASE_MAX_S + 0.5

    found = node.status()
    assert found["daemon"] is None, "a killed daemon is reported as running"
    assert found["session"] is None, "the killed daemon's session is reported as running"
    assert found["other_sessions"] == []
    assert node.outcomes() == ["interrupted"]

    # the client does not hang on a daemon that is gone
    assert run.wait() != 0
    assert "Traceback" not in run.log()


# --- 5. one daemon per data directory ---------------------------------------------------------


@pytest.mark.timeout(90)
def test_a_second_daemon_on_the_same_data_directory_is_refused(bare_node: Node) -> None:
    node = bare_node
    first = node.serve("--simulate")

    second = node.start("serve2", "serve", "--simulate")
    assert second.wait() == 1
    message = second.log().strip()
    assert "Traceback" not in message
    assert message.splitlines() == [message], message
    assert message == (
        f"relieve: Another relieve serve already runs on the data directory {node.data} "
        f"(process {first.pid}); stop it first, or give this one another --data-dir."
    )

    assert first.popen.poll() is None, "the first daemon ended"
    assert node.socket.exists(), "the refused daemon removed the first one's socket"
    assert (node.data / "relieve-serve.lock").read_text().strip() == str(first.pid)
    found = node.status()
    assert found["daemon"] is not None
    assert found["daemon"]["pid"] == first.pid

    first.popen.send_signal(signal.SIGTERM)
    assert first.wait() == 0, first.log()


# --- 6. relieve stop without a daemon ---------------------------------------------------------


@pytest.mark.timeout(90)
def test_relieve_stop_without_a_daemon_stops_a_plain_run_in_another_process(node: Node) -> None:
    assert node.spec is not None
    run = node.run("--simulator", node.spec)
    _wait_heating(node, run)

    found = node.status()
    assert found["daemon"] is None
    session = found["session"]
    assert session is not None
    assert session["pid"] == run.pid
    assert session["profile"] == "warm-minute"
    # the holder's command line (its first words: global options come before `run`)
    started_by = str(session["started_by"]).split()
    assert started_by[0] == "relieve", session
    assert "run" in started_by, session

    stopped = node.relieve("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stderr, stopped.stderr
    wait_for(node.pad_off, "the simulated pad to report OFF", timeout_s=OFF_WAIT_S)
    assert run.wait() == 0, run.log()
    assert _finished(run)["outcome"] == "stopped"
    assert node.outcomes() == ["stopped"]

    after = node.status()
    assert after["session"] is None


# --- 7. relieve attach follows the daemon's session -------------------------------------------


@pytest.mark.timeout(90)
def test_attach_replays_the_session_so_far_then_follows_it_to_its_end(node: Node) -> None:
    node.serve()
    run = node.run()
    _wait_heating(node, run)

    attach = node.start("attach", "attach", "--json")

    def replayed() -> bool:
        if attach.popen.poll() is not None:
            pytest.fail(f"relieve attach ended ({attach.popen.returncode}):\n{attach.log()}")
        return _heating(attach)

    wait_for(replayed, "relieve attach to replay the session so far")
    assert _types(attach)[0] == "started"
    started = attach.lines()[0]
    assert started["profile"] == "warm-minute"
    assert "finished" not in _types(attach)

    stopped = node.relieve("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert attach.wait() == 0, attach.log()
    assert _finished(attach)["outcome"] == "stopped"
    assert run.wait() == 0, run.log()
    assert _finished(run)["outcome"] == "stopped"


# --- 8. relieve status on an idle node --------------------------------------------------------


def test_status_without_a_daemon_or_a_session_says_so(bare_node: Node) -> None:
    done = bare_node.relieve("status")
    assert done.returncode == 0, done.stderr
    assert f"node {bare_node.data}: no daemon (relieve serve) runs here" in done.stdout
    assert "no session is running" in done.stdout.splitlines()
    assert done.stderr == ""


# --- arming remote start at the node ----------------------------------------------------------


@pytest.mark.timeout(60)
def test_relieve_arm_needs_remote_start_and_then_arms_one_start(bare_node: Node) -> None:
    node = bare_node
    daemon = node.serve("--simulate")
    refused = node.relieve("arm", "--yes")
    assert refused.returncode == 1
    assert "Remote start is off on this node" in refused.stderr
    daemon.popen.send_signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.log()

    # a [mqtt] table allowing one profile; no broker listens there, and the daemon serves all
    # the same (the bridge only retries)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = Path(node.env["RELIEVE_CONFIG_DIR"])
    (config / "config.toml").write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nnode = "test-room"\n'
        'remote_start = true\nstart_profiles = ["contrast-quick"]\n'
    )
    daemon = node.serve("--simulate")
    armed = node.relieve("arm", "--yes")
    assert armed.returncode == 0, armed.stderr
    assert "Remote start armed until" in armed.stderr
    assert "contrast-quick" in armed.stderr
    daemon.popen.send_signal(signal.SIGTERM)
    assert daemon.wait() == 0
    log = daemon.log()
    assert "arm remote start until" in log
    assert "Traceback" not in log
