//! Where the network manager's IPv4 address comes from: the boot configuration's fixed address,
//! a DHCP lease, or the static fallback after [`super::DHCP_TIMEOUT_US`] without an answer.

use core::fmt::Write;

use smoltcp::socket::dhcpv4;
use smoltcp::wire::{IpCidr, Ipv4Address, Ipv4Cidr};

use super::{AddressState, Manager, NetworkDevice, DHCP_TIMEOUT_US, STATIC_ADDRESS, STATIC_GATEWAY};
use crate::drivers::Clock;
use crate::text::Line;

impl<D: NetworkDevice, C: Clock> Manager<'_, D, C> {
    pub(super) fn dhcp(&mut self, now_us: u64) {
        if self.state == AddressState::Configured {
            return;
        }
        if let Some(jos_abi::config::Network::Static { address, prefix_len, gateway }) =
            self.hosted.and_then(|service| (service.configured_network)())
        {
            // The boot configuration fixes the address: no DHCP socket, no fallback.
            let cidr = Ipv4Cidr::new(Ipv4Address::from_octets(address), prefix_len);
            let router = (gateway != [0; 4]).then(|| Ipv4Address::from_octets(gateway));
            self.sockets.remove(self.dhcp);
            self.configure(cidr, router, AddressState::Configured);
            let mut line = Line::<96>::new();
            let _ = write!(line, "net: ip {cidr} via static (boot configuration)");
            if let Some(router) = router {
                let _ = write!(line, " gateway {router}");
            }
            (self.sinks.log)(format_args!("{}", line.as_str()));
            return;
        }
        let event = self.sockets.get_mut::<dhcpv4::Socket>(self.dhcp).poll();
        match event {
            Some(dhcpv4::Event::Configured(config)) => {
                let address = config.address;
                let router = config.router;
                let dns = config.dns_servers.first().copied();
                self.configure(address, router, AddressState::Dhcp);
                self.dns = dns;
                let mut line = Line::<96>::new();
                let _ = write!(line, "net: ip {} via dhcp", address);
                if let Some(gateway) = router {
                    let _ = write!(line, " gateway {gateway}");
                }
                if let Some(dns) = dns {
                    let _ = write!(line, " dns {dns}");
                }
                (self.sinks.log)(format_args!("{}", line.as_str()));
            }
            Some(dhcpv4::Event::Deconfigured) if self.state == AddressState::Dhcp => {
                self.iface.update_ip_addrs(|addresses| addresses.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
                self.address = None;
                self.state = AddressState::Discovering;
                self.started_us = now_us;
                (self.sinks.log)(format_args!("net: dhcp lease lost"));
            }
            Some(dhcpv4::Event::Deconfigured) | None => {}
        }
        if self.state == AddressState::Discovering && now_us - self.started_us > DHCP_TIMEOUT_US {
            self.configure(STATIC_ADDRESS, Some(STATIC_GATEWAY), AddressState::Static);
            (self.sinks.log)(format_args!(
                "net: ip {STATIC_ADDRESS} via static gateway {STATIC_GATEWAY} (no DHCP answer)"
            ));
        }
    }

    fn configure(&mut self, address: Ipv4Cidr, gateway: Option<Ipv4Address>, state: AddressState) {
        self.iface.update_ip_addrs(|addresses| {
            addresses.clear();
            let _ = addresses.push(IpCidr::Ipv4(address));
        });
        match gateway {
            Some(gateway) => {
                let _ = self.iface.routes_mut().add_default_ipv4_route(gateway);
            }
            None => {
                self.iface.routes_mut().remove_default_ipv4_route();
            }
        }
        self.address = Some(address);
        self.gateway = gateway;
        self.state = state;
    }
}
