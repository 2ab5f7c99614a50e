//! Board support. jos runs on the BCM2835 (Raspberry Pi 1 and Zero; QEMU `raspi0`, `raspi1ap`).

pub mod bcm2835;
