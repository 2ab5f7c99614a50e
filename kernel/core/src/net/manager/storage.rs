//! The network manager's socket memory: every socket buffer in one value, built in a `const`
//! (the kernel keeps it in a static and hands it out once; a host test allocates one).

use smoltcp::iface::SocketStorage;
use smoltcp::socket::udp;

use super::sizes;

/// Socket memory for one [`super::Manager`]; `'a` is the lifetime the manager borrows it for.
pub struct Storage<'a> {
    pub(super) sockets: [SocketStorage<'a>; sizes::SOCKETS],
    pub(super) udp_rx_meta: [udp::PacketMetadata; sizes::UDP_PACKETS],
    pub(super) udp_rx: [u8; sizes::UDP_BUFFER],
    pub(super) udp_tx_meta: [udp::PacketMetadata; sizes::UDP_PACKETS],
    pub(super) udp_tx: [u8; sizes::UDP_BUFFER],
    pub(super) tcp_rx: [[u8; sizes::TCP_BUFFER]; sizes::TCP_SOCKETS],
    pub(super) tcp_tx: [[u8; sizes::TCP_BUFFER]; sizes::TCP_SOCKETS],
    pub(super) discovery_rx_meta: [udp::PacketMetadata; sizes::DISCOVERY_PACKETS],
    pub(super) discovery_rx: [u8; sizes::DISCOVERY_BUFFER],
    pub(super) discovery_tx_meta: [udp::PacketMetadata; sizes::DISCOVERY_PACKETS],
    pub(super) discovery_tx: [u8; sizes::DISCOVERY_BUFFER],
    pub(super) offload_rx: [[u8; sizes::OFFLOAD_TCP_BUFFER]; sizes::OFFLOAD_TCP_SOCKETS],
    pub(super) offload_tx: [[u8; sizes::OFFLOAD_TCP_BUFFER]; sizes::OFFLOAD_TCP_SOCKETS],
    pub(super) job_rx_meta: [[udp::PacketMetadata; sizes::JOB_PACKETS]; sizes::JOB_SOCKETS],
    pub(super) job_rx: [[u8; sizes::JOB_BUFFER]; sizes::JOB_SOCKETS],
    pub(super) job_tx_meta: [[udp::PacketMetadata; sizes::JOB_PACKETS]; sizes::JOB_SOCKETS],
    pub(super) job_tx: [[u8; sizes::JOB_BUFFER]; sizes::JOB_SOCKETS],
}

impl Storage<'_> {
    /// Empty socket memory.
    pub const fn new() -> Self {
        Storage {
            sockets: [SocketStorage::EMPTY; sizes::SOCKETS],
            udp_rx_meta: [udp::PacketMetadata::EMPTY; sizes::UDP_PACKETS],
            udp_rx: [0; sizes::UDP_BUFFER],
            udp_tx_meta: [udp::PacketMetadata::EMPTY; sizes::UDP_PACKETS],
            udp_tx: [0; sizes::UDP_BUFFER],
            tcp_rx: [[0; sizes::TCP_BUFFER]; sizes::TCP_SOCKETS],
            tcp_tx: [[0; sizes::TCP_BUFFER]; sizes::TCP_SOCKETS],
            discovery_rx_meta: [udp::PacketMetadata::EMPTY; sizes::DISCOVERY_PACKETS],
            discovery_rx: [0; sizes::DISCOVERY_BUFFER],
            discovery_tx_meta: [udp::PacketMetadata::EMPTY; sizes::DISCOVERY_PACKETS],
            discovery_tx: [0; sizes::DISCOVERY_BUFFER],
            offload_rx: [[0; sizes::OFFLOAD_TCP_BUFFER]; sizes::OFFLOAD_TCP_SOCKETS],
            offload_tx: [[0; sizes::OFFLOAD_TCP_BUFFER]; sizes::OFFLOAD_TCP_SOCKETS],
            job_rx_meta: [[udp::PacketMetadata::EMPTY; sizes::JOB_PACKETS]; sizes::JOB_SOCKETS],
            job_rx: [[0; sizes::JOB_BUFFER]; sizes::JOB_SOCKETS],
            job_tx_meta: [[udp::PacketMetadata::EMPTY; sizes::JOB_PACKETS]; sizes::JOB_SOCKETS],
            job_tx: [[0; sizes::JOB_BUFFER]; sizes::JOB_SOCKETS],
        }
    }
}

impl Default for Storage<'_> {
    fn default() -> Self {
        Self::new()
    }
}
