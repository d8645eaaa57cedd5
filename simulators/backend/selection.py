"""The process-wide choice of virtual radio, and the default adapter on it.

Behind ``use_link`` / ``use_transport`` / ``reset`` in :mod:`simulators.backend`: the default
adapter is created on first use, in the running event loop, on the selected link or transport,
and replaced when the selection changes or its loop has ended.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from simulators.backend.adapter import NoSimulatedRadioError, SimAdapter

if TYPE_CHECKING:
    from bumble.link import LocalLink

__all__ = ["default_adapter", "reset", "use_link", "use_transport"]


class _Selection:
    def __init__(self) -> None:
        self.link: LocalLink | None = None
        self.transport_spec: str | None = None
        self.adapter: SimAdapter | None = None
        self.lock: asyncio.Lock | None = None
        self.lock_loop: asyncio.AbstractEventLoop | None = None


_selection = _Selection()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _drop_default_adapter() -> None:
    adapter, _selection.adapter = _selection.adapter, None
    if adapter is None:
        return
    if adapter.loop is _running_loop():
        adapter._close_now()
    else:
        adapter.abandon()


def use_link(link: LocalLink) -> None:
    """Make this process's simulated adapter join ``link`` (created on first use)."""
    _drop_default_adapter()
    _selection.link = link
    _selection.transport_spec = None


def use_transport(spec: str) -> None:
    """Make this process's simulated adapter reach a simulator server over transport ``spec``."""
    if ":" not in spec:
        raise ValueError(
            f"{spec!r} is not a bumble transport string; use e.g. 'unix:/path/to/socket' "
            "or 'tcp-client:127.0.0.1:9100'."
        )
    _drop_default_adapter()
    _selection.link = None
    _selection.transport_spec = spec


async def reset() -> None:
    """Drop the adapter (its links end, its transport closes) and forget the selection."""
    adapter, _selection.adapter = _selection.adapter, None
    _selection.link = None
    _selection.transport_spec = None
    if adapter is None:
        return
    if adapter.loop is asyncio.get_running_loop():
        await adapter.close()
    else:
        adapter.abandon()


async def default_adapter() -> SimAdapter:
    """This process's adapter on the selected link or transport, created on first use."""
    loop = asyncio.get_running_loop()
    if _selection.lock is None or _selection.lock_loop is not loop:
        _selection.lock = asyncio.Lock()
        _selection.lock_loop = loop
    async with _selection.lock:
        adapter = _selection.adapter
        if adapter is not None and adapter.loop is loop and adapter.is_open:
            return adapter
        _drop_default_adapter()
        if _selection.link is not None:
            adapter = await SimAdapter.on_link(_selection.link)
        elif _selection.transport_spec is not None:
            adapter = await SimAdapter.over_transport(_selection.transport_spec)
        else:
            raise NoSimulatedRadioError
        _selection.adapter = adapter
        return adapter
