/* echo.c: a network-serving job, like the seed's echo payload. Binds a UDP port the device grants
 * and sends every datagram back to its sender.
 * Input: "PORT [COUNT]" as decimal text (default port 7, COUNT 0 = no limit). The job stops after
 * COUNT datagrams, or when a datagram reads "quit" (which is answered "bye").
 * Output: "echoed K\n", K the number of datagrams echoed. */
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

static jos_u8 datagram[1500];

int run(void) {
    char text[32];
    int length = jos_input_read_all(text, sizeof text);
    if (length < 0) {
        jos_error("echo: expected \"PORT [COUNT]\"");
        return -JOS_EINVAL;
    }
    int position = 0;
    jos_u32 port = length > 0 ? parse_number(text, length, &position) : 7;
    jos_u32 limit = parse_number(text, length, &position);
    if (port == 0 || port > 65535) {
        jos_error("echo: the port must be 1 to 65535");
        return -JOS_EINVAL;
    }
    int socket = jos_udp_bind(port);
    if (socket < 0) {
        jos_error("echo: udp_bind failed (is the port granted to this job?)");
        return socket;
    }
    jos_info("echo: serving");
    jos_u32 echoed = 0;
    for (;;) {
        jos_endpoint sender;
        int received = jos_udp_recv(socket, datagram, sizeof datagram, &sender);
        if (received == -JOS_EWOULDBLOCK) {
            jos_yield();
            continue;
        }
        if (received < 0) {
            jos_error("echo: udp_recv failed");
            jos_udp_close(socket);
            return received;
        }
        jos_size size = (jos_size)received < sizeof datagram ? (jos_size)received : sizeof datagram;
        if (size == 4 && datagram[0] == 'q' && datagram[1] == 'u' && datagram[2] == 'i' && datagram[3] == 't') {
            jos_udp_send(socket, &sender, "bye", 3);
            break;
        }
        if (jos_udp_send(socket, &sender, datagram, size) == 0) echoed++;
        if (limit != 0 && echoed >= limit) break;
    }
    jos_udp_close(socket);
    char out[24] = "echoed ";
    int used = 7;
    char digits[10];
    int count = 0;
    do {
        digits[count++] = (char)('0' + echoed % 10);
        echoed /= 10;
    } while (echoed != 0);
    while (count > 0) out[used++] = digits[--count];
    out[used++] = '\n';
    return jos_output_write(out, (jos_size)used) < 0 ? -JOS_ELIMIT : 0;
}
