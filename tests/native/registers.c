/* registers.c: a native test blob for preemption (tests/tests/offload.rs). Input: ROUNDS as
 * decimal text. Each round dives 64 calls deep with 512 bytes of stack per call (the job stack
 * holds them across preemptions) and runs a loop that keeps eight doubles in VFP registers; the
 * device preempts it at every 1 ms frame tick, so a register or stack word lost on the way shows
 * in the output. Output: the integer checksum (u32 LE) and the eight doubles (f64 LE). The test
 * computes the same in Rust. */
#include "jos.h"

static jos_u32 dive(jos_u32 depth, jos_u32 seed) {
    volatile jos_u32 buffer[128];
    for (jos_u32 i = 0; i < 128; i++) buffer[i] = seed * 2654435761u + i + depth;
    jos_u32 sum = depth != 0 ? dive(depth - 1, seed ^ (depth * 40503u)) : 0;
    for (jos_u32 i = 0; i < 128; i++) sum = sum * 31u + buffer[i];
    return sum;
}

int run(void) {
    char text[16];
    int length = jos_input_read_all(text, sizeof text);
    jos_u32 rounds = 0;
    for (int i = 0; i < length && text[i] >= '0' && text[i] <= '9' && rounds < 1000000; i++) {
        rounds = rounds * 10 + (jos_u32)(text[i] - '0');
    }
    jos_u32 check = 0;
    double a = 1.0, b = 2.0, c = 3.0, d = 4.0, e = 5.0, f = 6.0, g = 7.0, h = 8.0;
    for (jos_u32 round = 0; round < rounds; round++) {
        check = check * 7u + dive(64, round);
        for (jos_u32 i = 0; i < 2000; i++) {
            a = a * 0.75 + b;
            b = b * 0.5 + c;
            c = c * 0.25 + d;
            d = d * 0.125 + e;
            e = e * 0.875 + f;
            f = f * 0.625 + g;
            g = g * 0.375 + h;
            h = h * 0.0625 + (double)(i & 7);
        }
    }
    double values[8] = {a, b, c, d, e, f, g, h};
    if (jos_output_write(&check, sizeof check) < 0) return -JOS_ELIMIT;
    return jos_output_write(values, sizeof values) < 0 ? -JOS_ELIMIT : 0;
}
