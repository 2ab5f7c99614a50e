/* md5.c: the seed's compute benchmark as a static Linux program (the Linux baseline).
 *
 * Usage: md5 N [RUNS]. Computes MD5 (RFC 1321) of the 3-byte string "jon" N times, RUNS times
 * (default 1), and prints one line per run:
 *   md5: n=N run=R cpu_us=C exec_us=E digest=HEX
 * cpu_us is the process's own CPU time spent in the run (getrusage, user + system), exec_us the
 * elapsed time from the run's start to its result (clock_gettime(CLOCK_MONOTONIC)). The MD5 code
 * is the same algorithm and shape as guest-examples/c/md5.c, the jos guest. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static const uint32_t SINES[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const uint8_t SHIFTS[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static uint32_t rotate_left(uint32_t value, unsigned count) { return (value << count) | (value >> (32 - count)); }

/* One 64-byte block into the state (RFC 1321, section 3.4). */
static void md5_block(uint32_t state[4], const uint8_t block[64]) {
    uint32_t words[16];
    for (int i = 0; i < 16; i++) {
        words[i] = (uint32_t)block[4 * i] | (uint32_t)block[4 * i + 1] << 8 | (uint32_t)block[4 * i + 2] << 16 |
                   (uint32_t)block[4 * i + 3] << 24;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (b & d) | (c & ~d);
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
        }
        uint32_t next = b + rotate_left(a + f + SINES[i] + words[g], SHIFTS[i]);
        a = d;
        d = c;
        c = b;
        b = next;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

/* MD5 of `length` bytes: padding with 0x80, zeros and the bit length (little-endian). */
static void md5(const uint8_t *message, size_t length, uint8_t digest[16]) {
    uint32_t state[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    size_t offset = 0;
    for (; offset + 64 <= length; offset += 64) md5_block(state, message + offset);
    uint8_t tail[128];
    size_t rest = length - offset;
    for (size_t i = 0; i < rest; i++) tail[i] = message[offset + i];
    tail[rest] = 0x80;
    size_t tail_length = rest < 56 ? 64 : 128;
    for (size_t i = rest + 1; i < tail_length - 8; i++) tail[i] = 0;
    uint64_t bits = (uint64_t)length * 8;
    for (int i = 0; i < 8; i++) tail[tail_length - 8 + i] = (uint8_t)(bits >> (8 * i));
    md5_block(state, tail);
    if (tail_length == 128) md5_block(state, tail + 64);
    for (int i = 0; i < 16; i++) digest[i] = (uint8_t)(state[i / 4] >> (8 * (i % 4)));
}

static uint64_t cpu_us(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (uint64_t)usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec +
           (uint64_t)usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
}

static uint64_t monotonic_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
}

static int parse_count(const char *text, unsigned long *out) {
    char *end;
    if (text[0] < '0' || text[0] > '9') return -1;
    *out = strtoul(text, &end, 10);
    return *end == '\0' ? 0 : -1;
}

int main(int argc, char **argv) {
    unsigned long count, runs = 1;
    if (argc < 2 || argc > 3 || parse_count(argv[1], &count) != 0 || (argc == 3 && parse_count(argv[2], &runs) != 0)) {
        fprintf(stderr, "usage: md5 N [RUNS]\n");
        return 2;
    }
    for (unsigned long run = 0; run < runs; run++) {
        uint64_t cpu0 = cpu_us(), start = monotonic_us();
        uint8_t digest[16] = {0};
        for (unsigned long round = 0; round < count; round++) {
            md5((const uint8_t *)"jon", 3, digest);
            /* The digest escapes through memory each round, so the loop is not folded away. */
            __asm__ volatile("" : : "r"(digest) : "memory");
        }
        char text[33];
        for (int i = 0; i < 16; i++) sprintf(text + 2 * i, "%02x", digest[i]);
        uint64_t exec = monotonic_us() - start, cpu = cpu_us() - cpu0;
        printf("md5: n=%lu run=%lu cpu_us=%llu exec_us=%llu digest=%s\n", count, run, (unsigned long long)cpu,
               (unsigned long long)exec, text);
        fflush(stdout);
    }
    return 0;
}
