"""Shared fixtures. Helpers for one area live in that area's test modules."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty relieve configuration directory, used instead of the real user's."""
    path = tmp_path / "config"
    (path / "profiles").mkdir(parents=True)
    monkeypatch.setenv("RELIEVE_CONFIG_DIR", str(path))
    return path
