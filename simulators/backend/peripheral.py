"""A plain bumble peripheral on a virtual link: the smallest GATT server tests and benchmarks need.

This is what any third-party bumble peripheral does to join the simulated radio (a stock bumble
controller on the link, a host, a device, advertising); simulated products build richer ones.
With ``fast_path`` it is wired like the simulated products instead (:class:`SimHost` on a
:class:`SimController`: L2CAP frames without HCI ACL packets), so tests and benchmarks can
compare the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from bumble import core, gatt, hci
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from simulators.radio import SimController, SimHost

if TYPE_CHECKING:
    from bumble.link import LocalLink

__all__ = ["advertising_data_for", "start_peripheral"]

# Advertising interval of the helper's peripherals, in ms: frequent enough that a scan hears
# each one many times a second, rare enough not to flood a DelayedLink.
ADVERTISING_INTERVAL_MS = 100

# LE General Discoverable, BR/EDR not supported.
FLAGS_LE_GENERAL_DISCOVERABLE = 0x06


def advertising_data_for(name: str, service_uuids: Iterable[core.UUID] = ()) -> bytes:
    """Advertising data with flags, the complete local name and the given service UUIDs."""
    structures: list[tuple[int, bytes]] = [
        (core.AdvertisingData.FLAGS, bytes([FLAGS_LE_GENERAL_DISCOVERABLE])),
        (core.AdvertisingData.COMPLETE_LOCAL_NAME, name.encode("utf-8")),
    ]
    uuids16 = [u for u in service_uuids if len(u.uuid_bytes) == 2]
    uuids128 = [u for u in service_uuids if len(u.uuid_bytes) == 16]
    if uuids16:
        structures.append(
            (
                core.AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                b"".join(u.uuid_bytes for u in uuids16),
            )
        )
    if uuids128:
        structures.append(
            (
                core.AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                b"".join(u.uuid_bytes for u in uuids128),
            )
        )
    return bytes(core.AdvertisingData(structures))


async def start_peripheral(
    link: LocalLink,
    *,
    name: str,
    address: str,
    services: Iterable[gatt.Service] = (),
    advertising_data: bytes | None = None,
    advertising_interval_ms: float = ADVERTISING_INTERVAL_MS,
    max_mtu: int | None = None,
    fast_path: bool = False,
) -> Device:
    """Power on a bumble peripheral on ``link`` and advertise it (again after each disconnect).

    ``address`` is a random static address such as ``"F0:00:00:00:00:01"``. Without
    ``advertising_data`` the name and the services' UUIDs are advertised. ``fast_path`` wires
    it as our simulated devices are (see :class:`simulators.radio.SimHost`).
    """
    services = list(services)
    host: Host
    if fast_path:
        sim_controller = SimController(f"peripheral {name}", link=link)
        host = SimHost(sim_controller)
    else:
        controller = Controller(f"peripheral {name}", link=link)
        host = Host(controller, AsyncPipeSink(controller))
    device = Device(name=name, address=hci.Address(address), host=host)
    device.add_services(services)
    if max_mtu is not None:
        device.gatt_server.max_mtu = max_mtu
    await device.power_on()
    await device.start_advertising(
        advertising_data=advertising_data
        if advertising_data is not None
        else advertising_data_for(name, [s.uuid for s in services]),
        auto_restart=True,
        advertising_interval_min=advertising_interval_ms,
        advertising_interval_max=advertising_interval_ms,
    )
    return device
