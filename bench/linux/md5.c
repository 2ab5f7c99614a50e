/* md5.c: the seed's compute benchmark as a static Linux program (the Linux baseline).
 *
 * Usage: md5 N [RUNS]. Computes MD5 (RFC 1321) of the 3-byte string "jon" N times, RUNS times
 * (default 1), and prints one line per run:
 *   md5: n=N run=R cpu_us=C exec_us=E digest=HEX
 * cpu_us is the process's own CPU time spent in the run (getrusage, user + system), exec_us the
 * elapsed time from the run's start to its result (clock_gettime(CLOCK_MONOTONIC)). The MD5 code
 * is guest-examples/c/md5.c, the jos guest, included below. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* The MD5 code itself is the jos guest's, so jos and Linux run the same source. */
typedef uint8_t jos_u8;
typedef uint32_t jos_u32;
typedef uint64_t jos_u64;
typedef size_t jos_size;
#define JOS_MD5_CORE_ONLY
#include "../../guest-examples/c/md5.c"

static uint64_t cpu_us(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (uint64_t)usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec +
           (uint64_t)usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
}

/* The message, behind volatile objects so the compiler cannot see their values. */
static const uint8_t *volatile MESSAGE = (const uint8_t *)"jon";
static volatile size_t MESSAGE_LENGTH = 3;

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
        /* The string and its length are read at run time, as the jos guest reads them from its
         * input: with the constant "jon" GCC specialises md5() for 3 bytes (about 9% fewer
         * instructions per hash), which the jos build cannot do. */
        const uint8_t *message = MESSAGE;
        size_t message_length = MESSAGE_LENGTH;
        for (unsigned long round = 0; round < count; round++) {
            md5(message, message_length, digest);
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
