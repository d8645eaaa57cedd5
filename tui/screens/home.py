"""The home screen: the profiles (built-in and the user's); Enter starts the selected one."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Footer, Label, ListItem, ListView, Static

from controller.library import ProfileLibrary

__all__ = ["HomeScreen"]


class HomeScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, library: ProfileLibrary, start: Callable[[str], None]) -> None:
        super().__init__()
        self.library = library
        self.start = start
        self.names: list[str] = []

    def compose(self) -> ComposeResult:
        profiles = self.library.all()
        self.names = list(profiles)
        yield Static("relieve: choose a profile and press Enter", id="home-title")
        items = []
        for name, loaded in profiles.items():
            where = "built-in" if loaded.builtin else "yours"
            items.append(ListItem(Label(f"{loaded.profile.title}  ({name}, {where})")))
        yield ListView(*items, id="profiles")
        problems = len(self.library.problems)
        if problems:
            yield Static(
                f"{problems} problem(s) in your profiles: relieve profiles validate shows them.",
                id="home-problems",
            )
        yield Footer()

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        index = event.list_view.index
        if index is not None and 0 <= index < len(self.names):
            self.start(self.names[index])
