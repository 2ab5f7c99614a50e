/* fib.c: the N-th Fibonacci number (fib(0) = 0, fib(1) = 1), computed iteratively.
 * Input: N as decimal text (default 50), at most 93 (the largest that fits in 64 bits).
 * Output: fib(N) in decimal and a newline. */
#include "jos.h"

int run(void) {
    char text[16];
    int length = jos_input_read_all(text, sizeof text);
    if (length < 0) {
        jos_error("fib: expected N as decimal text");
        return -JOS_EINVAL;
    }
    jos_u32 n = 50;
    if (length > 0) {
        n = 0;
        for (int i = 0; i < length; i++) {
            if (text[i] == '\n' && i == length - 1) break;
            if (text[i] < '0' || text[i] > '9' || n > 93) {
                jos_error("fib: expected N as decimal text, 0 to 93");
                return -JOS_EINVAL;
            }
            n = n * 10 + (jos_u32)(text[i] - '0');
        }
    }
    if (n > 93) {
        jos_error("fib: N above 93 does not fit in 64 bits");
        return -JOS_EINVAL;
    }
    jos_u64 current = 0, next = 1;
    for (jos_u32 i = 0; i < n; i++) {
        jos_u64 sum = current + next;
        current = next;
        next = sum;
    }
    /* Decimal digits without 64-bit division helpers: repeated subtraction of powers of ten. */
    static const jos_u64 POWERS[20] = {
        10000000000000000000ull, 1000000000000000000ull, 100000000000000000ull, 10000000000000000ull,
        1000000000000000ull, 100000000000000ull, 10000000000000ull, 1000000000000ull, 100000000000ull,
        10000000000ull, 1000000000ull, 100000000ull, 10000000ull, 1000000ull, 100000ull, 10000ull,
        1000ull, 100ull, 10ull, 1ull,
    };
    char out[21];
    int used = 0;
    for (int p = 0; p < 20; p++) {
        char digit = '0';
        while (current >= POWERS[p]) {
            current -= POWERS[p];
            digit++;
        }
        if (digit != '0' || used > 0 || p == 19) out[used++] = digit;
    }
    out[used++] = '\n';
    return jos_output_write(out, (jos_size)used) < 0 ? -JOS_ELIMIT : 0;
}
