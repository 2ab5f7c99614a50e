//! The boot self-test: checks that the timer interrupt fires, the heap does an allocation round
//! trip with correct accounting and counts a failed allocation, the RNG produces varying data, the mailbox answers, SWIs return
//! and the MMU is on. Prints one line: `self-test: PASS` or `self-test: FAIL (<what>)`.

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use jos_kcore::drivers::RandomSource;
use jos_kcore::text::Line;

use crate::board::bcm2835::timer::Channel;
use crate::board::bcm2835::{IRQ, MAILBOX, RNG, TIMER};

static TEST_TICKS: AtomicU32 = AtomicU32::new(0);

fn on_test_tick() {
    TIMER.acknowledge(Channel::Three);
    TEST_TICKS.fetch_add(1, Ordering::Relaxed);
}

/// The timer's compare-3 interrupt arrives after it was set 2 ms ahead, and not before (the
/// deadline is generous: QEMU's guest clock follows the host's, and a busy host stalls it).
fn timer_interrupt() -> bool {
    const AHEAD: u32 = 2000;
    const DEADLINE: u32 = 500_000;
    TEST_TICKS.store(0, Ordering::Relaxed);
    let armed = TIMER.arm_in(Channel::Three, AHEAD).wrapping_sub(AHEAD);
    if IRQ.register(Channel::Three.irq(), on_test_tick).is_err() {
        return false;
    }
    let mut fired_after = None;
    // Busy-wait with IRQs open (no WFI: nothing else would wake the core once the one interrupt
    // has been taken, and the deadline must still be checked).
    crate::arch::enable_interrupts();
    loop {
        let elapsed = TIMER.now_low().wrapping_sub(armed);
        if TEST_TICKS.load(Ordering::Relaxed) > 0 {
            fired_after = Some(elapsed);
            break;
        }
        if elapsed > DEADLINE {
            break;
        }
        core::hint::spin_loop();
    }
    crate::arch::disable_interrupts();
    let _ = IRQ.unregister(Channel::Three.irq());
    match fired_after {
        Some(after) if after >= AHEAD - 50 => true,
        Some(after) => {
            crate::error!("self-test: timer interrupt came {after} us after arming, before the {AHEAD} us compare");
            false
        }
        None => {
            crate::error!(
                "self-test: no timer interrupt within {DEADLINE} us (match pending: {})",
                TIMER.matched(Channel::Three)
            );
            false
        }
    }
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

/// An allocation larger than the heap fails with a null pointer and is counted, not a hang.
fn allocation_failure() -> bool {
    let before = crate::memory::heap::HEAP.stats();
    let Ok(layout) = core::alloc::Layout::from_size_align(before.size + 4096, 8) else { return false };
    // SAFETY: `layout` has a non-zero size; the result is only compared with null (a non-null
    // block would be freed at once with the same layout).
    let pointer = crate::memory::heap::with_quiet_failures(|| unsafe { alloc::alloc::alloc(layout) });
    if !pointer.is_null() {
        // SAFETY: allocated just above with `layout`.
        unsafe { alloc::alloc::dealloc(pointer, layout) };
        return false;
    }
    let after = crate::memory::heap::HEAP.stats();
    after.failures == before.failures + 1 && after.last_failed_size == layout.size() && after.used == before.used
}

/// Eight words from the RNG are not all the same.
fn rng() -> bool {
    let mut words = [0u32; 8];
    for word in &mut words {
        match RandomSource::next_u32(&RNG) {
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

/// The MMU is on, maps the kernel, DMA region and peripherals at their own addresses, and
/// leaves every stack guard page unmapped (and the null page, when the vectors are behind VBAR).
fn mmu() -> bool {
    use crate::arch::mmu::{enabled, translate};
    let identity = |address: usize| translate(address) == Some(address);
    let vbar = crate::arch::exceptions::vectors_behind_vbar();
    enabled()
        && (!vbar || (translate(0).is_none() && translate(0xFFC).is_none()))
        && identity(crate::memory::layout::kernel_start())
        && identity(jos_kcore::memory_map::DMA_BASE + 0x123)
        && identity(crate::board::bcm2835::PL011_BASE)
        && crate::memory::layout::guard_pages()
            .iter()
            .all(|&(start, end)| translate(start).is_none() && translate(end - 4).is_none())
        && translate(0xF000_0000).is_none()
        && permissions()
}

/// The page permissions (W^X): the kernel's code and read-only data are not writable, even for
/// the kernel; its data is; user mode may write only the job stack (its job region is mapped
/// only while a job runs), nothing of the kernel's image, stacks, DMA region or peripherals.
fn permissions() -> bool {
    use crate::arch::mmu::{kernel_writable, user_writable};
    use crate::memory::layout;
    let (stubs, _) = layout::user_stubs();
    let (job_bottom, job_top) = layout::job_stack();
    let (_, svc_bottom, _) = layout::stacks()[4];
    let kernel_only = [layout::kernel_start(), stubs, layout::text_end(), layout::rw_start(), svc_bottom];
    !kernel_writable(layout::kernel_start())
        && !kernel_writable(stubs)
        && !kernel_writable(layout::text_end())
        && kernel_writable(layout::rw_start())
        && kernel_writable(svc_bottom)
        && kernel_only.iter().all(|&address| !user_writable(address))
        && !user_writable(jos_kcore::memory_map::DMA_BASE)
        && !user_writable(jos_kcore::memory_map::HEAP_BASE)
        && !user_writable(crate::board::bcm2835::PL011_BASE)
        && user_writable(job_bottom)
        && user_writable(job_top - 4)
}

/// A named check.
type Check = (&'static str, fn() -> bool);

/// Runs every check, prints the verdict line and returns whether all passed.
pub fn run() -> bool {
    let checks: [Check; 7] = [
        ("timer-irq", timer_interrupt),
        ("allocator", allocator),
        ("alloc-failure", allocation_failure),
        ("rng", rng),
        ("mailbox", mailbox),
        ("swi", software_interrupt),
        ("mmu", mmu),
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
