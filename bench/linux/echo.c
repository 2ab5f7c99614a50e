/* echo.c: the Linux baseline's UDP echo server (busybox's nc has no UDP mode).
 *
 * Usage: echo-udp [PORT] (default 7). Sends every datagram back to its sender, one at a time,
 * with blocking recvfrom/sendto. A datagram that is exactly "stats?" is answered instead with
 *   served=S cpu_us=C
 * (datagrams echoed so far and the process's own CPU time, getrusage user + system), so the
 * harness can read the server's accounting over the same socket. */
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
            length = snprintf(buffer, sizeof buffer, "served=%llu cpu_us=%llu", served, cpu);
        } else {
            served++;
        }
        sendto(fd, buffer, (size_t)length, 0, (struct sockaddr *)&peer, peer_length);
    }
}
