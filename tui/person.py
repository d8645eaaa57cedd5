"""The person at the terminal UI, as the session service asks them (its ``Person``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from controller.session.service import AskResume
from tui.screens.confirm import ConfirmScreen

if TYPE_CHECKING:
    from textual.app import App

__all__ = ["TuiPerson"]


class TuiPerson:
    """Asks in a modal (or takes ``yes``); warnings go to ``on_notice``.

    The health questions are never asked here (``relieve health`` asks them), so on real
    devices never asked before the service refuses with the sentence that says so.
    """

    def __init__(
        self, app: App[Any], *, yes: bool, on_notice: Callable[[str], None] | None = None
    ) -> None:
        self.app = app
        self.yes = yes
        self.on_notice = on_notice
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
        return None

    @property
    def ask_resume(self) -> AskResume | None:
        return self._ask_resume

    async def _ask_resume(self, question: str) -> bool:
        return await self.ask(question, "The link is back")
