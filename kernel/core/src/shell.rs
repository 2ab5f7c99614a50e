//! The console shell's line editor: assembles the bytes the UART received into a command line,
//! echoing printable characters and the line end to the [`SerialPort`]. The kernel's shell
//! service (`services::shell`) feeds it from the UART's receive ring and runs each line.

use core::fmt::Write;

use crate::drivers::SerialPort;
use crate::text::Line;

/// Longest command line kept; what is typed beyond it is echoed but dropped.
pub const LINE_MAX: usize = 80;

/// A command line being typed.
#[derive(Default)]
pub struct LineEditor {
    line: Line<LINE_MAX>,
}

impl LineEditor {
    /// An empty line.
    pub const fn new() -> Self {
        Self { line: Line::new() }
    }

    /// Takes one received byte. CR or LF ends the line: it echoes CR LF and returns the line
    /// (trimmed of spaces and tabs at both ends), leaving the editor empty. Backspace and DEL
    /// drop the last character (no echo); printable ASCII is echoed and appended; other bytes
    /// (control characters, anything above 0x7E) are ignored.
    pub fn feed(&mut self, byte: u8, echo: &impl SerialPort) -> Option<Line<LINE_MAX>> {
        match byte {
            b'\r' | b'\n' => {
                echo.write_bytes(b"\r\n");
                let mut done = Line::new();
                done.set(format_args!("{}", self.line.as_str().trim_matches([' ', '\t'])));
                self.line.clear();
                Some(done)
            }
            0x08 | 0x7F => {
                let text = self.line;
                let mut shorter = text.as_str().chars();
                shorter.next_back();
                self.line.set(format_args!("{}", shorter.as_str()));
                None
            }
            0x20..=0x7E => {
                echo.write_byte(byte);
                let _ = self.line.write_char(char::from(byte));
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use std::vec::Vec;

    /// A serial port that records what was written and has nothing to read.
    #[derive(Default)]
    struct Recorder(RefCell<Vec<u8>>);

    impl SerialPort for Recorder {
        fn write_byte(&self, byte: u8) {
            self.0.borrow_mut().push(byte);
        }

        fn read_byte(&self) -> Option<u8> {
            None
        }
    }

    fn type_in(editor: &mut LineEditor, port: &Recorder, text: &[u8]) -> Vec<std::string::String> {
        text.iter().filter_map(|&byte| editor.feed(byte, port)).map(|line| line.as_str().into()).collect()
    }

    #[test]
    fn a_line_ends_at_cr_or_lf_and_is_echoed() {
        let port = Recorder::default();
        let mut editor = LineEditor::new();
        assert_eq!(type_in(&mut editor, &port, b"  help\t\rstatus\n"), ["help", "status"]);
        assert_eq!(port.0.borrow().as_slice(), b"  help\r\nstatus\r\n");
    }

    #[test]
    fn backspace_and_del_remove_the_last_character_without_echo() {
        let port = Recorder::default();
        let mut editor = LineEditor::new();
        assert_eq!(type_in(&mut editor, &port, b"helx\x08p\x7fxx\x08\x08p\r"), ["help"]);
        assert_eq!(port.0.borrow().as_slice(), b"helxpxxp\r\n");
        // Backspace on an empty line does nothing.
        assert_eq!(type_in(&mut editor, &port, b"\x08\x08\r"), [""]);
    }

    #[test]
    fn control_and_high_bytes_are_ignored() {
        let port = Recorder::default();
        let mut editor = LineEditor::new();
        assert_eq!(type_in(&mut editor, &port, b"le\x1b\x00\xc3\xa9d\r"), ["led"]);
        assert_eq!(port.0.borrow().as_slice(), b"led\r\n");
    }

    #[test]
    fn a_long_line_is_cut_at_the_limit() {
        let port = Recorder::default();
        let mut editor = LineEditor::new();
        let mut typed = [b'a'; LINE_MAX + 20].to_vec();
        typed.push(b'\n');
        let lines = type_in(&mut editor, &port, &typed);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), LINE_MAX);
        // The next line starts empty.
        assert_eq!(type_in(&mut editor, &port, b"ok\n"), ["ok"]);
    }
}
