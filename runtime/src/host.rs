//! The `Host` trait: what the device (or a test double) provides to a running job.
//!
//! The runtime owns everything that must behave the same on every device: bounds checks on guest
//! pointers, the output and log caps, capability checks, fuel and slices. A `Host` provides only
//! the environment: the job's input, a clock, randomness, and the capability-gated devices (UDP,
//! status screen, GPIO), whose default implementations answer [`ErrorCode::Unsupported`].

use jos_abi::signature::SignerRights;
use jos_abi::syscall::{Capability, Endpoint, LogLevel};
use jos_abi::ErrorCode;

/// The rights one job holds beyond the base calls, granted by device policy per job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// UDP sockets (`udp_bind`, `udp_send`, `udp_recv`, `udp_close`).
    pub network: bool,
    /// The status screen (`screen_print`).
    pub screen: bool,
    /// GPIO pins (`gpio_write`, `gpio_read`).
    pub gpio: bool,
}

impl Capabilities {
    /// No rights beyond the base calls.
    pub const NONE: Capabilities = Capabilities { network: false, screen: false, gpio: false };
    /// Every right.
    pub const ALL: Capabilities = Capabilities { network: true, screen: true, gpio: true };

    /// The capabilities a signer's rights grant to the jobs it signed
    /// ([`SignerRights::NETWORK`], [`SignerRights::SCREEN`], [`SignerRights::GPIO`]; the format
    /// bits grant nothing here).
    pub const fn from_rights(rights: SignerRights) -> Capabilities {
        Capabilities {
            network: rights.contains(SignerRights::NETWORK),
            screen: rights.contains(SignerRights::SCREEN),
            gpio: rights.contains(SignerRights::GPIO),
        }
    }

    /// Whether a call that needs `capability` is allowed.
    pub const fn allows(self, capability: Capability) -> bool {
        match capability {
            Capability::Base => true,
            Capability::Network => self.network,
            Capability::Screen => self.screen,
            Capability::Gpio => self.gpio,
        }
    }
}

/// What a job may call, as the device provides it. The runtime has already checked the job's
/// pointers, lengths and capabilities before any of these is called.
pub trait Host {
    /// Length in bytes of the job's input.
    fn input_len(&self) -> usize;

    /// Copies input bytes starting at `offset` into `buffer`; returns the count copied (0 at or
    /// past the end).
    fn input_read(&self, offset: usize, buffer: &mut [u8]) -> usize;

    /// Monotonic time in microseconds since an arbitrary fixed point (boot on the device).
    fn time_us(&self) -> u64;

    /// Fills `buffer` with random bytes (the hardware RNG on the device).
    fn random(&mut self, buffer: &mut [u8]) -> Result<(), ErrorCode>;

    /// Called when the job yields (`yield`) or its fuel slice ends (before
    /// [`Job::step`](crate::wasm::Job::step) returns). The default does nothing.
    fn on_yield(&mut self) {}

    /// Called with every log line the job writes that fits under the log cap (the runtime keeps
    /// the line for the job result as well). The default does nothing; the kernel may echo it.
    fn on_log(&mut self, level: LogLevel, line: &str) {
        let _ = (level, line);
    }

    /// `udp_bind`: opens a socket on `port`; returns its handle.
    fn udp_bind(&mut self, port: u16) -> Result<u32, ErrorCode> {
        let _ = port;
        Err(ErrorCode::Unsupported)
    }

    /// `udp_send`: sends `data` to `to` from socket `handle`.
    fn udp_send(&mut self, handle: u32, to: Endpoint, data: &[u8]) -> Result<(), ErrorCode> {
        let _ = (handle, to, data);
        Err(ErrorCode::Unsupported)
    }

    /// `udp_recv`: the next datagram on `handle`, copied into `buffer` (truncated to its length);
    /// returns the datagram's full length and its sender, or [`ErrorCode::WouldBlock`].
    fn udp_recv(&mut self, handle: u32, buffer: &mut [u8]) -> Result<(usize, Endpoint), ErrorCode> {
        let _ = (handle, buffer);
        Err(ErrorCode::Unsupported)
    }

    /// `udp_close`: closes socket `handle`.
    fn udp_close(&mut self, handle: u32) -> Result<(), ErrorCode> {
        let _ = handle;
        Err(ErrorCode::Unsupported)
    }

    /// `screen_print`: one line in the job area of the status screen.
    fn screen_print(&mut self, line: &str) -> Result<(), ErrorCode> {
        let _ = line;
        Err(ErrorCode::Unsupported)
    }

    /// `gpio_write`: drives `pin` high (`true`) or low.
    fn gpio_write(&mut self, pin: u32, high: bool) -> Result<(), ErrorCode> {
        let _ = (pin, high);
        Err(ErrorCode::Unsupported)
    }

    /// `gpio_read`: the level of `pin`.
    fn gpio_read(&mut self, pin: u32) -> Result<bool, ErrorCode> {
        let _ = pin;
        Err(ErrorCode::Unsupported)
    }
}

/// The device's heap as the sandbox sees it ([`crate::wasm::Sandbox::set_heap_meter`]).
///
/// Almost every allocation wasmi makes for a job is fallible (linear memory, tables, the value
/// stack), but compiling a module is not, and neither are the kernel's own allocations: a job
/// that took the last free bytes would make the next allocation elsewhere end the device. With a
/// meter, the sandbox refuses growth (memory.grow answers -1, a table grows no further, the value
/// stack traps) and compilation (`LimitKind::DeviceMemory`) that would leave less than the device
/// keeps for itself, and it charges each cached module what compiling it really took.
pub trait HeapMeter: Sync {
    /// Bytes that jobs and compilation may still take: the heap's free bytes minus what the
    /// device keeps for itself.
    fn available(&self) -> usize;

    /// Bytes of heap in use now (the sandbox measures what compiling a module retained).
    fn used(&self) -> usize;
}

#[cfg(any(feature = "std", test))]
pub use self::std_host::{StdHost, MAX_SOCKETS};

#[cfg(any(feature = "std", test))]
mod std_host {
    //! A host for tests and `jos-cli run --local`.
    extern crate std;

    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;
    use std::io::Read;
    use std::time::Instant;

    /// A [`Host`] over the host OS: input from memory, the OS clock, `/dev/urandom`, a screen
    /// that collects lines, and UDP over `std::net::UdpSocket` (bound on [`StdHost::udp_address`],
    /// loopback unless changed; non-blocking, so `udp_recv` answers `WouldBlock` when nothing
    /// waits). The runtime only lets a job reach UDP when it holds [`Capabilities::network`];
    /// every socket is closed when the job closes it or when the host is dropped (the job ended).
    /// It has no GPIO (those calls answer `Unsupported`).
    #[derive(Debug)]
    pub struct StdHost {
        /// The job's input.
        pub input: Vec<u8>,
        /// Lines the job printed to the screen (when granted [`Capabilities::screen`]).
        pub screen: Vec<String>,
        /// How many times the job yielded or was sliced.
        pub yields: u64,
        /// Log lines echoed to standard error as they arrive.
        pub echo_logs: bool,
        /// The address `udp_bind` binds sockets on (default `127.0.0.1`).
        pub udp_address: std::net::Ipv4Addr,
        /// Open sockets by handle (handles start at 1 and are not reused within a job).
        sockets: std::collections::BTreeMap<u32, std::net::UdpSocket>,
        next_handle: u32,
        datagram: Vec<u8>,
        epoch: Instant,
    }

    /// Sockets one job may hold open at once.
    pub const MAX_SOCKETS: usize = 8;

    impl StdHost {
        /// A host that serves `input` to the job.
        pub fn new(input: impl Into<Vec<u8>>) -> Self {
            Self {
                input: input.into(),
                screen: Vec::new(),
                yields: 0,
                echo_logs: false,
                udp_address: std::net::Ipv4Addr::LOCALHOST,
                sockets: std::collections::BTreeMap::new(),
                next_handle: 1,
                datagram: Vec::new(),
                epoch: Instant::now(),
            }
        }

        /// The local port of the socket `handle`, if it is open.
        pub fn udp_port(&self, handle: u32) -> Option<u16> {
            self.sockets.get(&handle)?.local_addr().ok().map(|address| address.port())
        }

        /// How many sockets are open.
        pub fn open_sockets(&self) -> usize {
            self.sockets.len()
        }

        fn socket(&self, handle: u32) -> Result<&std::net::UdpSocket, ErrorCode> {
            self.sockets.get(&handle).ok_or(ErrorCode::NotFound)
        }
    }

    fn io_code(error: &std::io::Error) -> ErrorCode {
        match error.kind() {
            std::io::ErrorKind::WouldBlock => ErrorCode::WouldBlock,
            std::io::ErrorKind::AddrInUse => ErrorCode::InUse,
            std::io::ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
            std::io::ErrorKind::AddrNotAvailable | std::io::ErrorKind::InvalidInput => ErrorCode::InvalidArgument,
            _ => ErrorCode::Io,
        }
    }

    impl Host for StdHost {
        fn input_len(&self) -> usize {
            self.input.len()
        }

        fn input_read(&self, offset: usize, buffer: &mut [u8]) -> usize {
            let available = self.input.get(offset..).unwrap_or(&[]);
            let count = available.len().min(buffer.len());
            buffer[..count].copy_from_slice(&available[..count]);
            count
        }

        fn time_us(&self) -> u64 {
            u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
        }

        fn random(&mut self, buffer: &mut [u8]) -> Result<(), ErrorCode> {
            std::fs::File::open("/dev/urandom").and_then(|mut file| file.read_exact(buffer)).map_err(|_| ErrorCode::Io)
        }

        fn on_yield(&mut self) {
            self.yields += 1;
        }

        fn on_log(&mut self, level: LogLevel, line: &str) {
            if self.echo_logs {
                std::eprintln!("[{level:?}] {line}");
            }
        }

        fn udp_bind(&mut self, port: u16) -> Result<u32, ErrorCode> {
            if self.sockets.len() >= MAX_SOCKETS {
                return Err(ErrorCode::LimitExceeded);
            }
            let socket = std::net::UdpSocket::bind((self.udp_address, port)).map_err(|error| io_code(&error))?;
            socket.set_nonblocking(true).map_err(|error| io_code(&error))?;
            let handle = self.next_handle;
            self.next_handle = self.next_handle.checked_add(1).ok_or(ErrorCode::LimitExceeded)?;
            self.sockets.insert(handle, socket);
            Ok(handle)
        }

        fn udp_send(&mut self, handle: u32, to: Endpoint, data: &[u8]) -> Result<(), ErrorCode> {
            let socket = self.socket(handle)?;
            let address = std::net::SocketAddrV4::new(to.address.into(), to.port);
            match socket.send_to(data, address) {
                Ok(sent) if sent == data.len() => Ok(()),
                Ok(_) => Err(ErrorCode::Io),
                Err(error) => Err(io_code(&error)),
            }
        }

        fn udp_recv(&mut self, handle: u32, buffer: &mut [u8]) -> Result<(usize, Endpoint), ErrorCode> {
            let socket = self.sockets.get(&handle).ok_or(ErrorCode::NotFound)?;
            // Received whole (a UDP datagram is at most 64 KiB) so that the full length is known.
            self.datagram.resize(65536, 0);
            loop {
                let (length, from) = socket.recv_from(&mut self.datagram).map_err(|error| io_code(&error))?;
                // The socket is IPv4, so every sender is; anything else is dropped.
                let std::net::SocketAddr::V4(from) = from else { continue };
                let count = length.min(buffer.len());
                buffer[..count].copy_from_slice(&self.datagram[..count]);
                return Ok((length, Endpoint { address: from.ip().octets(), port: from.port() }));
            }
        }

        fn udp_close(&mut self, handle: u32) -> Result<(), ErrorCode> {
            self.sockets.remove(&handle).map(drop).ok_or(ErrorCode::NotFound)
        }

        fn screen_print(&mut self, line: &str) -> Result<(), ErrorCode> {
            self.screen.push(line.into());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_the_signer_rights() {
        assert_eq!(Capabilities::from_rights(SignerRights::FORMATS), Capabilities::NONE);
        assert_eq!(Capabilities::from_rights(SignerRights::ALL), Capabilities::ALL);
        let network = Capabilities::from_rights(SignerRights::WASM | SignerRights::NETWORK);
        assert!(
            network.allows(Capability::Network)
                && !network.allows(Capability::Screen)
                && !network.allows(Capability::Gpio)
        );
        let screen = Capabilities::from_rights(SignerRights::NATIVE | SignerRights::SCREEN);
        assert!(screen.allows(Capability::Screen) && !screen.allows(Capability::Network));
        let gpio = Capabilities::from_rights(SignerRights::WASM | SignerRights::GPIO);
        assert!(gpio.allows(Capability::Gpio) && gpio.allows(Capability::Base) && !gpio.allows(Capability::Network));
    }
}
