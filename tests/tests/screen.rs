//! The status screen is drawn: a QMP screendump of the emulated HDMI output shows the banner and
//! the self-test verdict rendered with the kernel's font, pixel for pixel.

use std::time::Duration;

use jos_kcore::console::{colors, BANNER_ROW, VERDICT_ROW};
use jos_kcore::font;
use jos_tests::{kernel_elf, BootOptions, Qemu};

/// A decoded binary PPM (P6, maxval 255).
struct Picture {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Picture {
    fn parse(bytes: &[u8]) -> Picture {
        // Header: "P6", width, height, maxval, each separated by whitespace, then one byte.
        let mut fields = Vec::new();
        let mut index = 0;
        while fields.len() < 4 {
            while bytes[index].is_ascii_whitespace() {
                index += 1;
            }
            let start = index;
            while !bytes[index].is_ascii_whitespace() {
                index += 1;
            }
            fields.push(String::from_utf8_lossy(&bytes[start..index]).to_string());
        }
        assert_eq!(fields[0], "P6", "not a binary PPM");
        assert_eq!(fields[3], "255");
        let width: usize = fields[1].parse().expect("width");
        let height: usize = fields[2].parse().expect("height");
        let rgb = bytes[index + 1..].to_vec();
        assert_eq!(rgb.len(), width * height * 3, "PPM data length");
        Picture { width, height, rgb }
    }

    fn pixel(&self, x: usize, y: usize) -> u32 {
        let i = (y * self.width + x) * 3;
        u32::from(self.rgb[i]) << 16 | u32::from(self.rgb[i + 1]) << 8 | u32::from(self.rgb[i + 2])
    }

    /// Compares the text row `row` of the status panel with `text` drawn in `foreground` on the
    /// panel background; returns the number of differing pixels.
    fn text_mismatches(&self, row: usize, text: &str, foreground: u32) -> usize {
        let mut wrong = 0;
        for (column, byte) in text.bytes().enumerate() {
            for y in 0..font::HEIGHT {
                for x in 0..font::WIDTH {
                    let expected =
                        if font::pixel(byte, x, y) { foreground } else { colors::STATUS_BACKGROUND };
                    if self.pixel(column * font::WIDTH + x, row * font::HEIGHT + y) != expected {
                        wrong += 1;
                    }
                }
            }
        }
        wrong
    }
}

#[test]
fn status_screen_shows_banner_and_verdict() {
    let mut qemu = Qemu::boot(&BootOptions::new("raspi0", kernel_elf(""))).expect("start QEMU");
    let screen = qemu.wait_for_line("screen: ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let banner = screen.split('"').nth(1).expect("banner text in the screen line").to_string();
    assert!(banner.starts_with("jos "), "unexpected banner {banner:?}");
    qemu.wait_for_line("self-test: PASS", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    // The panel is redrawn every 250 ms: wait for the redraw that follows the verdict.
    std::thread::sleep(Duration::from_millis(800));
    let path = std::env::temp_dir().join(format!("jos-screen-{}.ppm", std::process::id()));
    qemu.screendump(&path).expect("screendump");
    let picture = Picture::parse(&std::fs::read(&path).expect("read the screendump"));
    let _ = std::fs::remove_file(&path);
    assert_eq!((picture.width, picture.height), (640, 480));

    let banner_wrong = picture.text_mismatches(BANNER_ROW, &banner, colors::BANNER_FOREGROUND);
    assert_eq!(banner_wrong, 0, "{banner_wrong} banner pixels differ from {banner:?} in the kernel font");
    let verdict_wrong = picture.text_mismatches(VERDICT_ROW, "self-test PASS", colors::STATUS_FOREGROUND);
    assert_eq!(verdict_wrong, 0, "{verdict_wrong} pixels of the verdict row differ");
    // And the check can tell text apart: a different string does not match.
    assert!(picture.text_mismatches(BANNER_ROW, "jos 9.9.9", colors::BANNER_FOREGROUND) > 0);
}
