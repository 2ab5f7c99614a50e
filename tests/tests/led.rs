//! The activity LED seen from outside, as a person looking at a board would see it: the pin's
//! level is sampled through QEMU's monitor (`xp` of GPLEV1, the GPIO level register, while the
//! kernel runs) and the flashes counted. On raspi0 (a Pi Zero: GPIO 47, active low) with no
//! network device and no boot configuration the kernel blinks the "no configuration" code (4
//! short flashes every 3 s); after a panic the halted kernel blinks fault code 4 (10 fast flashes,
//! then 4 long ones) from its fault path, without interrupts or heap.

use std::time::{Duration, Instant};

use jos_tests::{kernel_elf, BootOptions, Qemu};

/// GPLEV1: levels of GPIO 32..53 (BCM2835 ARM Peripherals 6.1).
const GPLEV1: u32 = 0x2020_0038;
/// The Zero's activity LED: GPIO 47, bit 15 of GPLEV1.
const LED_BIT: u32 = 1 << (47 - 32);

/// The LED's level samples over `span`: (time since start, lit). Active low: lit when the pin
/// reads 0.
fn sample(qemu: &Qemu, span: Duration) -> Vec<(Duration, bool)> {
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < span {
        let reply = qemu
            .qmp(&format!(
                r#"{{"execute":"human-monitor-command","arguments":{{"command-line":"xp /1wx {GPLEV1:#x}"}}}}"#
            ))
            .expect("QMP answers");
        let word = reply
            .split("0x")
            .nth(1)
            .and_then(|hex| u32::from_str_radix(&hex[..8.min(hex.len())], 16).ok())
            .unwrap_or_else(|| panic!("no word in {reply}"));
        samples.push((start.elapsed(), word & LED_BIT == 0));
        std::thread::sleep(Duration::from_millis(4));
    }
    samples
}

/// Lit periods as (start, length), from dark-to-lit to lit-to-dark edges seen in the samples.
fn flashes(samples: &[(Duration, bool)]) -> Vec<(Duration, Duration)> {
    let mut found = Vec::new();
    let mut lit_since = None;
    for window in samples.windows(2) {
        let ((_, before), (at, now)) = (window[0], window[1]);
        match (before, now) {
            (false, true) => lit_since = Some(at),
            (true, false) => {
                if let Some(since) = lit_since.take() {
                    found.push((since, at - since));
                }
            }
            _ => {}
        }
    }
    found
}

#[test]
fn led_shows_the_stage_then_the_fault_code() {
    let mut qemu = Qemu::boot(&BootOptions::new("raspi0", kernel_elf(""))).expect("start QEMU");
    qemu.wait_for_line("self-test:", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    // No usb-net and no configuration: wait until USB gave up, then watch two periods.
    qemu.wait_for_line_containing("usb: NoDevice", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    qemu.send("led\r").unwrap();
    let line = qemu.wait_for_line("led: ", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
    assert!(line.starts_with("gpio 47 active low, code 4 no configuration"), "{line}");
    let stage = flashes(&sample(&qemu, Duration::from_millis(6_200)));
    let short = stage.iter().filter(|(_, length)| *length < Duration::from_millis(400)).count();
    assert!((7..=9).contains(&short), "expected 8 short flashes in 6.2 s (4 per 3 s), saw {stage:?}");
    assert!(stage.iter().all(|(_, length)| *length < Duration::from_millis(400)), "{stage:?}");

    // A panic: the fault path blinks code 4 forever.
    qemu.send("panic\r").unwrap();
    let halted =
        qemu.wait_for_line_containing("jos: halted", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
    assert!(halted.contains("fault code 4"), "{halted}");
    let fault = flashes(&sample(&qemu, Duration::from_millis(14_000)));
    let long: Vec<_> = fault.iter().filter(|(_, length)| *length >= Duration::from_millis(400)).collect();
    let fast = fault.iter().filter(|(_, length)| *length < Duration::from_millis(150)).count();
    // 14 s hold two whole 6.5 s periods: 8 long flashes (600 ms) and 20 fast ones (50 ms; the
    // sampling may merge or miss a few).
    assert!((7..=9).contains(&long.len()), "long flashes: {fault:?}");
    assert!(long.iter().all(|(_, length)| *length < Duration::from_millis(900)), "{fault:?}");
    assert!(fast >= 10, "fast flashes: {fault:?}");
}
