"""Ending background tasks within a bound, without swallowing the caller's own cancellation.

``task.cancel()`` followed by ``with suppress(CancelledError): await task`` has two faults: it
waits without limit for a task whose cancellation was lost somewhere below (a library that
swallows it), and it swallows a ``CancelledError`` meant for the *caller* too, so the caller runs
on after being cancelled. :func:`cancel_and_wait` waits through :func:`asyncio.wait`, which
never raises the awaited tasks' exceptions, never cancels them when the caller is cancelled,
and lets the caller's own ``CancelledError`` through; after ``within_s`` it gives up and returns
the tasks still running, which the owner must make harmless (a stop flag they check).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], *, within_s: float
) -> set[asyncio.Task[Any]]:
    """Cancel ``tasks``, wait up to ``within_s`` real seconds for them, return those still running.

    The calling task is never cancelled or waited for (a task stopping itself). If the caller is
    cancelled while waiting, ``CancelledError`` propagates at once. The tasks' own outcomes are
    left to whoever watches them (a done callback).
    """
    current = asyncio.current_task()
    pending = {task for task in tasks if task is not current and not task.done()}
    for task in pending:
        task.cancel()
    if not pending:
        return set()
    _, still_running = await asyncio.wait(pending, timeout=within_s)
    return still_running
