"""The history screen: today's minutes, every session, and export to CSV or JSON.

What it shows and writes comes from the same functions as ``relieve history``
(:mod:`controller.ledger.export`), so an exported file holds exactly what ``relieve history
--csv`` / ``--json`` prints for the same history.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Static

from controller.ledger import Ledger, SessionRecord, allowances
from controller.ledger.export import (
    injury_line,
    length_text,
    session_flags,
    short_minutes,
    today_summary,
    write_csv,
    write_json,
)
from profiles.errors import RelieveError
from profiles.limits import HARD
from tui.screens.confirm import ConfirmScreen

__all__ = ["ExportScreen", "HistoryScreen", "export_history"]

Format = Literal["csv", "json"]
_FORMAT_NAME: dict[Format, str] = {"csv": "CSV", "json": "JSON"}
_KEY: dict[Format, str] = {"csv": "x", "json": "j"}
COLUMNS = ("start", "outcome", "length", "heat", "cold", "massage", "profile", "notes")


def _why(exc: OSError, path: Path) -> str:
    """What went wrong writing ``path``, as a person reads it."""
    if isinstance(exc, FileNotFoundError):
        return f"the directory {path.parent} does not exist"
    if isinstance(exc, PermissionError):
        return f"you may not write in {path.parent}"
    if isinstance(exc, IsADirectoryError):
        return "that is a directory"
    if isinstance(exc, NotADirectoryError):
        return f"{path.parent} is not a directory"
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == errno.EROFS:
        return "the disk is read-only"
    return exc.strerror or type(exc).__name__


def _write_file(path: Path, text: str) -> None:
    """``text`` in ``path`` (readable by you only: it is health data), written to a temporary
    file beside it and renamed over it, so a failure never leaves half a file."""
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
        raise


def export_history(ledger: Ledger, path: Path, kind: Format) -> str:
    """Write every session of ``ledger`` to ``path`` as ``relieve history --csv`` / ``--json``
    prints it; one sentence saying where, or why nothing was written."""
    try:
        sessions = ledger.sessions()
    except RelieveError as exc:
        return str(exc)  # the history cannot be read: one sentence already
    out = io.StringIO()
    if kind == "csv":
        write_csv(sessions, out, ledger.tz)
    else:
        write_json(sessions, out, ledger.tz)
    if path.is_dir():
        return f"Nothing was exported: {path} is a directory; press {_KEY[kind]} and give a file."
    try:
        _write_file(path, out.getvalue())
    except OSError as exc:
        return (
            f"Nothing was exported to {path}: {_why(exc, path)}; press {_KEY[kind]} and choose "
            "another file."
        )
    count = len(sessions)
    return f"Exported {count} session{'' if count == 1 else 's'} to {path}."


def _here() -> Path:
    """The current directory (the home directory when it was removed under us)."""
    try:
        return Path.cwd()
    except OSError:
        return Path.home()


def _cell(text: str, style: str = "") -> Text:
    return Text(text, style=style)  # plain text: a profile name is never markup


def _exposure(seconds: float) -> Text:
    return _cell(short_minutes(seconds)) if seconds > 0 else _cell("-", "dim")


def _notes(session: SessionRecord) -> str:
    notes = session_flags(session)
    notes += [f"alarm {a.limit_id}" for a in session.alarms]
    return "; ".join(notes)


class ExportScreen(ModalScreen[Path | None]):
    """Asks where to write the export: Enter writes, Escape cancels."""

    DEFAULT_CSS = """
    ExportScreen {
        align: center middle;
    }
    #export-box {
        width: 76;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    #export-title {
        text-style: bold;
    }
    #export-hint {
        color: $text-muted;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, kind: Format, default: str, *, directory: Path) -> None:
        super().__init__()
        self.kind = kind
        self.default = default
        self.directory = directory

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box"):
            yield Static(
                Text(f"Export the whole history as {_FORMAT_NAME[self.kind]}"), id="export-title"
            )
            yield Static(Text(f"File (a name alone goes in {self.directory}):"))
            yield Input(self.default, id="export-path")
            yield Static(Text("Enter writes the file; escape cancels."), id="export-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.query_one("#export-hint", Static).update(
                Text("Type a file name, or press escape to cancel.")
            )
            return
        path = Path(text).expanduser()
        self.dismiss(path if path.is_absolute() else self.directory / path)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HistoryScreen(Screen[None]):
    """Today's minutes per modality and area, the sessions newest first (the highlighted one in
    full below the table); ``x`` / ``j`` export CSV / JSON, ``r`` reloads, escape goes back."""

    DEFAULT_CSS = """
    #history-title {
        text-style: bold;
        padding: 0 1;
    }
    #history-today {
        height: auto;
        max-height: 7;
        padding: 0 1;
        overflow-y: auto;
    }
    #history-table {
        height: 1fr;
        min-height: 4;
    }
    #history-detail {
        height: auto;
        max-height: 3;
        padding: 0 1;
        color: $text-muted;
    }
    #history-status {
        height: auto;
        max-height: 2;
        padding: 0 1;
        text-style: bold;
        color: $accent;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "export('csv')", "Export CSV"),
        Binding("j", "export('json')", "Export JSON"),
        Binding("r", "reload", "Reload"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger
        self.sessions: list[SessionRecord] = []
        self._by_id: dict[str, SessionRecord] = {}

    def compose(self) -> ComposeResult:
        title = "History"
        if self.ledger.simulated:
            title += " of simulated devices: these minutes never count against real exposure"
        yield Static(Text(title), id="history-title")
        yield Static(id="history-today")
        table: DataTable[Text] = DataTable(
            id="history-table", cursor_type="row", zebra_stripes=True
        )
        yield table
        yield Static(id="history-detail")
        yield Static(id="history-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.load()
        table.focus()

    # --- reading -----------------------------------------------------------------------------

    def load(self) -> bool:
        """Read the history again; whether it could be read (else the status says why)."""
        ledger, tz = self.ledger, self.ledger.tz
        try:
            now = ledger.now()
            sessions = ledger.sessions()
            exposure = ledger.exposure(allowances.local_day(now, tz))
            injuries = ledger.injuries(now - timedelta(seconds=HARD.acute_window_max_s))
        except RelieveError as exc:
            self.status(str(exc))
            return False
        lines = today_summary(exposure, now, tz).splitlines()
        lines += [injury_line(i.area, i.at, now, tz) for i in injuries]
        self.query_one("#history-today", Static).update(Text("\n".join(lines)))
        self.sessions = sessions
        self._fill(sessions)
        return True

    def _fill(self, sessions: list[SessionRecord]) -> None:
        table: DataTable[Text] = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        self._by_id = {}
        tz = self.ledger.tz
        for session in sessions:
            seconds = allowances.delivered_seconds(session)
            length = "running" if session.duration_s is None else length_text(session.duration_s)
            outcome_style = "bold" if session.outcome in ("aborted", "interrupted") else ""
            key = str(session.id)
            self._by_id[key] = session
            table.add_row(
                _cell(f"{session.started_at.astimezone(tz):%Y-%m-%d %H:%M}"),
                _cell(session.outcome, outcome_style),
                _cell(length),
                _exposure(seconds["heat"]),
                _exposure(seconds["cold"]),
                _exposure(seconds["massage"]),
                _cell(session.profile),
                _cell(_notes(session)),
                key=key,
            )
        if sessions:
            table.move_cursor(row=min(row, len(sessions) - 1))
        self._detail(sessions[table.cursor_row] if sessions else None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(self._by_id.get(str(event.row_key.value)))

    def _detail(self, session: SessionRecord | None) -> None:
        """The highlighted session in full (the table may be wider than the screen)."""
        detail = self.query_one("#history-detail", Static)
        if session is None:
            detail.update(Text("No sessions recorded yet."))
            return
        tz = self.ledger.tz
        start = session.started_at.astimezone(tz)
        text = (
            f"Session {session.id}: {session.profile} ({session.kind}), {start:%a %Y-%m-%d %H:%M}"
        )
        if session.ended_at is not None:
            text += f" to {session.ended_at.astimezone(tz):%H:%M}"
        text += f", {session.outcome}"
        flags = session_flags(session)
        if flags:
            text += f" ({'; '.join(flags)})"
        text += "."
        for alarm in session.alarms:
            at = alarm.at.astimezone(tz)
            text += f" Alarm {alarm.limit_id} ({alarm.priority}) at {at:%H:%M}: {alarm.message}"
        detail.update(Text(text))

    def status(self, text: str) -> None:
        """One sentence below the table: what an export or a reload did."""
        self.query_one("#history-status", Static).update(Text(text))

    # --- keys --------------------------------------------------------------------------------

    def action_reload(self) -> None:
        if self.load():
            count = len(self.sessions)
            self.status(f"Reloaded: {count} session{'' if count == 1 else 's'}.")

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_export(self, kind: Format) -> None:
        day = allowances.local_day(self.ledger.now(), self.ledger.tz)
        default = f"relieve-history-{day:%Y-%m-%d}.{kind}"

        def chosen(path: Path | None) -> None:
            if path is None:
                self.status("Nothing was exported.")
            elif path.exists() and not path.is_dir():
                self._confirm_replace(path, kind)
            else:
                self.status(export_history(self.ledger, path, kind))

        self.app.push_screen(ExportScreen(kind, default, directory=_here()), chosen)

    def _confirm_replace(self, path: Path, kind: Format) -> None:
        def answered(replace: bool | None) -> None:
            if replace:
                self.status(export_history(self.ledger, path, kind))
            else:
                self.status(f"Nothing was exported: {path} was left as it is.")

        self.app.push_screen(
            ConfirmScreen(f"{path} already exists. Replace it?", title="Export"), answered
        )
