//! The class drivers the enumerator hands devices to ([`super::bus::ClassDriver`]): hub,
//! CDC-ECM and SMSC LAN95xx.

pub mod ecm;
pub mod hub;
pub mod smsc95xx;
