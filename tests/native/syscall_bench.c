/* syscall_bench.c: a native blob that makes one system call N times, for jos-bench's system-call
 * costs (tests/src/bin/jos-bench/offload.rs, `syscalls`). Input: "MODE N" with MODE one of:
 * null (input_len, the cheapest call), write (output_write of 64 bytes), recv (udp_recv on a
 * bound socket with nothing waiting: -JOS_EWOULDBLOCK). Returns 0, or the first unexpected
 * result. The cost per call is the slope of the job's CPU time over two values of N. */
#include "jos.h"

static jos_u8 buffer[64];

int run(void) {
    char text[32];
    int length = jos_input_read_all(text, sizeof text);
    if (length < 1) return -1;
    int i = 0;
    while (i < length && text[i] != ' ') i++;
    jos_u32 count = 0;
    for (i++; i < length && text[i] >= '0' && text[i] <= '9'; i++) count = count * 10 + (jos_u32)(text[i] - '0');
    char mode = text[0];
    if (mode == 'n') {
        for (jos_u32 n = 0; n < count; n++)
            if (jos_input_len() != length) return -2;
    } else if (mode == 'w') {
        for (jos_u32 n = 0; n < count; n++)
            if (jos_output_write(buffer, sizeof buffer) != 0) return -3;
    } else if (mode == 'r') {
        int handle = jos_udp_bind(7003);
        if (handle < 0) return handle;
        jos_endpoint from;
        for (jos_u32 n = 0; n < count; n++)
            if (jos_udp_recv(handle, buffer, sizeof buffer, &from) != -JOS_EWOULDBLOCK) return -4;
    } else {
        return -5;
    }
    return 0;
}
