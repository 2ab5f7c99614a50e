/* yields.c: a test job for `yield` (tests/tests/capabilities.rs), built as wasm and as a native
 * blob. Input: "WORK YIELDS" as decimal text. Runs WORK iterations of a small integer loop and
 * calls `yield` YIELDS times spread over them (each yield gives the rest of the device's 1 ms
 * frame back, so the job takes at least YIELDS frames). Output: the loop's 32-bit result,
 * little-endian. */
#include "jos.h"

static jos_u32 parse_number(const char *text, int length, int *position) {
    jos_u32 value = 0;
    while (*position < length && text[*position] == ' ') (*position)++;
    while (*position < length && text[*position] >= '0' && text[*position] <= '9' && value < 100000000) {
        value = value * 10 + (jos_u32)(text[*position] - '0');
        (*position)++;
    }
    return value;
}

int run(void) {
    char text[32];
    int length = jos_input_read_all(text, sizeof text);
    if (length < 0) return -JOS_EINVAL;
    int position = 0;
    jos_u32 work = parse_number(text, length, &position);
    jos_u32 yields = parse_number(text, length, &position);
    jos_u32 every = yields != 0 && work >= yields ? work / yields : 1;
    jos_u32 value = 1, done = 0;
    for (jos_u32 i = 0; i < work; i++) {
        value = value * 1664525u + 1013904223u + i;
        if (done < yields && (i + 1) % every == 0) {
            jos_yield();
            done++;
        }
    }
    while (done < yields) {
        jos_yield();
        done++;
    }
    return jos_output_write(&value, sizeof value) < 0 ? -JOS_ELIMIT : 0;
}
