/* leftovers.c: a native test blob that looks for what an earlier job left behind, for the
 * isolation test between jobs (tests/tests/offload.rs, `hostile_native_blobs_cannot_harm_the_device`).
 * Input: one mode.
 *   dirty: fills 192 KiB of its stack below its frame, its bss and the rest of its last page
 *          (mapped, past the end of its memory) with a marker; returns 0.
 *   peek:  counts the non-zero words in those same places (stack below its SP, bss, the rest of
 *          the page) and returns the count: 0 unless an earlier job's data is visible.
 *   both:  dirty, then peek in the same job: the probe sees its own marker (a non-zero count),
 *          so a zero from `peek` means the memory was cleared, not that the probe is blind. */
#include "jos.h"

#define STACK_WORDS (192 * 1024 / 4)
#define PAGE 4096u

extern jos_u8 __jos_bss_start[], __jos_bss_end[];
/* A page of bss to dirty. */
static volatile jos_u32 scratch[1024];

static int same(const char *text, int length, const char *word) {
    int i = 0;
    for (; word[i]; i++)
        if (i >= length || text[i] != word[i]) return 0;
    return i == length;
}

static jos_u32 stack_pointer(void) {
    jos_u32 sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* The end of the blob's memory and the end of the page holding it (both mapped for the job). */
static volatile jos_u32 *tail_start(void) { return (volatile jos_u32 *)(((jos_size)__jos_bss_end + 3) & ~(jos_size)3); }
static volatile jos_u32 *tail_end(void) {
    return (volatile jos_u32 *)(((jos_size)__jos_bss_end + PAGE - 1) & ~(jos_size)(PAGE - 1));
}

static void __attribute__((noinline)) dirty(void) {
    /* Below the current SP: the stack a deeper call would use (a leaf, so nothing else writes it). */
    volatile jos_u32 *below = (volatile jos_u32 *)stack_pointer() - 64;
    for (int i = 1; i <= STACK_WORDS; i++) below[-i] = 0xA5A5A5A5u ^ (jos_u32)i;
    for (int i = 0; i < 1024; i++) scratch[i] = 0x5A5A5A5Au ^ (jos_u32)i;
    for (volatile jos_u32 *word = tail_start(); word < tail_end(); word++) *word = 0xC3C3C3C3u;
}

static int __attribute__((noinline)) peek(void) {
    volatile jos_u32 *below = (volatile jos_u32 *)stack_pointer() - 64;
    int found = 0;
    for (int i = 1; i <= STACK_WORDS; i++) found += below[-i] != 0;
    for (volatile jos_u32 *word = (volatile jos_u32 *)__jos_bss_start; word < tail_end(); word++) found += *word != 0;
    return found;
}

int run(void) {
    char text[16];
    int length = jos_input_read_all(text, sizeof text);
    if (length < 0) return length;
    if (same(text, length, "dirty")) {
        dirty();
        return 0;
    }
    if (same(text, length, "peek")) return peek();
    if (same(text, length, "both")) {
        dirty();
        return peek();
    }
    return -1;
}
