"""The device catalog: stable identities, importable without bumble, matching the docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simulators.catalog import (
    CATALOG,
    COMMON_FAULTS,
    DeviceFamily,
    FaultKind,
    UnknownDeviceError,
    device_keys,
    spec_by_address,
    spec_for,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "simulators.md"

# The table the brief fixes (key, advertised name, address); the heating mat's name is ours.
EXPECTED = [
    ("contrast-pad", "relieve Contrast Pad", "C0:DE:00:00:00:01"),
    ("heat-pad", "relieve Heat Pad", "C0:DE:00:00:00:02"),
    ("cold-pad", "relieve Cold Pad", "C0:DE:00:00:00:03"),
    ("massage-gun", "relieve Massage Gun", "C0:DE:00:00:00:04"),
    ("theragun", "Pro", "C0:DE:00:00:00:05"),
    ("heating-mat", "Heating Mat", "C0:DE:00:00:00:06"),
    ("skin-probe", "relieve Skin Probe", "C0:DE:00:00:00:07"),
]


def test_catalog_has_the_documented_identities() -> None:
    assert [(s.key, s.name, s.address) for s in CATALOG] == EXPECTED
    assert device_keys() == tuple(key for key, _, _ in EXPECTED)


def test_addresses_are_static_random_and_unique() -> None:
    addresses = [spec.address for spec in CATALOG]
    assert len(set(addresses)) == len(addresses)
    for address in addresses:
        first = int(address.split(":")[0], 16)
        assert first & 0xC0 == 0xC0, f"{address} is not a static random address"


def test_lookups_by_key_and_address() -> None:
    assert spec_for("theragun").family is DeviceFamily.THERAGUN
    assert spec_by_address("c0:de:00:00:00:07").key == "skin-probe"
    with pytest.raises(UnknownDeviceError, match="use one of: contrast-pad"):
        spec_for("kettle")
    with pytest.raises(UnknownDeviceError, match="relieve sim list"):
        spec_by_address("00:11:22:33:44:55")


def test_thermal_capabilities_and_faults_follow_the_hardware() -> None:
    contrast, heat, cold = spec_for("contrast-pad"), spec_for("heat-pad"), spec_for("cold-pad")
    assert (contrast.can_heat, contrast.can_cool) == (True, True)
    assert (heat.can_heat, heat.can_cool) == (True, False)
    assert (cold.can_heat, cold.can_cool) == (False, True)
    assert all(spec.faults >= COMMON_FAULTS for spec in CATALOG)
    assert not spec_for("massage-gun").supports(FaultKind.SENSOR_NAN)
    assert spec_for("skin-probe").supports(FaultKind.SENSOR_DRIFT)
    assert not spec_for("skin-probe").supports(FaultKind.STUCK_HEATER)
    assert [s.key for s in CATALOG if s.has_lease] == [
        "contrast-pad",
        "heat-pad",
        "cold-pad",
        "massage-gun",
    ]


def test_catalog_faults_and_physics_import_without_bumble() -> None:
    code = (
        "import sys\n"
        "import simulators.catalog, simulators.faults, simulators.physics\n"
        "import simulators.devices, simulators.devices.state\n"
        "import simulators.devices.thermal_core, simulators.devices.percussion_core\n"
        "import simulators.devices.mat_core\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('bumble', 'bleak'))\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == ""


def test_docs_table_matches_the_catalog() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for spec in CATALOG:
        row = f"| `{spec.key}` | {spec.name} | {spec.address} |"
        assert row in text, f"docs/simulators.md lacks the row for {spec.key}"
    for kind in FaultKind:
        assert f"| `{kind}` |" in text, f"docs/simulators.md does not document {kind}"
