"""The exposure ledger (S3): every session, the phases it delivered, injuries, allowances, and
the commands the controller was given.

One package, by what each module holds:

* :mod:`~controller.ledger.store` -- :class:`Ledger`: opening, reading, reserving a session
  (allowances checked and the session recorded in one step), recording commands, recovery after
  a crash;
* :mod:`~controller.ledger.records` -- the records, tables and rows;
* :mod:`~controller.ledger.recorder` -- the recorder of one running session and its lock file;
* :mod:`~controller.ledger.writer` -- writing a running session's records off the event loop;
* :mod:`~controller.ledger.allowances` -- the daily allowances (pure).

Import the names below from here. The package never imports the CLI or a front end.
"""

from __future__ import annotations

from controller.ledger.store import (
    DATA_DIR_ENV,
    SCHEMA_VERSION,
    AlarmRecord,
    CommandRecord,
    DeviceInfo,
    InjuryRecord,
    Ledger,
    LedgerError,
    Outcome,
    Owner,
    PhaseRecord,
    PlannedPhase,
    Priority,
    SessionRecord,
    SessionRecorder,
    default_data_dir,
    planned_phases,
)

__all__ = [
    "DATA_DIR_ENV",
    "SCHEMA_VERSION",
    "AlarmRecord",
    "CommandRecord",
    "DeviceInfo",
    "InjuryRecord",
    "Ledger",
    "LedgerError",
    "Outcome",
    "Owner",
    "PhaseRecord",
    "PlannedPhase",
    "Priority",
    "SessionRecord",
    "SessionRecorder",
    "default_data_dir",
    "planned_phases",
]
