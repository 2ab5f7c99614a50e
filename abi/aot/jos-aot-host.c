/* jos-aot-host.c: the host side of `jos-cli run --local --aot`: the jos system calls and main().
 *
 * jos-cli compiles the module's wasm2c output, the glue, jos-aot-rt.c and this file with the
 * host's cc into one program and runs it as a child process:
 *     PROGRAM INPUT_FILE RESULT_FILE LOG_FILE MAX_OUTPUT RIGHTS
 * RIGHTS is a bit set: 1 = net (UDP sockets on 127.0.0.1), 2 = screen. The job's output goes to
 * standard output (at most MAX_OUTPUT bytes: a write past it answers -JOS_ELIMIT, writes nothing
 * and marks the job LimitExceeded, as in the interpreter). Log lines and screen lines go to
 * LOG_FILE as records: level (1 byte; 0 for a screen line), length (4 bytes, little-endian),
 * text. At the end RESULT_FILE gets one line: "ok EXIT_VALUE PEAK_PAGES", "trap CODE PEAK_PAGES"
 * (CODE: wasm_rt_trap_t) or "output EXIT_VALUE PEAK_PAGES" (output cap reached). jos-cli applies
 * the interpreter's log caps, measures time and kills the program at the deadline. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "jos-aot.h"

#define JOS_AOT_RIGHT_NET 1u
#define JOS_AOT_RIGHT_SCREEN 2u
#define JOS_AOT_MAX_SOCKETS 8

extern uint32_t jos_aot_peak_pages;

static unsigned char *input;
static size_t input_length;
static size_t output_used, output_cap;
static int output_overflow;
static unsigned rights;
static FILE *result_file, *log_file;
static int sockets[JOS_AOT_MAX_SOCKETS];

static void finish(const char *kind, long value) {
    fflush(stdout);
    fflush(log_file);
    fprintf(result_file, "%s %ld %u\n", kind, value, jos_aot_peak_pages);
    fclose(result_file);
    for (int i = 0; i < JOS_AOT_MAX_SOCKETS; i++) {
        if (sockets[i] >= 0) close(sockets[i]);
    }
    _exit(0);
}

void jos_aot_trap(wasm_rt_trap_t trap) { finish("trap", (long)trap); }

void jos_exit(int code) { finish(output_overflow ? "output" : "ok", code); }

int jos_input_len(void) { return (int)input_length; }

int jos_input_read(void *buffer, jos_size length, jos_size offset) {
    if (offset >= input_length) return 0;
    size_t count = input_length - offset < length ? input_length - offset : length;
    memcpy(buffer, input + offset, count);
    return (int)count;
}

int jos_output_write(const void *buffer, jos_size length) {
    if (output_used + length > output_cap) {
        output_overflow = 1;
        return -JOS_ELIMIT;
    }
    fwrite(buffer, 1, length, stdout);
    output_used += length;
    return 0;
}

static void log_record(unsigned char level, const char *text, jos_size length) {
    unsigned char header[5] = {level, (unsigned char)length, (unsigned char)(length >> 8),
                               (unsigned char)(length >> 16), (unsigned char)(length >> 24)};
    fwrite(header, 1, sizeof header, log_file);
    fwrite(text, 1, length, log_file);
}

int jos_log(jos_u32 level, const char *buffer, jos_size length) {
    log_record((unsigned char)level, buffer, length);
    return 0;
}

jos_i64 jos_time_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (jos_i64)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

int jos_random(void *buffer, jos_size length) {
    unsigned char *at = buffer;
    while (length > 0) {
        ssize_t got = getrandom(at, length, 0);
        if (got <= 0) return -JOS_EIO;
        at += got;
        length -= (size_t)got;
    }
    return 0;
}

int jos_yield(void) { return 0; }

int jos_screen_print(const char *buffer, jos_size length) {
    if (!(rights & JOS_AOT_RIGHT_SCREEN)) return -JOS_EPERM;
    log_record(0, buffer, length);
    return 0;
}

int jos_gpio_write(jos_u32 pin, jos_u32 level) {
    (void)pin, (void)level;
    return -JOS_EPERM;
}

int jos_gpio_read(jos_u32 pin) {
    (void)pin;
    return -JOS_EPERM;
}

int jos_udp_bind(jos_u32 port) {
    if (!(rights & JOS_AOT_RIGHT_NET)) return -JOS_EPERM;
    if (port > 65535) return -JOS_EINVAL;
    int handle = 0;
    while (handle < JOS_AOT_MAX_SOCKETS && sockets[handle] >= 0) handle++;
    if (handle == JOS_AOT_MAX_SOCKETS) return -JOS_ELIMIT;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -JOS_EIO;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        close(fd);
        return -JOS_EINUSE;
    }
    sockets[handle] = fd;
    return handle;
}

static int socket_of(int handle) {
    return handle >= 0 && handle < JOS_AOT_MAX_SOCKETS ? sockets[handle] : -1;
}

int jos_udp_send(int handle, const jos_endpoint *to, const void *buffer, jos_size length) {
    if (!(rights & JOS_AOT_RIGHT_NET)) return -JOS_EPERM;
    int fd = socket_of(handle);
    if (fd < 0) return -JOS_ENOTFOUND;
    struct sockaddr_in address = {.sin_family = AF_INET};
    memcpy(&address.sin_addr.s_addr, to->address, 4);
    address.sin_port = htons((uint16_t)(to->port[0] | to->port[1] << 8));
    if (sendto(fd, buffer, length, 0, (struct sockaddr *)&address, sizeof address) < 0) return -JOS_EIO;
    return 0;
}

int jos_udp_recv(int handle, void *buffer, jos_size length, jos_endpoint *from) {
    if (!(rights & JOS_AOT_RIGHT_NET)) return -JOS_EPERM;
    int fd = socket_of(handle);
    if (fd < 0) return -JOS_ENOTFOUND;
    struct sockaddr_in address;
    socklen_t address_length = sizeof address;
    ssize_t got = recvfrom(fd, buffer, length, MSG_TRUNC, (struct sockaddr *)&address, &address_length);
    if (got < 0) return -JOS_EWOULDBLOCK;
    memcpy(from->address, &address.sin_addr.s_addr, 4);
    uint16_t port = ntohs(address.sin_port);
    from->port[0] = (jos_u8)port;
    from->port[1] = (jos_u8)(port >> 8);
    from->zero[0] = from->zero[1] = 0;
    return (int)got;
}

int jos_udp_close(int handle) {
    if (!(rights & JOS_AOT_RIGHT_NET)) return -JOS_EPERM;
    int fd = socket_of(handle);
    if (fd < 0) return -JOS_ENOTFOUND;
    close(fd);
    sockets[handle] = -1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s INPUT RESULT LOG MAX_OUTPUT RIGHTS (run by jos-cli run --local --aot)\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < JOS_AOT_MAX_SOCKETS; i++) sockets[i] = -1;
    result_file = fopen(argv[2], "w");
    log_file = fopen(argv[3], "wb");
    FILE *input_file = fopen(argv[1], "rb");
    if (!result_file || !log_file || !input_file) {
        fprintf(stderr, "jos-aot-host: cannot open the job's files\n");
        return 2;
    }
    fseek(input_file, 0, SEEK_END);
    long length = ftell(input_file);
    fseek(input_file, 0, SEEK_SET);
    input_length = length > 0 ? (size_t)length : 0;
    input = malloc(input_length + 1);
    if (!input || fread(input, 1, input_length, input_file) != input_length) {
        fprintf(stderr, "jos-aot-host: cannot read the input\n");
        return 2;
    }
    fclose(input_file);
    output_cap = strtoul(argv[4], 0, 10);
    rights = (unsigned)strtoul(argv[5], 0, 10);
    int value = run();
    finish(output_overflow ? "output" : "ok", value);
}
