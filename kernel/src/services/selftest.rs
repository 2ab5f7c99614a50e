//! The boot self-test: checks that the timer interrupt fires, the heap does an allocation round
//! trip with correct accounting, the RNG produces varying data, the mailbox answers, SWIs return
//! and the MMU is on. Prints one line: `self-test: PASS` or `self-test: FAIL (<what>)`.

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use jos_kcore::text::Line;

use crate::board::bcm2835::timer::Channel;
use crate::board::bcm2835::{IRQ, MAILBOX, RNG, TIMER};

static TEST_TICKS: AtomicU32 = AtomicU32::new(0);

fn on_test_tick() {
    TIMER.acknowledge(Channel::Three);
    TEST_TICKS.fetch_add(1, Ordering::Relaxed);
}

/// The timer's compare-3 interrupt arrives within 20 ms of being set 2 ms ahead, and not before.
fn timer_interrupt() -> bool {
    TEST_TICKS.store(0, Ordering::Relaxed);
    let armed = TIMER.now_low();
    TIMER.set_compare(Channel::Three, armed.wrapping_add(2000));
    if IRQ.register(Channel::Three.irq(), on_test_tick).is_err() {
        return false;
    }
    crate::arch::enable_interrupts();
    let mut fired_after = None;
    while TIMER.now_low().wrapping_sub(armed) < 20_000 {
        if TEST_TICKS.load(Ordering::Relaxed) > 0 {
            fired_after = Some(TIMER.now_low().wrapping_sub(armed));
            break;
        }
        crate::arch::wait_for_interrupt();
    }
    crate::arch::disable_interrupts();
    let _ = IRQ.unregister(Channel::Three.irq());
    matches!(fired_after, Some(after) if after >= 1900)
}

/// Allocates, checks and frees; the counters must come back to where they were.
fn allocator() -> bool {
    let before = crate::memory::heap::HEAP.stats();
    let ok = {
        let numbers: Vec<u32> = (0..1000).map(|n| n * 7).collect();
        let block = Box::new([0xA5u8; 4096]);
        let during = crate::memory::heap::HEAP.stats();
        numbers.iter().enumerate().all(|(n, &v)| v == n as u32 * 7)
            && block.iter().all(|&b| b == 0xA5)
            && during.used >= before.used + 4000 + 4096
    };
    let after = crate::memory::heap::HEAP.stats();
    ok && after.used == before.used && after.allocations > before.allocations && after.frees > before.frees
}

/// Eight words from the RNG are not all the same.
fn rng() -> bool {
    let mut words = [0u32; 8];
    for word in &mut words {
        match RNG.next_u32() {
            Ok(value) => *word = value,
            Err(_) => return false,
        }
    }
    words.iter().any(|&w| w != words[0])
}

/// The mailbox answers a revision query and reports an ARM memory size we can use.
fn mailbox() -> bool {
    let revision = MAILBOX.board_revision();
    let memory = MAILBOX.arm_memory();
    matches!((revision, memory), (Ok(_), Ok((0, size))) if size >= jos_kcore::memory_map::MIN_ARM_MEMORY)
}

/// A SWI comes back with the "unsupported" error code.
fn software_interrupt() -> bool {
    let before = crate::arch::exceptions::SWI_COUNT.load(Ordering::Relaxed);
    let result = crate::arch::exceptions::software_interrupt(7);
    result == jos_abi::ErrorCode::Unsupported.to_return() as u32
        && crate::arch::exceptions::SWI_COUNT.load(Ordering::Relaxed) == before + 1
}

/// Runs every check, prints the verdict line and returns whether all passed.
pub fn run() -> bool {
    let checks: [(&str, fn() -> bool); 6] = [
        ("timer-irq", timer_interrupt),
        ("allocator", allocator),
        ("rng", rng),
        ("mailbox", mailbox),
        ("swi", software_interrupt),
        ("mmu", crate::arch::mmu::enabled),
    ];
    let mut failed = Line::<80>::new();
    for (name, check) in checks {
        if !check() {
            use core::fmt::Write;
            let separator = if failed.as_str().is_empty() { "" } else { ", " };
            let _ = write!(failed, "{separator}{name}");
        }
    }
    let passed = failed.as_str().is_empty();
    if passed {
        crate::kprintln!("self-test: PASS");
        crate::services::status::set_verdict_line(format_args!("self-test PASS"));
    } else {
        crate::kprintln!("self-test: FAIL ({})", failed.as_str());
        crate::services::status::set_verdict_line(format_args!("self-test FAIL ({})", failed.as_str()));
        crate::services::screen::write_fmt(format_args!("self-test: FAIL ({})\n", failed.as_str()), true);
    }
    passed
}
