/* bind_then.c: a native test blob that binds a job UDP port, then ends in the way its input
 * names, so the test sees the socket freed however a native job ends (tests/tests/offload.rs).
 * Input: "PORT MODE" with MODE one of: spin (never ends: deadline or abort), trap (reads an
 * unmapped address), exit (calls exit(100 + handle)), return (returns the handle), deep
 * (recurses until the job stack's guard page stops it: a data abort). A failed bind returns its
 * (negative) error code at once. */
#include "jos.h"

static jos_u32 deep(jos_u32 depth) {
    volatile jos_u32 buffer[256];
    buffer[depth & 255] = depth;
    return deep(depth + 1) + buffer[depth & 255];
}

int run(void) {
    char text[32];
    int length = jos_input_read_all(text, sizeof text);
    if (length < 0) return -JOS_EINVAL;
    jos_u32 port = 0;
    int i = 0;
    for (; i < length && text[i] >= '0' && text[i] <= '9' && port < 65536; i++) port = port * 10 + (jos_u32)(text[i] - '0');
    char mode = i + 1 < length ? text[i + 1] : 'r';
    int handle = jos_udp_bind(port);
    if (handle < 0) return handle;
    jos_info("bound");
    switch (mode) {
    case 's':
        for (;;) __asm__ volatile("" ::: "memory");
    case 't':
        return (int)*(volatile jos_u32 *)0xF0000000u;
    case 'e':
        jos_exit(100 + handle);
    case 'd':
        return (int)deep(0);
    default:
        return handle;
    }
}
