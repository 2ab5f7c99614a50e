/* check.c: checks the SDK's jos-rt.c (memcpy, memmove, memset, memcmp) on the host against
 * byte-by-byte references, for every alignment of both pointers and every length up to 96.
 * jos-rt.c is included with its functions renamed, so the host's libc keeps its own. */
#include <stdint.h>
#include <stdio.h>

/* jos.h refuses host targets; give jos-rt.c the types it needs instead. */
#define JOS_H
typedef unsigned int jos_u32;
typedef unsigned char jos_u8;
typedef __SIZE_TYPE__ jos_size;

#define memcpy jos_rt_memcpy
#define memmove jos_rt_memmove
#define memset jos_rt_memset
#define memcmp jos_rt_memcmp
#include "jos-rt.c"

enum { SPAN = 160, MAX_LENGTH = 96 };

static int failures;

static void fail(const char *what, int to, int from, int length) {
    if (failures++ < 10) printf("FAIL %s: to+%d from+%d length %d\n", what, to, from, length);
}

static void fill_pattern(jos_u8 *buffer, int seed) {
    for (int i = 0; i < SPAN; i++) buffer[i] = (jos_u8)(i * 7 + seed * 13 + 1);
}

int main(void) {
    /* Word-aligned buffers, so the offsets below are the alignments. */
    static uint32_t source_words[SPAN / 4], target_words[SPAN / 4], expect_words[SPAN / 4];
    jos_u8 *source = (jos_u8 *)source_words, *target = (jos_u8 *)target_words, *expect = (jos_u8 *)expect_words;
    for (int to = 0; to < 8; to++) {
        for (int from = 0; from < 8; from++) {
            for (int length = 0; length <= MAX_LENGTH; length++) {
                fill_pattern(source, 1);
                fill_pattern(target, 2);
                fill_pattern(expect, 2);
                for (int i = 0; i < length; i++) expect[to + i] = source[from + i];
                if (jos_rt_memcpy(target + to, source + from, length) != target + to) fail("memcpy result", to, from, length);
                for (int i = 0; i < SPAN; i++) if (target[i] != expect[i]) { fail("memcpy", to, from, length); break; }

                /* memmove within one buffer, both directions. */
                fill_pattern(target, 3);
                fill_pattern(expect, 3);
                for (int i = 0; i < length; i++) expect[to + 8 + i] = target[from + i];
                jos_rt_memmove(target + to + 8, target + from, length);
                for (int i = 0; i < SPAN; i++) if (target[i] != expect[i]) { fail("memmove forward", to, from, length); break; }
                fill_pattern(target, 4);
                fill_pattern(expect, 4);
                for (int i = 0; i < length; i++) expect[to + i] = target[from + 8 + i];
                jos_rt_memmove(target + to, target + from + 8, length);
                for (int i = 0; i < SPAN; i++) if (target[i] != expect[i]) { fail("memmove backward", to, from, length); break; }

                if (from == 0) {
                    fill_pattern(target, 5);
                    fill_pattern(expect, 5);
                    for (int i = 0; i < length; i++) expect[to + i] = 0xa5;
                    if (jos_rt_memset(target + to, 0x3a5, length) != target + to) fail("memset result", to, 0, length);
                    for (int i = 0; i < SPAN; i++) if (target[i] != expect[i]) { fail("memset", to, 0, length); break; }
                }

                fill_pattern(target, 1);
                int same = jos_rt_memcmp(target + from, source + from, length);
                if (same != 0) fail("memcmp equal", to, from, length);
                if (length > 0) {
                    target[from + length - 1] ^= 0x80;
                    int sign = jos_rt_memcmp(target + from, source + from, length);
                    int want = target[from + length - 1] < source[from + length - 1] ? -1 : 1;
                    if (sign != want) fail("memcmp order", to, from, length);
                }
            }
        }
    }
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("jos-rt: all alignments and lengths agree\n");
    return 0;
}
