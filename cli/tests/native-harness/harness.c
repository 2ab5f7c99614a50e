/* harness.c: runs one native jos blob that the test has already placed, relocated and bound
 * (with jos_runtime's loader) at its load address. The job descriptor at 0x00300000 gives the
 * entry address, the input and scripted datagrams: u32 entry, u32 input length, the input padded
 * to 4 bytes, u32 datagram count, then per datagram u32 length and the bytes padded to 4. System
 * calls are the h_* functions below, whose addresses the test reads from this ELF. Results go to
 * the PL011 as lines: "OUT <hex>", "LOG <hex>", "BIND <port>", "SEND <hex>", "EXIT <value>",
 * then "DONE". Every datagram comes from 10.0.2.2:12345; a send elsewhere prints "BADEP". */
typedef unsigned int u32;
typedef unsigned char u8;

#define UART_DR (*(volatile u32 *)0x20201000)
#define UART_FR (*(volatile u32 *)0x20201018)

struct job {
    u32 entry;
    u32 input_len;
    u8 input[];
};
#define JOB ((const struct job *)0x00300000)

static void put(char c) {
    while (UART_FR & (1u << 5)) {
    }
    UART_DR = (u32)c;
}

static void text(const char *s) {
    while (*s) put(*s++);
}

static void hex(const u8 *bytes, u32 length) {
    static const char digits[] = "0123456789abcdef";
    for (u32 i = 0; i < length; i++) {
        put(digits[bytes[i] >> 4]);
        put(digits[bytes[i] & 15]);
    }
}

static void decimal(int value) {
    char digits[12];
    int count = 0;
    u32 magnitude = value < 0 ? 0u - (u32)value : (u32)value;
    if (value < 0) put('-');
    do {
        digits[count++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude != 0);
    while (count > 0) put(digits[--count]);
}

int h_input_len(void) { return (int)JOB->input_len; }

int h_input_read(u8 *buffer, u32 length, u32 offset) {
    if (offset >= JOB->input_len) return 0;
    u32 count = JOB->input_len - offset;
    if (count > length) count = length;
    for (u32 i = 0; i < count; i++) buffer[i] = JOB->input[offset + i];
    return (int)count;
}

int h_output_write(const u8 *buffer, u32 length) {
    text("OUT ");
    hex(buffer, length);
    put('\n');
    return 0;
}

int h_log(u32 level, const u8 *buffer, u32 length) {
    (void)level;
    text("LOG ");
    hex(buffer, length);
    put('\n');
    return 0;
}

long long h_time_us(void) { return 0; }

int h_random(u8 *buffer, u32 length) {
    for (u32 i = 0; i < length; i++) buffer[i] = 4;
    return 0;
}

int h_yield(void) { return 0; }

static void finish(int value) {
    text("EXIT ");
    decimal(value);
    text("\nDONE\n");
    for (;;) {
    }
}

void h_exit(int code) { finish(code); }

static const u8 *next_datagram;
static u32 datagrams_left;

int h_udp_bind(u32 port) {
    u32 padded = (JOB->input_len + 3) & ~3u;
    const u8 *script = JOB->input + padded;
    datagrams_left = *(const u32 *)script;
    next_datagram = script + 4;
    text("BIND ");
    decimal((int)port);
    put('\n');
    return 3;
}

static const u8 PEER[8] = {10, 0, 2, 2, 0x39, 0x30, 0, 0};

int h_udp_recv(int handle, u8 *buffer, u32 length, u8 *endpoint) {
    if (handle != 3) return -6;
    if (datagrams_left == 0) return -5;
    u32 size = *(const u32 *)next_datagram;
    const u8 *bytes = next_datagram + 4;
    for (u32 i = 0; i < size && i < length; i++) buffer[i] = bytes[i];
    for (u32 i = 0; i < 8; i++) endpoint[i] = PEER[i];
    next_datagram = bytes + ((size + 3) & ~3u);
    datagrams_left--;
    return (int)size;
}

int h_udp_send(int handle, const u8 *endpoint, const u8 *buffer, u32 length) {
    if (handle != 3) return -6;
    for (u32 i = 0; i < 8; i++) {
        if (endpoint[i] != PEER[i]) text("BADEP\n");
    }
    text("SEND ");
    hex(buffer, length);
    put('\n');
    return 0;
}

int h_udp_close(int handle) { return handle == 3 ? 0 : -6; }

void harness_main(void) {
    text("HARNESS\n");
    int (*entry)(void) = (int (*)(void))JOB->entry;
    finish(entry());
}
