//! Text console layout: where each character of a byte stream lands on a grid of character
//! cells, with line wrapping and scrolling. Drawing is left to a [`Surface`] (the framebuffer in
//! the kernel, a character grid in the tests).

/// Something that shows character cells.
pub trait Surface {
    /// Draws `byte` in cell `(column, row)`.
    fn draw(&mut self, column: usize, row: usize, byte: u8);
    /// Moves rows `[first + 1, end)` up by one row (row `first` is lost).
    fn scroll_up(&mut self, first: usize, end: usize);
    /// Blanks row `row`.
    fn clear_row(&mut self, row: usize);
}

/// The screen's colours as 0x00RRGGBB, shared by the kernel and the host test that checks a
/// screendump.
pub mod colors {
    /// Status panel background.
    pub const STATUS_BACKGROUND: u32 = 0x0010_2850;
    /// Status panel text.
    pub const STATUS_FOREGROUND: u32 = 0x00FF_FFFF;
    /// Banner text (row 0 of the panel).
    pub const BANNER_FOREGROUND: u32 = 0x00FF_D040;
    /// Console background.
    pub const CONSOLE_BACKGROUND: u32 = 0x0000_0000;
    /// Console text.
    pub const CONSOLE_FOREGROUND: u32 = 0x00C0_C0C0;
    /// Console text for errors and faults.
    pub const ERROR_FOREGROUND: u32 = 0x00FF_5050;
}

/// Rows of the status panel at the top of the screen; the console scrolls below it.
pub const STATUS_ROWS: usize = 10;
/// Status panel row of the banner.
pub const BANNER_ROW: usize = 0;
/// Status panel row of the self-test verdict.
pub const VERDICT_ROW: usize = 6;

/// Tab stops every this many columns.
pub const TAB: usize = 8;

/// The cursor and the scrolling window `[top, rows)` of a text console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextLayout {
    columns: usize,
    rows: usize,
    top: usize,
    column: usize,
    row: usize,
}

impl TextLayout {
    /// A console of `columns` x `rows` cells whose scrolling window starts at row `top` (rows
    /// above it are left to a status panel). The cursor starts at `(0, top)`. Degenerate sizes
    /// are raised to one cell, and `top` is kept inside the grid.
    pub fn new(columns: usize, rows: usize, top: usize) -> Self {
        let rows = rows.max(1);
        let top = top.min(rows - 1);
        Self { columns: columns.max(1), rows, top, column: 0, row: top }
    }

    /// The cursor as `(column, row)`.
    pub fn cursor(&self) -> (usize, usize) {
        (self.column, self.row)
    }

    /// Grid size as `(columns, rows)`.
    pub fn size(&self) -> (usize, usize) {
        (self.columns, self.rows)
    }

    /// Lays out `bytes`: printable bytes are drawn and advance the cursor, wrapping at the right
    /// edge; `\n` starts a new line, `\r` returns to column 0, `\t` moves to the next tab stop,
    /// backspace moves one column left. Reaching below the last row scrolls the window.
    pub fn write<S: Surface>(&mut self, surface: &mut S, bytes: &[u8]) {
        for &byte in bytes {
            match byte {
                b'\n' => self.newline(surface),
                b'\r' => self.column = 0,
                b'\t' => {
                    let next = (self.column / TAB + 1) * TAB;
                    if next >= self.columns {
                        self.newline(surface);
                    } else {
                        self.column = next;
                    }
                }
                0x08 => self.column = self.column.saturating_sub(1),
                _ => {
                    if self.column >= self.columns {
                        self.newline(surface);
                    }
                    surface.draw(self.column, self.row, byte);
                    self.column += 1;
                }
            }
        }
    }

    fn newline<S: Surface>(&mut self, surface: &mut S) {
        self.column = 0;
        if self.row + 1 < self.rows {
            self.row += 1;
        } else {
            surface.scroll_up(self.top, self.rows);
            surface.clear_row(self.rows - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Grid {
        cells: Vec<Vec<u8>>,
    }

    impl Grid {
        fn new(columns: usize, rows: usize) -> Self {
            Self { cells: vec![vec![b' '; columns]; rows] }
        }
        fn line(&self, row: usize) -> String {
            String::from_utf8(self.cells[row].clone()).unwrap().trim_end().to_string()
        }
    }

    impl Surface for Grid {
        fn draw(&mut self, column: usize, row: usize, byte: u8) {
            self.cells[row][column] = byte;
        }
        fn scroll_up(&mut self, first: usize, end: usize) {
            for row in first..end - 1 {
                self.cells[row] = self.cells[row + 1].clone();
            }
        }
        fn clear_row(&mut self, row: usize) {
            self.cells[row].fill(b' ');
        }
    }

    #[test]
    fn wraps_at_the_right_edge() {
        let mut grid = Grid::new(4, 3);
        let mut layout = TextLayout::new(4, 3, 0);
        layout.write(&mut grid, b"abcdef");
        assert_eq!(grid.line(0), "abcd");
        assert_eq!(grid.line(1), "ef");
        assert_eq!(layout.cursor(), (2, 1));
        // Exactly filling a line does not produce an empty line.
        layout.write(&mut grid, b"gh\nX");
        assert_eq!(grid.line(1), "efgh");
        assert_eq!(grid.line(2), "X");
    }

    #[test]
    fn scrolls_only_the_window() {
        let mut grid = Grid::new(8, 4);
        grid.cells[0] = b"STATUS  ".to_vec();
        let mut layout = TextLayout::new(8, 4, 1);
        layout.write(&mut grid, b"one\ntwo\nthree\nfour");
        assert_eq!(grid.line(0), "STATUS", "the status row never scrolls");
        assert_eq!(grid.line(1), "two");
        assert_eq!(grid.line(2), "three");
        assert_eq!(grid.line(3), "four");
        assert_eq!(layout.cursor(), (4, 3));
    }

    #[test]
    fn control_characters() {
        let mut grid = Grid::new(20, 2);
        let mut layout = TextLayout::new(20, 2, 0);
        layout.write(&mut grid, b"abc\rX\tY\x08Z");
        assert_eq!(grid.line(0), "Xbc     Z");
        let mut layout = TextLayout::new(10, 2, 0);
        layout.write(&mut grid, b"\t\tQ");
        assert_eq!(layout.cursor(), (1, 1), "a tab past the last stop wraps");
    }

    #[test]
    fn degenerate_sizes() {
        let layout = TextLayout::new(0, 0, 5);
        assert_eq!(layout.size(), (1, 1));
        assert_eq!(layout.cursor(), (0, 0));
        let mut grid = Grid::new(1, 1);
        let mut layout = layout;
        layout.write(&mut grid, b"abc");
        assert_eq!(grid.line(0), "c");
    }
}
