//! What the network manager tells: the status screen's network line and, when they changed, the
//! counters on the console once a second.

use core::fmt::Write;

use super::{AddressState, Manager, NetworkDevice, REPORT_PERIOD_US};
use crate::drivers::Clock;
use crate::text::Line;

/// The network line's text.
pub(super) type StatusLine = Line<96>;

impl<D: NetworkDevice, C: Clock> Manager<'_, D, C> {
    fn write_status(&mut self, line: &mut StatusLine) {
        let link = self.device.counters();
        self.counters.link = link;
        let _ = match self.address {
            Some(address) => write!(
                line,
                "{address} {}",
                match self.state {
                    AddressState::Dhcp => "dhcp",
                    AddressState::Static => "static",
                    AddressState::Configured => "configured",
                    AddressState::Discovering => "-",
                }
            ),
            None => write!(line, "asking DHCP"),
        };
        let drops = self.counters.malformed
            + self.counters.fragments
            + self.counters.closed_port
            + link.rx.runts
            + self.counters.udp_echo_drops
            + self.counters.echo_loops;
        let _ = write!(
            line,
            " rx {} tx {} drop {} err {}",
            link.rx.frames,
            link.tx.frames,
            drops,
            link.rx.errors + link.tx.errors
        );
    }

    pub(super) fn report(&mut self, now_us: u64) {
        if now_us - self.last_report_us < REPORT_PERIOD_US {
            return;
        }
        self.last_report_us = now_us;
        let mut line = StatusLine::new();
        self.write_status(&mut line);
        (self.sinks.status)(format_args!("{}", line.as_str()));
        let link = self.device.counters();
        let key = (
            link.rx.frames + link.rx.runts + link.rx.errors,
            link.tx.frames + link.tx.errors,
            self.counters.malformed + self.counters.fragments + self.counters.closed_port + self.counters.echo_loops,
        );
        if key == self.reported {
            return;
        }
        self.reported = key;
        let c = self.counters;
        (self.sinks.log)(format_args!(
            "net: stats rx {} ({} B) tx {} ({} B) runts {} malformed {} fragments {} closed_port {} broadcast {} rx_err {} tx_err {} tx_busy {} udp_echo {} udp_drop {} echo_loop {} tcp_conn {} tcp_bytes {} busy_us {} at_us {}",
            link.rx.frames,
            link.rx.bytes,
            link.tx.frames,
            link.tx.bytes,
            link.rx.runts,
            c.malformed,
            c.fragments,
            c.closed_port,
            c.broadcasts,
            link.rx.errors,
            link.tx.errors,
            link.tx.full,
            c.udp_echoes,
            c.udp_echo_drops,
            c.echo_loops,
            c.tcp_connections,
            c.tcp_echo_bytes,
            c.busy_us,
            now_us,
        ));
    }
}
