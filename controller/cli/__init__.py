"""The ``relieve`` command: argparse in :mod:`~controller.cli.commands`, one module per command
(``run``, ``device``, ``history``, ``profiles``), the console view and the line-command reader.

A front end: it reaches sessions only through :mod:`controller.session`.
"""

from __future__ import annotations

from controller.cli.commands import main

__all__ = ["main"]
