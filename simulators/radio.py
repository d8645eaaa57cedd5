"""The virtual radio: bumble's LocalLink and Controller, with the fixes a simulator needs.

* :class:`DelayedLink` adds a fixed per-packet latency to bumble's zero-latency ``LocalLink``
  (7.5 ms models the BLE minimum connection interval), keeping packets in order.
* :class:`SimHost` and :class:`SimController` together carry L2CAP frames between an in-process
  host and its controller as bytes objects, instead of as HCI ACL data packets (see
  :class:`SimHost`): the same frames, hops and order, at a fraction of the cost.
* :class:`SimController` is a bumble ``Controller`` that behaves like a good real one where the
  stock controller does not (bumble 0.0.236): LE Create Connection Cancel really cancels and
  reports the failed connection; a scan that starts hears every advertiser on the link at once;
  a connection to a device that is advertising right now is made at once instead of at its
  next advertising event; HCI Reset drops connections, scanning and advertising.
* :func:`detach_controller` takes a controller off the air the way a radio that is switched off
  disappears: every peer sees its links end (supervision time-out), and the controller leaves
  the link so it no longer receives anything.

docs/simulation-backend.md has the measurements and pitfalls behind these choices.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Callable

from bumble import controller as bumble_controller
from bumble import core, hci, ll
from bumble.host import Host
from bumble.l2cap import L2CAP_PDU
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

__all__ = ["DelayedLink", "SimController", "SimHost", "detach_controller"]

logger = logging.getLogger(__name__)

# The BLE minimum connection interval (7.5 ms): a realistic per-packet latency for benchmarks.
BLE_MIN_CONNECTION_INTERVAL_S = 0.0075

# Reason a peer sees when a controller vanishes without a goodbye (switched off, process
# killed, socket closed): the link supervision timer runs out on the peer's side.
VANISHED_REASON = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR


class DelayedLink(LocalLink):
    """A ``LocalLink`` that delivers each packet ``latency_s`` seconds (real time) after sending.

    Packets are delivered in the order they were sent, across all controllers, so a connection
    indication always arrives before the first data packet on that connection. A latency of
    0 behaves exactly like ``LocalLink``.
    """

    def __init__(self, latency_s: float = 0.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if latency_s < 0:
            raise ValueError(f"link latency must be zero or positive, not {latency_s} s")
        self.latency_s = float(latency_s)
        self._queue: collections.deque[tuple[float, Callable[[], None]]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def _deliver_later(self, callback: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        if self.latency_s == 0:
            loop.call_soon(callback)
            return
        self._queue.append((loop.time() + self.latency_s, callback))
        if self._timer is None:
            self._timer = loop.call_at(self._queue[0][0], self._deliver_due)

    def _deliver_due(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        now = loop.time()
        while self._queue and self._queue[0][0] <= now:
            _, callback = self._queue.popleft()
            try:
                callback()
            except Exception:
                logger.exception("a controller failed to take a packet from the delayed link")
        if self._queue:
            self._timer = loop.call_at(self._queue[0][0], self._deliver_due)

    # The three LE senders of LocalLink, with call_soon replaced by the delayed, ordered queue.
    def send_acl_data(
        self,
        sender_controller: bumble_controller.Controller,
        destination_address: hci.Address,
        transport: core.PhysicalTransport,
        data: bytes,
    ) -> None:
        if transport != core.PhysicalTransport.LE:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        destination = self.find_le_controller(destination_address)
        if destination is None:
            return
        source_address = sender_controller.random_address
        self._deliver_later(lambda: destination.on_link_acl_data(source_address, transport, data))

    def send_advertising_pdu(
        self, sender_controller: bumble_controller.Controller, packet: ll.AdvertisingPdu
    ) -> None:
        for receiver in list(self.controllers):
            if receiver is not sender_controller:
                self._deliver_later(functools.partial(receiver.on_ll_advertising_pdu, packet))

    def send_ll_control_pdu(
        self, sender_address: hci.Address, receiver_address: hci.Address, packet: ll.ControlPdu
    ) -> None:
        receiver = self.find_le_controller(receiver_address)
        if receiver is None:
            logger.debug("LL control PDU to %s dropped: nobody on the link", receiver_address)
            return
        self._deliver_later(lambda: receiver.on_ll_control_pdu(sender_address, packet))


def _advertising_pdus(
    controller: bumble_controller.Controller,
) -> list[ll.AdvInd | ll.AdvExtInd]:
    """What ``controller`` is putting on the air right now (connectable advertising only)."""
    pdus: list[ll.AdvInd | ll.AdvExtInd] = []
    legacy = controller.le_legacy_advertiser
    if (
        legacy.enabled
        and legacy.advertising_type
        == hci.HCI_LE_Set_Advertising_Parameters_Command.AdvertisingType.ADV_IND
    ):
        pdus.append(ll.AdvInd(advertiser_address=legacy.address, data=legacy.advertising_data))
    for advertising_set in controller.advertising_sets.values():
        address = advertising_set.address
        if advertising_set.enabled and address is not None:
            sid = advertising_set.parameters.advertising_sid if advertising_set.parameters else 0
            pdus.append(
                ll.AdvExtInd(advertiser_address=address, data=bytes(advertising_set.data), sid=sid)
            )
    return pdus


class SimHost(Host):
    """A bumble host wired to a :class:`SimController` in the same process.

    On an LE link, bumble's host cuts every L2CAP frame into HCI ACL data packets, serialises
    them, and the controller parses them, answers each with a Number Of Completed Packets event
    and puts the frame back together before the link carries it; the receiving controller makes
    an HCI packet of it again for its host. Both ends log every packet, formatted eagerly. In a
    virtual-time session that is most of the work: a 30-minute session is about 9,000 ATT PDUs.

    Between a ``SimHost`` and its ``SimController`` the frame itself crosses instead, with one
    event-loop hop each way like an HCI packet, so frames keep their order relative to each
    other and to the HCI events around them. What a peer receives is the same: the same L2CAP
    frames, over the same link (with its latency), on the same connections; a frame for a link
    that has ended is dropped, as a controller drops ACL data for an unknown handle. HCI
    commands and events (advertising, scanning, connecting, disconnecting) still go over HCI.

    A stock bumble host or controller on the same link (a third-party peripheral, the test
    central, a host over the simulator server's socket) still sends and receives HCI ACL
    packets: the fast path is used only where both ends of a host-controller pair are ours.
    """

    def __init__(self, controller: SimController) -> None:
        super().__init__(controller, AsyncPipeSink(controller))
        self._sim_controller = controller
        self._sim_loop = asyncio.get_running_loop()
        controller.attach_sim_host(self)

    def send_l2cap_pdu(self, connection_handle: int, cid: int, pdu: bytes) -> None:
        connection = self.connections.get(connection_handle)
        if connection is None or connection.transport != core.PhysicalTransport.LE:
            super().send_l2cap_pdu(connection_handle, cid, pdu)
            return
        frame = bytes(L2CAP_PDU(cid, pdu))
        self._sim_loop.call_soon(self._sim_controller.on_host_l2cap_frame, connection_handle, frame)

    def on_controller_l2cap_frame(self, connection_handle: int, frame: bytes) -> None:
        """A frame from the controller, for ``connection_handle`` (as an ACL packet would)."""
        connection = self.connections.get(connection_handle)
        if connection is None:
            logger.debug("L2CAP frame for unknown connection 0x%04X dropped", connection_handle)
            return
        connection.on_acl_pdu(frame)


class SimController(bumble_controller.Controller):
    """A bumble virtual controller with working cancel, instant scan and instant connect.

    With a :class:`SimHost` attached it exchanges L2CAP frames with that host directly.
    """

    _sim_host: SimHost | None = None

    # ------------------------------------------------------------ L2CAP frames
    def attach_sim_host(self, host: SimHost) -> None:
        """Exchange L2CAP frames with ``host`` directly (it is also this controller's HCI host)."""
        self._sim_host = host

    def on_host_l2cap_frame(self, connection_handle: int, frame: bytes) -> None:
        """A frame from the attached host: onto the link, like a reassembled ACL packet."""
        connection = self.find_le_connection_by_handle(connection_handle)
        if connection is None:
            logger.debug("L2CAP frame for ended connection 0x%04X dropped", connection_handle)
            return
        connection.on_acl_pdu(frame)

    def on_link_acl_data(
        self, sender_address: hci.Address, transport: core.PhysicalTransport, data: bytes
    ) -> None:
        host = self._sim_host
        if host is None or self.host is not host or transport != core.PhysicalTransport.LE:
            super().on_link_acl_data(sender_address, transport, data)
            return
        connection = self.le_connections.get(sender_address)
        if connection is None:
            logger.debug("L2CAP frame from %s dropped: no link", sender_address)
            return
        asyncio.get_running_loop().call_soon(
            host.on_controller_l2cap_frame, connection.handle, data
        )

    # ------------------------------------------------------------------ scanning
    def on_hci_le_set_scan_enable_command(
        self, command: hci.HCI_LE_Set_Scan_Enable_Command
    ) -> hci.HCI_StatusReturnParameters:
        was_scanning = self.le_scan_enable
        result = super().on_hci_le_set_scan_enable_command(command)
        if self.le_scan_enable and not was_scanning:
            self._hear_current_advertisers()
        return result

    def on_hci_le_set_extended_scan_enable_command(
        self, command: hci.HCI_LE_Set_Extended_Scan_Enable_Command
    ) -> hci.HCI_StatusReturnParameters:
        was_scanning = self.le_scan_enable
        result = super().on_hci_le_set_extended_scan_enable_command(command)
        if self.le_scan_enable and not was_scanning:
            self._hear_current_advertisers()
        return result

    def _hear_current_advertisers(self) -> None:
        """Report every advertiser on the link now, as if each had just sent its advertisement."""
        loop = asyncio.get_running_loop()
        for other in list(self.link.controllers):
            if other is not self:
                for pdu in _advertising_pdus(other):
                    loop.call_soon(self.on_ll_advertising_pdu, pdu)

    # ---------------------------------------------------------------- connecting
    def on_hci_le_create_connection_command(
        self, command: hci.HCI_LE_Create_Connection_Command
    ) -> None:
        super().on_hci_le_create_connection_command(command)
        self._connect_now_if_advertising()

    def on_hci_le_extended_create_connection_command(
        self, command: hci.HCI_LE_Extended_Create_Connection_Command
    ) -> None:
        super().on_hci_le_extended_create_connection_command(command)
        self._connect_now_if_advertising()

    def _advertiser_is_on_air(self, address: hci.Address) -> bool:
        return any(
            pdu.advertiser_address == address
            for other in list(self.link.controllers)
            if other is not self
            for pdu in _advertising_pdus(other)
        )

    def _connect_now_if_advertising(self) -> None:
        # Let the Command Status reach the host first, then connect as a real initiator would
        # on hearing the target's next advertisement.
        asyncio.get_running_loop().call_soon(self._complete_pending_connection)

    def _complete_pending_connection(self) -> None:
        pending = self.pending_le_connection
        if pending is not None and self._advertiser_is_on_air(pending.peer_address):
            self.create_le_connection(pending.peer_address)

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Cancel the pending connection and report it failed (spec Vol 4, Part E, 7.8.13)."""
        del command
        pending = self.pending_le_connection
        if pending is not None:
            self.pending_le_connection = None
            failure = hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=pending.peer_address.address_type,
                peer_address=pending.peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
            # After the Command Complete that the caller sends for this command.
            asyncio.get_running_loop().call_soon(self.send_hci_packet, failure)
        # Success even when nothing was pending: the connection may have completed a moment
        # ago, and the host must still receive it rather than an error.
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    # --------------------------------------------------------------------- reset
    def on_hci_reset_command(
        self, command: hci.HCI_Reset_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Reset for real: a host that restarts finds no links, scan or advertising left over."""
        result = super().on_hci_reset_command(command)
        _drop_le_links(self, VANISHED_REASON, notify_host=False)
        self.pending_le_connection = None
        self.le_scan_enable = False
        self.le_legacy_advertiser.stop()
        for advertising_set in self.advertising_sets.values():
            advertising_set.stop()
        self.advertising_sets.clear()
        return result


def _drop_le_links(
    controller: bumble_controller.Controller, reason: int, *, notify_host: bool
) -> None:
    for connection in list(controller.le_connections.values()):
        try:
            connection.send_ll_control_pdu(ll.TerminateInd(reason))
        except Exception:  # the peer may already be gone from the link
            logger.debug("peer %s already gone", connection.peer_address, exc_info=True)
        if notify_host:
            controller.on_le_disconnected(connection, reason)
        else:
            controller.le_connections.pop(connection.peer_address, None)


def detach_controller(
    controller: bumble_controller.Controller, *, notify_host: bool = False
) -> None:
    """Take ``controller`` off the air: its peers see their links end, and it leaves the link.

    With ``notify_host`` its own host also gets a Disconnection Complete for every link (use it
    when the host lives on); otherwise the links are simply forgotten.
    """
    _drop_le_links(controller, VANISHED_REASON, notify_host=notify_host)
    controller.pending_le_connection = None
    controller.le_scan_enable = False
    controller.le_legacy_advertiser.stop()
    for advertising_set in controller.advertising_sets.values():
        advertising_set.stop()
    if controller in controller.link.controllers:
        controller.link.remove_controller(controller)
