"""Line commands for an attended session at a terminal: pause, resume, stop, emergency stop.

The person types a letter and Enter while the live view runs. The same reader answers the
supervisor's questions ("resume when the link is back?"), so nothing else reads the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from typing import Protocol, TextIO

__all__ = ["HELP", "HELP_DAEMON", "SessionKeys"]

HELP = "Type p Enter to pause, r to resume, s to stop, e for an emergency stop (Ctrl-C stops too)."
HELP_DAEMON = HELP[:-1] + "; d to detach (the node daemon's session goes on)."
_YES = frozenset({"y", "yes"})


class Controls(Protocol):
    """What the keys control: a session (:class:`controller.session.service.Session`)."""

    def pause(self, reason: str = ...) -> None: ...

    def resume(self) -> None: ...

    def stop(self, reason: str = ...) -> None: ...

    def emergency_stop(self) -> None: ...


class SessionKeys:
    """Reads lines from ``stream`` and turns them into runner commands or answers."""

    def __init__(self, stream: TextIO | None = None, out: TextIO | None = None) -> None:
        self._stream = stream or sys.stdin
        self._out = out or sys.stderr
        self._runner: Controls | None = None
        self._question: asyncio.Future[bool] | None = None
        self._reading = False

    def handle(self, line: str) -> None:
        """Act on one line the person typed."""
        word = line.strip().lower()
        if self._question is not None and not self._question.done():
            self._question.set_result(word in _YES)
            return
        runner = self._runner
        if runner is None or not word:
            return
        match word[0]:
            case "p":
                runner.pause("paused by you")
            case "r":
                runner.resume()
            case "s" | "q":
                runner.stop("stopped by you")
            case "e" | "x":
                runner.emergency_stop()
            case "d" if hasattr(runner, "detach"):
                runner.detach()  # a session the node daemon runs goes on there
            case _:
                print(HELP, file=self._out)

    async def ask(self, question: str) -> bool:
        """Ask a yes/no question; the next line typed answers it."""
        self._question = asyncio.get_running_loop().create_future()
        print(f"{question} [y/N]", file=self._out, flush=True)
        try:
            return await self._question
        finally:
            self._question = None

    @contextlib.contextmanager
    def attached(self, runner: Controls) -> Iterator[None]:
        """Read the terminal while ``runner`` runs."""
        self._runner = runner
        loop = asyncio.get_running_loop()
        fd = self._stream.fileno()
        loop.add_reader(fd, self._readable)
        self._reading = True
        print(HELP_DAEMON if hasattr(runner, "detach") else HELP, file=self._out, flush=True)
        try:
            yield
        finally:
            if self._reading:
                loop.remove_reader(fd)
            self._reading = False
            self._runner = None

    @contextlib.contextmanager
    def lent(self) -> Iterator[None]:
        """The terminal lent to another reader for a while (the health questions, read on a
        thread): the keys read nothing meanwhile, so no answer is taken for a command."""
        loop = asyncio.get_running_loop()
        fd = self._stream.fileno()
        was_reading = self._reading
        if was_reading:
            loop.remove_reader(fd)
            self._reading = False
        try:
            yield
        finally:
            if was_reading and self._runner is not None:
                loop.add_reader(fd, self._readable)
                self._reading = True

    def _readable(self) -> None:
        line = self._stream.readline()
        if line == "":  # end of input: nothing more will be typed
            asyncio.get_running_loop().remove_reader(self._stream.fileno())
            self._reading = False
            if self._question is not None and not self._question.done():
                self._question.set_result(False)  # no answer will come: no
            return
        self.handle(line)
