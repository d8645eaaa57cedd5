"""``python -m controller.cli``: the ``relieve`` command."""

from __future__ import annotations

import sys

from controller.cli.commands import main

sys.exit(main())
