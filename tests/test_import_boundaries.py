"""The layers of docs/architecture.md, enforced: who may import textual, bleak and bumble."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("controller", "drivers", "profiles", "tui", "simulators")

# What importing a package's modules must never load, even indirectly.
FORBIDDEN = {
    "controller": ("textual", "bumble"),
    "drivers": ("textual", "bumble", "controller", "simulators", "tui"),
    "profiles": ("textual", "bumble", "bleak", "asyncio"),
    "simulators": ("textual",),
    "tui": ("bumble",),
}
# Who may write `import bleak` (docs/architecture.md): the drivers, and the simulators' bleak
# backend. The controller and the TUI reach bleak only through the drivers.
BLEAK_IMPORTERS = ("drivers", "simulators")


def modules_of(package: str) -> list[str]:
    found = pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")
    # a ``__main__`` runs its program when imported: it is only ever run (python -m)
    return [package, *(info.name for info in found if not info.name.endswith(".__main__"))]


def imported_roots(*modules: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after importing ``modules`` in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return set(json.loads(result.stdout))


# The controller reaches simulators (and through them bumble) only to select the simulated
# backend at start-up (docs/architecture.md); these modules are that seam.
ALLOWED_SIMULATOR_ENTRY: set[str] = {"controller.session.simulation"}


@pytest.mark.parametrize("package", PACKAGES)
def test_layers_do_not_import_what_they_must_not(package: str) -> None:
    # Importing every module of the package at once pulls in the union of their imports: if the
    # union has none of the forbidden packages, no single module has. Only on a failure is each
    # module imported alone, to name the culprit.
    modules = [m for m in modules_of(package) if m not in ALLOWED_SIMULATOR_ENTRY]
    forbidden = set(FORBIDDEN[package])
    if not forbidden & imported_roots(*modules):
        return
    culprits = {m: sorted(forbidden & imported_roots(m)) for m in modules}
    assert not {m: bad for m, bad in culprits.items() if bad}


def _direct_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", [p for p in PACKAGES if p not in BLEAK_IMPORTERS])
def test_only_drivers_and_simulators_import_bleak(package: str) -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / package).rglob("*.py"))
        if {"bleak", "bleak_retry_connector"} & _direct_imports(path)
    ]
    assert offenders == []


def test_profiles_is_pure() -> None:
    roots = imported_roots("profiles.compiler")
    assert not roots & {"asyncio", "sqlite3", "bleak", "bumble", "textual"}


def test_package_init_is_light() -> None:
    for package in PACKAGES:
        roots = imported_roots(package)
        assert not roots & {"bleak", "bumble", "textual", "pydantic"}, package


# Inner layers: the session and the ledger never reach up into a front end.
INNER = ("controller.session", "controller.ledger")
FRONT_ENDS = ("controller.cli", "tui")
# What a front end never imports: it runs sessions only through controller.session.service.
SESSION_INTERNALS = (
    "controller.session.runner",
    "controller.session.supervisor",
    "controller.session.binding",
    "controller.ledger.recorder",
    "controller.ledger.writer",
)


def imported_modules(*modules: str) -> set[str]:
    """Every module in ``sys.modules`` after importing ``modules`` in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("package", INNER)
def test_the_session_and_the_ledger_never_import_a_front_end(package: str) -> None:
    root, _, sub = package.partition(".")
    modules = [m for m in modules_of(root) if m == package or m.startswith(f"{package}.")]
    assert len(modules) > 1, modules
    loaded = imported_modules(*modules)
    assert not {m for m in loaded if m.startswith(FRONT_ENDS)}, sub


def _imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_front_ends_reach_sessions_only_through_the_service() -> None:
    offenders = {}
    for directory in (ROOT / "controller" / "cli", ROOT / "tui"):
        for path in sorted(directory.rglob("*.py")):
            bad = sorted(
                name
                for name in _imported_names(path)
                if any(name == m or name.startswith(f"{m}.") for m in SESSION_INTERNALS)
            )
            if bad:
                offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}
