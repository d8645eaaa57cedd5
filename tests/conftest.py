"""Shared fixtures. Helpers for one area live in that area's test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.core.clock import VirtualClock
from simulators.devices.central import BumbleCentral
from simulators.world import SimWorld


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty relieve configuration directory, used instead of the real user's."""
    path = tmp_path / "config"
    (path / "profiles").mkdir(parents=True)
    monkeypatch.setenv("RELIEVE_CONFIG_DIR", str(path))
    return path


# Simulator tests: a virtual clock, a world of every simulated device on it, and a plain bumble
# central on the same link. A test module may override ``world`` with a smaller one.
@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def world(clock: VirtualClock) -> AsyncIterator[SimWorld]:
    async with SimWorld(clock=clock) as world:
        yield world


@pytest.fixture
async def central(world: SimWorld) -> AsyncIterator[BumbleCentral]:
    async with BumbleCentral(world.link) as central:
        yield central
