//! The screen: the HDMI framebuffer split into a status panel (the top [`STATUS_ROWS`] text
//! rows, redrawn by the status service) and a scrolling console below it (errors, fault and
//! panic reports). Text uses the kernel font (`jos_kcore::font`, 8x16 cells).

use core::fmt;

use jos_kcore::console::{Surface, TextLayout};
use jos_kcore::font;
use jos_kcore::text::Line;

use crate::board::bcm2835::framebuffer::{Framebuffer, FramebufferInfo};
use crate::sync::IrqLock;

/// Requested screen size.
pub const WIDTH: u32 = 640;
/// Requested screen size.
pub const HEIGHT: u32 = 480;
pub use jos_kcore::console::colors::*;
pub use jos_kcore::console::STATUS_ROWS;

/// Most columns the status panel keeps track of.
const MAX_COLUMNS: usize = 128;

struct Screen {
    framebuffer: Framebuffer,
    layout: TextLayout,
    foreground: u32,
    /// What each status cell shows now (0: not drawn yet), so a refresh redraws only changes.
    shown: [[u8; MAX_COLUMNS]; STATUS_ROWS],
}

struct ConsoleSurface<'a> {
    framebuffer: &'a mut Framebuffer,
    foreground: u32,
}

impl Surface for ConsoleSurface<'_> {
    fn draw(&mut self, column: usize, row: usize, byte: u8) {
        self.framebuffer.draw_glyph(
            column * font::WIDTH,
            row * font::HEIGHT,
            byte,
            self.foreground,
            CONSOLE_BACKGROUND,
        );
    }

    fn scroll_up(&mut self, first: usize, end: usize) {
        let lines = end - first - 1;
        self.framebuffer.move_rows((first + 1) * font::HEIGHT, first * font::HEIGHT, lines * font::HEIGHT);
    }

    fn clear_row(&mut self, row: usize) {
        let width = self.framebuffer.info().width as usize;
        self.framebuffer.fill_rect(0, row * font::HEIGHT, width, font::HEIGHT, CONSOLE_BACKGROUND);
    }
}

static SCREEN: IrqLock<Option<Screen>> = IrqLock::new(None);

/// Takes over the framebuffer: clears it and draws an empty status panel.
///
/// # Safety
/// `info` must describe a mapped 32-bit framebuffer that nothing else writes.
pub unsafe fn init(info: FramebufferInfo) {
    // SAFETY: forwarded from the caller.
    let mut framebuffer = unsafe { Framebuffer::new(info) };
    let columns = info.width as usize / font::WIDTH;
    let rows = info.height as usize / font::HEIGHT;
    framebuffer.fill_rect(0, 0, info.width as usize, info.height as usize, CONSOLE_BACKGROUND);
    framebuffer.fill_rect(0, 0, info.width as usize, STATUS_ROWS * font::HEIGHT, STATUS_BACKGROUND);
    let layout = TextLayout::new(columns, rows, STATUS_ROWS + 1);
    SCREEN.lock(|screen| {
        *screen =
            Some(Screen { framebuffer, layout, foreground: CONSOLE_FOREGROUND, shown: [[0; MAX_COLUMNS]; STATUS_ROWS] })
    });
}

/// Writes `text` to the console area (red when `error`). Skipped silently when the screen is
/// absent or busy (the panic and fault paths may interrupt a screen update).
pub fn write_str(text: &str, error: bool) {
    let _ = SCREEN.try_lock(|screen| {
        if let Some(screen) = screen {
            screen.foreground = if error { ERROR_FOREGROUND } else { CONSOLE_FOREGROUND };
            let mut surface = ConsoleSurface { framebuffer: &mut screen.framebuffer, foreground: screen.foreground };
            screen.layout.write(&mut surface, text.as_bytes());
        }
    });
}

/// Formats into the console area (see [`write_str`]).
pub fn write_fmt(args: fmt::Arguments, error: bool) {
    let mut line = Line::<256>::new();
    line.set(args);
    write_str(line.as_str(), error);
}

/// Draws `text` on status row `row` (0 is the banner), padded to the full width. Only the cells
/// whose character changed since the last call are redrawn.
pub fn draw_status_row(row: usize, text: &str) {
    let _ = SCREEN.try_lock(|screen| {
        let Some(screen) = screen else { return };
        if row >= STATUS_ROWS {
            return;
        }
        let columns = (screen.framebuffer.info().width as usize / font::WIDTH).min(MAX_COLUMNS);
        let foreground = if row == 0 { BANNER_FOREGROUND } else { STATUS_FOREGROUND };
        let bytes = text.as_bytes();
        for column in 0..columns {
            let byte = bytes.get(column).copied().unwrap_or(b' ');
            if screen.shown[row][column] != byte {
                screen.shown[row][column] = byte;
                screen.framebuffer.draw_glyph(
                    column * font::WIDTH,
                    row * font::HEIGHT,
                    byte,
                    foreground,
                    STATUS_BACKGROUND,
                );
            }
        }
    });
}
