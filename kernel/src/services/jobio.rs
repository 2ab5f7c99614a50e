//! The capability calls of the running job, shared by the wasm host (`services::offload`) and
//! the native dispatch table (`services::native`): UDP sockets from the network manager's job
//! pool on the policy's port range, a line in the job area of the status screen, GPIO pins.
//!
//! The runtime (wasm) or the native call stubs have already checked the job's capabilities;
//! this module enforces what is left: the port range, socket ownership, the kernel's own pins.
//! Every socket a job holds is closed when its [`JobDevices`] is dropped, which happens however
//! the job ends (return, exit, trap, out of fuel, deadline, abort on disconnect).

use jos_abi::config::PortRange;
use jos_abi::syscall::Endpoint;
use jos_abi::ErrorCode;

use crate::board::bcm2835::GPIO;
use crate::services::net;

/// Longest line `screen_print` shows (bytes; longer lines are cut).
pub const SCREEN_LINE: usize = 64;

/// What one job holds: the ports it may bind and the job sockets it has open.
pub struct JobDevices {
    ports: PortRange,
    /// Bit per job socket (`net::sizes::JOB_SOCKETS`) this job owns.
    owned: u32,
}

impl JobDevices {
    /// A job that may bind ports in `ports` and holds nothing yet.
    pub const fn new(ports: PortRange) -> Self {
        JobDevices { ports, owned: 0 }
    }

    fn owned_index(&self, handle: u32) -> Result<usize, ErrorCode> {
        let index = handle as usize;
        if index < net::sizes::JOB_SOCKETS && self.owned & (1 << index) != 0 {
            Ok(index)
        } else {
            Err(ErrorCode::NotFound)
        }
    }

    /// `udp_bind`: `PermissionDenied` outside the policy's job port range, `InUse` if the port is
    /// bound already, `LimitExceeded` when every job socket is taken.
    pub fn udp_bind(&mut self, port: u16) -> Result<u32, ErrorCode> {
        if !self.ports.contains(port) {
            return Err(ErrorCode::PermissionDenied);
        }
        let index = net::job_bind(port)?;
        self.owned |= 1 << index;
        Ok(index as u32)
    }

    /// `udp_send`.
    pub fn udp_send(&mut self, handle: u32, to: Endpoint, data: &[u8]) -> Result<(), ErrorCode> {
        net::job_send(self.owned_index(handle)?, to, data)
    }

    /// `udp_recv`.
    pub fn udp_recv(&mut self, handle: u32, buffer: &mut [u8]) -> Result<(usize, Endpoint), ErrorCode> {
        net::job_recv(self.owned_index(handle)?, buffer)
    }

    /// `udp_close`.
    pub fn udp_close(&mut self, handle: u32) -> Result<(), ErrorCode> {
        let index = self.owned_index(handle)?;
        self.owned &= !(1 << index);
        net::job_close(index);
        Ok(())
    }

    /// `screen_print`: the job line of the status screen's job area, echoed on the console.
    pub fn screen_print(&mut self, line: &str) -> Result<(), ErrorCode> {
        let mut end = line.len().min(SCREEN_LINE);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let line = line[..end].trim_end_matches(['\n', '\r']);
        crate::services::status::set_print_line(format_args!("{line}"));
        crate::kprintln!("screen: job: {line}");
        Ok(())
    }

    /// `gpio_write`: makes `pin` an output and drives it.
    pub fn gpio_write(&mut self, pin: u32, high: bool) -> Result<(), ErrorCode> {
        GPIO.write(pin, high)
    }

    /// `gpio_read`: the level of `pin`.
    pub fn gpio_read(&mut self, pin: u32) -> Result<bool, ErrorCode> {
        GPIO.read(pin)
    }
}

impl Drop for JobDevices {
    fn drop(&mut self) {
        for index in 0..net::sizes::JOB_SOCKETS {
            if self.owned & (1 << index) != 0 {
                net::job_close(index);
            }
        }
        self.owned = 0;
    }
}
