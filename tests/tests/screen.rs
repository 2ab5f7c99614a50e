//! The status screen is drawn: a QMP screendump of the emulated HDMI output shows the banner and
//! the self-test verdict rendered with the kernel's font, pixel for pixel.

use std::time::Duration;

use jos_kcore::console::{colors, BANNER_ROW, VERDICT_ROW};
use jos_tests::{kernel_elf, BootOptions, Qemu};

#[test]
fn status_screen_shows_banner_and_verdict() {
    let mut qemu = Qemu::boot(&BootOptions::new("raspi0", kernel_elf(""))).expect("start QEMU");
    let screen = qemu.wait_for_line("screen: ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let banner = screen.split('"').nth(1).expect("banner text in the screen line").to_string();
    assert!(banner.starts_with("jos "), "unexpected banner {banner:?}");
    qemu.wait_for_line("self-test: PASS", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    // The panel is redrawn every 250 ms: wait for the redraw that follows the verdict.
    std::thread::sleep(Duration::from_millis(800));
    let picture = qemu.screen_picture().expect("screendump");
    assert_eq!((picture.width, picture.height), (640, 480));

    let banner_wrong =
        picture.text_mismatches(BANNER_ROW, &banner, colors::BANNER_FOREGROUND, colors::STATUS_BACKGROUND);
    assert_eq!(banner_wrong, 0, "{banner_wrong} banner pixels differ from {banner:?} in the kernel font");
    let verdict_wrong =
        picture.text_mismatches(VERDICT_ROW, "self-test PASS", colors::STATUS_FOREGROUND, colors::STATUS_BACKGROUND);
    assert_eq!(verdict_wrong, 0, "{verdict_wrong} pixels of the verdict row differ");
    // And the check can tell text apart: a different string does not match.
    assert!(picture.text_mismatches(BANNER_ROW, "jos 9.9.9", colors::BANNER_FOREGROUND, colors::STATUS_BACKGROUND) > 0);
}
