"""`relieve run` at a real terminal (a pseudo-terminal): the person confirms the precautions
with y Enter, then the line keys work for the rest of the session -- in-process and through
the node daemon.

The precautions and the keys read the same terminal; an answer must not leave the keys deaf
(an `s` Enter that does nothing would leave only Ctrl-C to stop the session).
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sim_processes import RELIEVE, wait_for

READY_S = 30.0


class Terminal:
    """A command in a pseudo-terminal: what it wrote, and lines typed into it."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the command, its stdin/stdout/stderr on the terminal
            os.execve(command[0], command, env)  # noqa: S606 - relieve itself, no shell
        self.out = b""
        self.status: int | None = None

    def read(self, seconds: float = 0.1) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    self.out += os.read(self.fd, 65536)
                except OSError:  # the command ended and the terminal closed
                    return

    def shows(self, text: str) -> bool:
        self.read()
        return text.encode() in self.out

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def ended(self) -> bool:
        self.read()
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status is not None

    def close(self) -> None:
        if not self.ended():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "RELIEVE_CONFIG_DIR": str(tmp_path / "config"), "TERM": "dumb"}


@pytest.fixture
def terminal(tmp_path: Path, env: dict[str, str]) -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for term in opened:
        term.close()


def _confirm_then_stop_with_s(term: Terminal) -> None:
    for _ in range(2):  # heat, then cold
        wait_for(lambda: term.shows("Confirm? [y/N]"), "a precaution to confirm")
        term.out = term.out.replace(b"Confirm? [y/N]", b"(answered)")
        term.type("y")
    wait_for(lambda: term.shows("left in phase"), "the heat phase", timeout_s=READY_S)
    term.type("s")
    wait_for(term.ended, "the session to end after s Enter")
    assert term.status == 0, term.out.decode(errors="replace")[-800:]
    assert b"session stopped (stopped by" in term.out
    assert b"every device is off" in term.out


@pytest.mark.timeout(90)
def test_after_confirming_at_the_terminal_s_enter_stops_the_session(
    tmp_path: Path, env: dict[str, str], terminal: list[Terminal]
) -> None:
    data = tmp_path / "d"
    term = Terminal(
        [RELIEVE, "--data-dir", str(data), "run", "contrast-quick", "--simulate", "--speed", "20"],
        env,
    )
    terminal.append(term)
    _confirm_then_stop_with_s(term)


@pytest.mark.timeout(90)
def test_through_the_daemon_the_precautions_and_s_enter_work_the_same(
    tmp_path: Path, env: dict[str, str], terminal: list[Terminal]
) -> None:
    data = tmp_path / "d"
    daemon = subprocess.Popen(
        [RELIEVE, "--data-dir", str(data), "serve", "--simulate", "--speed", "20"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for((data / "relieve.sock").exists, "the daemon's socket")
        term = Terminal([RELIEVE, "--data-dir", str(data), "run", "contrast-quick"], env)
        terminal.append(term)
        _confirm_then_stop_with_s(term)
        assert b"d to detach" in term.out  # the keys say how to leave the session running
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=30)
    assert daemon.returncode == 0
    assert "client command: stop (from pid" in log
    assert "ended: stopped" in log
