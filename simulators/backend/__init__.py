"""The bleak backend that reaches simulated BLE devices on a bumble virtual radio.

Driver code stays plain bleak::

    from bleak import BleakClient, BleakScanner
    from simulators import backend

    backend.use_link(link)                      # or backend.use_transport("unix:/run/relieve.sock")
    device = await BleakScanner.find_device_by_name("Pad", backend=backend.SimScanner)
    async with BleakClient(device, backend=backend.SimClient) as client:
        ...
    await backend.reset()                       # between tests

* :func:`use_link` — this process's simulated adapter joins an existing bumble ``LocalLink``
  (in-process worlds, including peripherals not written by us). The adapter is created on
  first use, in the running event loop.
* :func:`use_transport` — the adapter is a bumble host over an HCI transport
  (``unix:/path``, ``tcp-client:host:port``) to a simulator server, which gives it its own
  virtual controller (see :mod:`simulators.hci_server`).
* :func:`reset` — drop the adapter (its links end, its transport closes) and forget the
  selection, so the next test starts clean.
* :class:`SimAdapter` — an explicit adapter (``await SimAdapter.on_link(link)`` or
  ``await SimAdapter.over_transport(spec)``), passed as ``sim_adapter=`` to
  ``BleakClient`` / ``BleakScanner`` to model several machines in one process.

docs/simulation-backend.md explains conventions and limits.
"""

from __future__ import annotations

from simulators.backend.adapter import (
    DEVICE_LOOKUP_TIMEOUT_S,
    NoSimulatedRadioError,
    SimAdapter,
    SimDeviceDetails,
    SimulatorUnreachableError,
)
from simulators.backend.client import ATT_MTU_REQUEST, SimClient
from simulators.backend.scanner import SimScanner
from simulators.backend.selection import default_adapter, reset, use_link, use_transport

__all__ = [
    "ATT_MTU_REQUEST",
    "DEVICE_LOOKUP_TIMEOUT_S",
    "NoSimulatedRadioError",
    "SimAdapter",
    "SimClient",
    "SimDeviceDetails",
    "SimScanner",
    "SimulatorUnreachableError",
    "default_adapter",
    "reset",
    "use_link",
    "use_transport",
]
