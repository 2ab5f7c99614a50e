//! The status screen: the panel at the top of the screen with the jos version, board, memory,
//! uptime, the executive's counters, and a network line and a job line that the network and
//! job services fill in with [`set_network_line`] and [`set_job_line`], the job area's
//! printed line (row 7, a job's `screen_print`, [`set_print_line`]), and the offload service's
//! guard rows (8 and 9: sessions and what the resource limits refused, [`set_sessions_line`],
//! [`set_limits_line`]). Refreshed by the executive's "status" task; the same text can be
//! printed on the console with [`print`].

use core::fmt;

use jos_kcore::console::STATUS_ROWS;
use jos_kcore::text::Line;

use crate::sync::IrqLock;

/// The banner on row 0 of the panel (the QEMU test looks for these pixels).
pub const BANNER: &str = concat!("jos ", env!("CARGO_PKG_VERSION"), " serverkernel - BCM2835");

const LINE: usize = 80;
/// Panel row of the offload sessions line.
const SESSIONS_ROW: usize = 8;
/// Panel row of the offload limits line.
const LIMITS_ROW: usize = 9;

struct Lines {
    board: Line<LINE>,
    network: Line<LINE>,
    job: Line<LINE>,
    print: Line<LINE>,
    verdict: Line<LINE>,
    sessions: Line<LINE>,
    limits: Line<LINE>,
}

static LINES: IrqLock<Lines> = IrqLock::new(Lines {
    board: Line::new(),
    network: Line::new(),
    job: Line::new(),
    print: Line::new(),
    verdict: Line::new(),
    sessions: Line::new(),
    limits: Line::new(),
});

/// Sets the board line (once, at boot).
pub fn set_board_line(args: fmt::Arguments) {
    LINES.lock(|lines| lines.board.set(args));
}

/// Sets the network line (for the network service).
pub fn set_network_line(args: fmt::Arguments) {
    LINES.lock(|lines| lines.network.set(args));
}

/// Sets the job line (for the job service).
pub fn set_job_line(args: fmt::Arguments) {
    LINES.lock(|lines| lines.job.set(args));
}

/// Sets the job area's printed line (a job's `screen_print`).
pub fn set_print_line(args: fmt::Arguments) {
    LINES.lock(|lines| lines.print.set(args));
}

/// Sets the sessions row (for the offload service: sessions in use and waiting, connections it
/// closed and why).
pub fn set_sessions_line(args: fmt::Arguments) {
    LINES.lock(|lines| lines.sessions.set(args));
}

/// Sets the limits row (for the offload service: probes and Hellos refused by the rate limits,
/// probes too short, echo loops dropped).
pub fn set_limits_line(args: fmt::Arguments) {
    LINES.lock(|lines| lines.limits.set(args));
}

/// Sets the self-test line.
pub fn set_verdict_line(args: fmt::Arguments) {
    LINES.lock(|lines| lines.verdict.set(args));
}

/// Builds the panel's rows.
fn rows() -> [Line<LINE>; STATUS_ROWS] {
    let mut rows = [Line::<LINE>::new(); STATUS_ROWS];
    let heap = crate::memory::heap::HEAP.stats();
    let executive = crate::services::executive::stats();
    let micros = crate::board::bcm2835::TIMER.now_micros();
    let seconds = micros / 1_000_000;
    rows[jos_kcore::console::BANNER_ROW].set(format_args!("{BANNER}"));
    let (board, network, job, print, verdict) = LINES
        .try_lock(|lines| (lines.board, lines.network, lines.job, lines.print, lines.verdict))
        .unwrap_or((Line::new(), Line::new(), Line::new(), Line::new(), Line::new()));
    let (sessions, limits) =
        LINES.try_lock(|lines| (lines.sessions, lines.limits)).unwrap_or((Line::new(), Line::new()));
    rows[1].set(format_args!("board    {}", board.as_str()));
    rows[2].set(format_args!(
        "memory   heap {} KiB used, {} KiB free, peak {} KiB, {} failures; dma {} KiB",
        heap.used / 1024,
        heap.free() / 1024,
        heap.peak / 1024,
        heap.failures,
        crate::dma::used() / 1024
    ));
    rows[3].set(format_args!(
        "uptime   {:02}:{:02}:{:02}.{:03}  frames {} overruns {} missed {}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        micros / 1000 % 1000,
        executive.frames,
        executive.overruns,
        executive.missed
    ));
    let network = if network.as_str().is_empty() { "not started" } else { network.as_str() };
    rows[4].set(format_args!("network  {network}"));
    let job = if job.as_str().is_empty() { "idle" } else { job.as_str() };
    rows[5].set(format_args!("job      {job}"));
    if !print.as_str().is_empty() {
        rows[7].set(format_args!("job says {}", print.as_str()));
    }
    rows[jos_kcore::console::VERDICT_ROW].set(format_args!("{}", verdict.as_str()));
    if !sessions.as_str().is_empty() {
        rows[SESSIONS_ROW].set(format_args!("sessions {}", sessions.as_str()));
        rows[LIMITS_ROW].set(format_args!("limits   {}", limits.as_str()));
    }
    rows
}

/// Redraws the panel (the executive's "status" task).
pub fn refresh() {
    for (index, row) in rows().iter().enumerate() {
        crate::services::screen::draw_status_row(index, row.as_str());
    }
}

/// Prints the panel's text on the console.
pub fn print() {
    for row in rows().iter().skip(1) {
        if !row.as_str().is_empty() {
            crate::kprintln!("status: {}", row.as_str());
        }
    }
}
