"""The person at the terminal UI, as the session service asks them (its ``Person``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.health import load_answers
from controller.session.service import AskResume
from tui.screens.confirm import ConfirmScreen
from tui.screens.health import HealthScreen

if TYPE_CHECKING:
    from textual.app import App

__all__ = ["TuiPerson"]


class TuiPerson:
    """Asks in a modal (or takes ``yes``); warnings go to ``on_notice``.

    When a session on real devices needs the health questions answered first, the health
    screen opens (``health_config``: where the answers are kept); the session goes on once they
    are all answered and saved there, and is refused with its sentence otherwise. ``--yes``
    never answers them.
    """

    def __init__(
        self,
        app: App[Any],
        *,
        yes: bool,
        on_notice: Callable[[str], None] | None = None,
        health_config: Path | None = None,
    ) -> None:
        self.app = app
        self.yes = yes
        self.on_notice = on_notice
        self.health_config = health_config
        self.notices: list[str] = []

    async def ask(self, text: str, title: str = "Please confirm") -> bool:
        """A yes/no modal; dismissed (as no) when the asking is cancelled."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        dismissed = False

        def answered(value: bool | None) -> None:
            nonlocal dismissed
            dismissed = True
            if not answer.done():
                answer.set_result(bool(value))

        screen = ConfirmScreen(text, title=title)
        self.app.push_screen(screen, answered)
        try:
            return await answer
        finally:
            if not dismissed and self.app.screen is screen:
                screen.dismiss(False)  # the asking was cancelled (the session stopped)

    async def confirm(self, text: str) -> bool:
        if self.yes:
            return True
        return await self.ask(text, "Before the first device turns on")

    def notice(self, text: str) -> None:
        self.notices.append(text)
        if self.on_notice is not None:
            self.on_notice(text)

    async def health_answers(self) -> Mapping[str, bool] | None:
        if self.yes:
            return None
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        screen = HealthScreen(self.health_config, needed=True)

        def on_close(_: None) -> None:
            if not closed.done():
                closed.set_result(None)

        self.app.push_screen(screen, on_close)
        try:
            await closed
        finally:
            if not closed.done() and self.app.screen is screen:
                screen.dismiss(None)  # the asking was cancelled (the session stopped)
        stored = load_answers(self.health_config)
        return stored.flags if stored.answered else None

    @property
    def ask_resume(self) -> AskResume | None:
        return self._ask_resume

    async def _ask_resume(self, question: str) -> bool:
        return await self.ask(question, "The link is back")
