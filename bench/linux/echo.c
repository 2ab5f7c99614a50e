/* echo.c: the Linux baseline's UDP echo server (busybox's nc has no UDP mode).
 *
 * Usage: echo-udp [PORT] (default 7). Sends every datagram back to its sender, one at a time,
 * with blocking recvfrom/sendto. A datagram that is exactly "stats?" is answered instead with
 *   served=S cpu_us=C
 * (datagrams echoed so far and the process's own CPU time, getrusage user + system), so the
 * harness can read the server's accounting over the same socket, followed by
 *   spin=K mono_us=T
 * A datagram "spin!" starts a CPU meter: a child at SCHED_IDLE priority that only counts in
 * shared memory, so it runs exactly when nothing else wants the CPU. K is its count and T the
 * guest's monotonic clock: the count rate with no traffic, against the rate during an echo run,
 * gives the whole system's CPU time per request (interrupts, softirq, usbnet, the server). */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: echo-udp [PORT]\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("echo-udp: socket");
        return 1;
    }
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        perror("echo-udp: bind");
        return 1;
    }
    printf("echo-udp: listening on %d\n", port);
    fflush(stdout);
    static char buffer[65536];
    volatile unsigned long long *spin = NULL;
    unsigned long long served = 0;
    for (;;) {
        struct sockaddr_in peer;
        socklen_t peer_length = sizeof peer;
        ssize_t length = recvfrom(fd, buffer, sizeof buffer, 0, (struct sockaddr *)&peer, &peer_length);
        if (length < 0) continue;
        if (length == 6 && memcmp(buffer, "stats?", 6) == 0) {
            struct rusage usage;
            getrusage(RUSAGE_SELF, &usage);
            unsigned long long cpu = (unsigned long long)usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec +
                                     (unsigned long long)usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            unsigned long long mono = (unsigned long long)now.tv_sec * 1000000 + (unsigned long long)now.tv_nsec / 1000;
            length = snprintf(buffer, sizeof buffer, "served=%llu cpu_us=%llu spin=%llu mono_us=%llu", served, cpu,
                              spin ? *spin : 0ULL, mono);
        } else if (length == 5 && memcmp(buffer, "spin!", 5) == 0) {
            if (spin == NULL) {
                void *shared = mmap(NULL, sizeof *spin, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
                if (shared != MAP_FAILED) {
                    spin = shared;
                    if (fork() == 0) {
                        struct sched_param param = {0};
                        sched_setscheduler(0, SCHED_IDLE, &param);
                        for (;;) (*spin)++;
                    }
                }
            }
            length = snprintf(buffer, sizeof buffer, "spin=%s", spin ? "on" : "failed");
        } else {
            served++;
        }
        sendto(fd, buffer, (size_t)length, 0, (struct sockaddr *)&peer, peer_length);
    }
}
