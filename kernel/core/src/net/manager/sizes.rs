//! Socket counts and buffer sizes of the network manager, in one place.

/// UDP echo: receive and transmit payload bytes.
pub const UDP_BUFFER: usize = 16 * 1024;
/// UDP echo: datagrams queued per direction.
pub const UDP_PACKETS: usize = 16;
/// TCP echo sockets (connections served at once).
pub const TCP_SOCKETS: usize = 2;
/// TCP echo: receive and transmit buffer bytes per socket.
pub const TCP_BUFFER: usize = 16 * 1024;
/// Offload sessions: TCP sockets listening on port 4748 (the sessions served at once, and
/// two more: the offload service checks that its `LISTENERS` equals this when compiling).
pub const OFFLOAD_TCP_SOCKETS: usize = 10;
/// Offload sessions: receive and transmit buffer bytes per socket.
pub const OFFLOAD_TCP_BUFFER: usize = 16 * 1024;
/// Offload discovery: payload bytes per direction.
pub const DISCOVERY_BUFFER: usize = 2048;
/// Offload discovery: datagrams queued per direction.
pub const DISCOVERY_PACKETS: usize = 4;
/// Job UDP sockets (`udp_bind`): sockets one job may hold at once.
pub const JOB_SOCKETS: usize = 4;
/// Job UDP sockets: receive and transmit payload bytes per socket.
pub const JOB_BUFFER: usize = 4 * 1024;
/// Job UDP sockets: datagrams queued per direction per socket.
pub const JOB_PACKETS: usize = 8;
/// Outgoing TCP sockets other services add ([`super::Manager::add_client_socket`]): the fleet's
/// broker connection.
pub const CLIENT_SOCKETS: usize = 1;
/// All sockets: DHCP, UDP echo, the TCP echo sockets, offload discovery and sessions, the
/// job sockets and the client sockets.
pub const SOCKETS: usize = 2 + TCP_SOCKETS + 1 + OFFLOAD_TCP_SOCKETS + JOB_SOCKETS + CLIENT_SOCKETS;
/// Largest UDP datagram echoed (IPv4 without fragments carries at most 1472 bytes).
pub const UDP_CHUNK: usize = 2048;
/// Bytes moved from a TCP receive buffer to its transmit buffer per step.
pub const TCP_CHUNK: usize = 2048;
/// The echo services' copy buffer, kept in the network manager rather than a fresh zeroed
/// stack array per call: zeroing 2 KiB arrays three times per `serve` was most of an echo's
/// cost (docs/network.md "Where an echo's instructions go").
pub const SCRATCH: usize = if UDP_CHUNK > TCP_CHUNK { UDP_CHUNK } else { TCP_CHUNK };
