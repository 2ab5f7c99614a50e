//! The HDMI framebuffer the firmware allocates through the mailbox: a 32-bit-per-pixel surface
//! that the text console draws glyphs on. Pixels are 0x00RRGGBB.

use jos_kcore::font;

pub use super::mailbox::FramebufferInfo;

/// A framebuffer we own.
pub struct Framebuffer {
    info: FramebufferInfo,
}

impl Framebuffer {
    /// Wraps the framebuffer the firmware allocated.
    ///
    /// # Safety
    /// `info` must describe a 32-bit framebuffer that is mapped (non-cacheable) and written by
    /// nothing else.
    pub unsafe fn new(info: FramebufferInfo) -> Self {
        Self { info }
    }

    /// Its geometry.
    pub fn info(&self) -> &FramebufferInfo {
        &self.info
    }

    fn row(&mut self, y: usize) -> &mut [u32] {
        let width = self.info.width as usize;
        // SAFETY: `new`'s contract: the buffer is ours and `y < height` (callers check), so the
        // row lies inside the allocation.
        unsafe { core::slice::from_raw_parts_mut((self.info.base + y * self.info.pitch) as *mut u32, width) }
    }

    /// Fills the rectangle `(x, y, w, h)` (clipped to the screen) with `color`.
    pub fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, color: u32) {
        let (width, height) = (self.info.width as usize, self.info.height as usize);
        let (x_end, y_end) = ((x + w).min(width), (y + h).min(height));
        for row in y.min(height)..y_end {
            self.row(row)[x.min(width)..x_end].fill(color);
        }
    }

    /// Draws character `byte` with its top-left corner at pixel `(x, y)`.
    pub fn draw_glyph(&mut self, x: usize, y: usize, byte: u8, foreground: u32, background: u32) {
        let glyph = font::glyph(byte);
        let (width, height) = (self.info.width as usize, self.info.height as usize);
        for (dy, bits) in glyph.iter().enumerate() {
            if y + dy >= height {
                break;
            }
            let row = self.row(y + dy);
            for dx in 0..font::WIDTH {
                if x + dx < width {
                    row[x + dx] = if bits & (0x80 >> dx) != 0 { foreground } else { background };
                }
            }
        }
    }

    /// Moves the pixel rows `[from, from + count)` to start at row `to`.
    pub fn move_rows(&mut self, from: usize, to: usize, count: usize) {
        let height = self.info.height as usize;
        if from + count > height || to + count > height {
            return;
        }
        let pitch = self.info.pitch;
        let base = self.info.base;
        // SAFETY: both ranges lie inside the framebuffer (checked above); `copy` allows overlap.
        unsafe {
            core::ptr::copy((base + from * pitch) as *const u8, (base + to * pitch) as *mut u8, count * pitch);
        }
    }
}
