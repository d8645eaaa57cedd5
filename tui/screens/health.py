"""The health screen: every health question with its answer, answered and changed with keys.

The questions are the table ``relieve health`` asks (:data:`profiles.health.CONDITIONS`); the
answers are kept where ``relieve health`` keeps them (:func:`controller.health.save_answers`), so
``relieve health show`` sees what was saved here. Nothing is stored until the person saves.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from controller.health import HealthAnswers, health_path, load_answers, save_answers
from profiles.errors import RelieveError
from profiles.health import (
    CONDITIONS,
    MODALITIES,
    NOT_A_MEDICAL_DEVICE,
    Condition,
    Modality,
    blocked_now,
    modality_text,
)
from tui.screens.confirm import ConfirmScreen

__all__ = ["NEEDED_TEXT", "HealthScreen", "blocked_lines", "yes_blocks"]

NEEDED_TEXT = (
    "A session on real devices needs every question answered once: answer them (y / n), save "
    "(ctrl+s), then escape to go on."
)

_SHORT: dict[Modality, str] = {"heat": "heat", "cold": "cold", "massage": "massage gun"}
# What blocked_now names, as a person reads it.
_WHAT = {
    "heat": "heat",
    "cold": "cold",
    "contrast": "contrast (heat and cold)",
    "massage": "the massage gun",
}
UNSAVED = "*"


def yes_blocks(cond: Condition) -> str:
    """The table's short "a yes blocks" cell: ``heat, cold``, ``warns: massage gun``."""
    if cond.blocks:
        return ", ".join(_SHORT[m] for m in MODALITIES if m in cond.blocks)
    return "warns: " + ", ".join(_SHORT[m] for m in MODALITIES if m in cond.warns)


def _if_yes(cond: Condition) -> str:
    """What a yes does, in full: ``A yes blocks heat (burns you may not feel).``"""
    if cond.blocks:
        parts = [f"{modality_text(m)} ({cond.why[m]})" for m in MODALITIES if m in cond.blocks]
        return "A yes blocks " + " and ".join(parts) + "."
    return f"A yes blocks nothing; before the massage gun relieve says: {cond.warning}"


def blocked_lines(flags: Mapping[str, bool]) -> list[str]:
    """What the answers (condition id -> yes) block now, a line for heat, cold, contrast and
    the massage gun, then the warning of each condition answered yes that only warns."""
    width = max(len(w) for w in _WHAT.values())
    lines = []
    for key, conditions in blocked_now(flags).items():
        state = "BLOCKED by " + ", ".join(c.label for c in conditions) if conditions else "allowed"
        lines.append(f"{_WHAT[key]:<{width}}  {state}")
    lines += [c.warning for c in CONDITIONS if c.warns and flags.get(c.id, False)]
    return lines


class HealthScreen(Screen[None]):
    """The health questions: up/down choose one, ``y`` / ``n`` answer it (and go on to the next),
    ``ctrl+s`` or ``s`` saves, escape goes back (asking first when changes are not saved)."""

    DEFAULT_CSS = """
    #health-title {
        height: auto;
        padding: 0 1;
    }
    #health-table {
        height: 1fr;
        min-height: 4;
    }
    #health-question {
        height: auto;
        max-height: 4;
        padding: 0 1;
    }
    #health-blocked {
        height: auto;
        max-height: 7;
        padding: 0 1;
        color: $text-muted;
    }
    #health-status {
        height: auto;
        max-height: 2;
        padding: 0 1;
        text-style: bold;
        color: $accent;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("ctrl+s,s", "save", "Save", key_display="^s"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, config_dir: Path | None, *, needed: bool = False) -> None:
        """``needed``: opened because a session on real devices needs every question answered
        (the title says so; the session goes on once they are saved and the screen closed)."""
        super().__init__()
        self.config_dir = config_dir
        self.needed = needed
        self.stored = HealthAnswers(health_path(config_dir))
        self.changes: dict[str, bool] = {}  # condition id -> the answer given, not yet saved
        self.problem: str | None = None  # why the stored answers could not be read

    def compose(self) -> ComposeResult:
        title = Text("Health questions. ", style="bold")
        if self.needed:
            title.append(NEEDED_TEXT, style="bold")
        else:
            title.append(NOT_A_MEDICAL_DEVICE)
        yield Static(title, id="health-title")
        yield DataTable(id="health-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="health-question")
        yield Static(id="health-blocked")
        yield Static(id="health-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("condition", key="condition")
        table.add_column("answer", key="answer")
        table.add_column("a yes blocks", key="blocks")
        try:
            self.stored = load_answers(self.config_dir)
        except RelieveError as exc:
            self.problem = str(exc)
        for cond in CONDITIONS:
            table.add_row(
                Text(cond.label), self._answer_cell(cond.id), Text(yes_blocks(cond)), key=cond.id
            )
        table.focus()
        self._show_question(0)
        self._refresh()
        self._say(self.problem or self._where())

    # --- what the screen shows ---------------------------------------------------------------

    def answer(self, condition_id: str) -> bool | None:
        """The answer shown for a question: the one just given, else the stored one."""
        if condition_id in self.changes:
            return self.changes[condition_id]
        return self.stored.flags.get(condition_id)

    @property
    def flags(self) -> dict[str, bool]:
        """Every answer as shown (saved or not), condition id -> yes."""
        return {**self.stored.flags, **self.changes}

    def _answer_cell(self, condition_id: str) -> Text:
        answer = self.answer(condition_id)
        if answer is None:
            return Text("unreadable" if self.problem else "not answered", style="dim")
        text = Text("yes" if answer else "no", style="bold" if answer else "")
        if condition_id in self.changes:
            text.append(f" {UNSAVED}", style="bold")
        return text

    def _show_question(self, row: int) -> None:
        cond = CONDITIONS[row]
        text = f"({row + 1}/{len(CONDITIONS)}) {cond.question}\n{_if_yes(cond)}"
        self.query_one("#health-question", Static).update(Text(text))

    def _refresh(self) -> None:
        lines = ["What the answers block now:", *("  " + s for s in blocked_lines(self.flags))]
        self.query_one("#health-blocked", Static).update(Text("\n".join(lines)))

    def _where(self) -> str:
        stored = self.stored
        if stored.answered:
            return f"Every question is answered; the answers are kept in {stored.path}."
        done = len(CONDITIONS) - len(stored.unanswered)
        return (
            f"{done} of {len(CONDITIONS)} questions answered; sessions on real devices need "
            "them all: y or n answers the selected one."
        )

    def _say(self, text: str) -> None:
        self.query_one("#health-status", Static).update(Text(text))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_question(event.cursor_row)

    # --- keys --------------------------------------------------------------------------------

    def action_answer(self, yes: bool) -> None:
        """Answer the selected question, then go on to the next one."""
        table = self.query_one(DataTable)
        row = table.cursor_row
        cond = CONDITIONS[row]
        if self.stored.flags.get(cond.id) == yes:
            self.changes.pop(cond.id, None)  # back to what is stored: nothing to save
        else:
            self.changes[cond.id] = yes
        table.update_cell(cond.id, "answer", self._answer_cell(cond.id))
        self._refresh()
        if self.changes:
            count = len(self.changes)
            self._say(
                f"{count} answer{'s' if count != 1 else ''} not saved yet ({UNSAVED}): "
                "ctrl+s saves them."
            )
        else:
            self._say(self._where())
        if row + 1 < len(CONDITIONS):
            table.move_cursor(row=row + 1)

    def action_save(self) -> None:
        if not self.changes:
            self._say("Nothing to save: no answer was changed.")
            return
        try:
            self.stored = save_answers(self.config_dir, self.changes)
        except RelieveError as exc:
            self._say(str(exc))
            return
        count = len(self.changes)
        self.changes = {}
        self.problem = None
        table = self.query_one(DataTable)
        for cond in CONDITIONS:
            table.update_cell(cond.id, "answer", self._answer_cell(cond.id))
        self._refresh()
        saved = f"Saved {count} answer{'s' if count != 1 else ''} in {self.stored.path}."
        missing = len(self.stored.unanswered)
        if missing:
            saved += (
                f" {missing} question{'s' if missing != 1 else ''} still without an answer; "
                "sessions on real devices need them all."
            )
        self._say(saved)

    def action_back(self) -> None:
        if not self.changes:
            self.dismiss(None)
            return
        count = len(self.changes)
        changed = f"{count} changed answer{'s' if count != 1 else ''}"

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)
            else:
                self._say(f"{changed.capitalize()} not saved yet: ctrl+s saves them.")

        self.app.push_screen(
            ConfirmScreen(
                f"You have {changed} that you did not save. Leave and discard them?",
                title="Not saved",
            ),
            answered,
        )
