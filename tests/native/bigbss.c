/* bigbss.c: a native test blob with a large bss (6 MiB and a bit, over several 1 MiB sections),
 * for the zero-on-first-touch test (tests/tests/offload.rs,
 * `native_memory_is_zeroed_on_first_touch`). The kernel maps a job's bss pages only when they are
 * first touched, zeroing them then; these modes check that nothing of an earlier job, nor of the
 * heap block's earlier contents, shows through, and that what the kernel writes is kept.
 * Input: one mode, then for `inread` a payload after a space.
 *   fill:   writes a marker over the whole bss; returns 0.
 *   peek:   reads the last word of the bss first (the far end, before anything else touched it),
 *           then every word from the start; returns the count of non-zero words.
 *   both:   fill, then peek in the same job (a non-zero count: the probe is not blind).
 *   out:    output_write of the last 4 KiB of the bss, never touched by this job: 4096 zeros.
 *   log:    jos_log of 48 bytes at the end of the bss, never touched: a line of 48 NULs.
 *   inread: input_read of the whole input into a buffer 1 MiB before the end of the bss, never
 *           touched; then reads the buffer and the rest of its page back and writes the input
 *           part as output (the host compares) and returns the count of non-zero bytes after it.
 *   exec:   jumps to the last page of the bss, never touched: a prefetch abort (translation),
 *           the job ends in Trap (its bss is never executable, committed or not). */
#include "jos.h"

#define BSS_WORDS ((6 * 1024 * 1024 + 1000) / 4)

static volatile jos_u32 big[BSS_WORDS];

static int same(const char *text, int length, const char *word) {
    int i = 0;
    for (; word[i]; i++)
        if (i >= length || text[i] != word[i]) return 0;
    return i == length || text[i] == ' ';
}

static void fill(void) {
    for (int i = 0; i < BSS_WORDS; i++) big[i] = 0xC3A55A3Cu ^ (jos_u32)i;
}

static int peek(void) {
    int found = big[BSS_WORDS - 1] != 0;
    for (int i = 0; i < BSS_WORDS; i++) found += big[i] != 0;
    return found;
}

int run(void) {
    char text[64];
    int length = jos_input_read(text, sizeof text, 0);
    if (length < 0) return length;
    if (same(text, length, "fill")) {
        fill();
        return 0;
    }
    if (same(text, length, "peek")) return peek();
    if (same(text, length, "both")) {
        fill();
        return peek();
    }
    if (same(text, length, "out")) return jos_output_write((const void *)&big[BSS_WORDS - 1024], 4096);
    if (same(text, length, "log")) return jos_log(JOS_LOG_INFO, (const char *)&big[BSS_WORDS - 12], 48);
    if (same(text, length, "inread")) {
        volatile jos_u8 *buffer = (volatile jos_u8 *)&big[BSS_WORDS - 1024 * 1024 / 4];
        int total = 0;
        for (;;) {
            int count = jos_input_read((void *)(buffer + total), 4096, (jos_size)total);
            if (count < 0) return count;
            if (count == 0) break;
            total += count;
        }
        int rest = 0;
        for (int i = total; i < total + 4096; i++) rest += buffer[i] != 0;
        int written = jos_output_write((const void *)buffer, (jos_size)total);
        return written < 0 ? written : rest;
    }
    if (same(text, length, "exec")) return ((int (*)(void))(jos_size)&big[BSS_WORDS - 1024])();
    return -1000;
}
