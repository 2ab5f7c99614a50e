/* hostile.c: a native test blob that attacks the device in the way its input names, for the
 * user-mode isolation test (tests/tests/offload.rs, `hostile_native_blobs_cannot_harm_the_device`).
 * Input: "MODE" or "MODE HEXADDRESS". Each mode must end in Trap (a fault), Deadline (it never
 * ends) or return -JOS_EFAULT from a system call; returning anything else is a failure of the
 * kernel's isolation. Modes:
 *   write ADDR, read ADDR, jump ADDR: store to, load from, branch to ADDR;
 *   selfwrite: store into its own code (read-only for it);
 *   cpsid, msr: mask interrupts / switch to SVC mode (both ignored in user mode), then spin;
 *   mmuoff, ttbr, dacr, dcache, icache, tlb: CP15 writes and cache/TLB maintenance;
 *   svc200, svc9: SVC numbers out of range / without a call;
 *   out ADDR: output_write(ADDR, 64); log ADDR, random ADDR, inread ADDR: the same for other calls;
 *   outwrap, inwrap: lengths that wrap the address space;
 *   udpsend: a bound socket sends a buffer running past the end of the job's memory;
 *   udpkernel ADDR: sends 64 bytes from ADDR; udprecv ADDR: receives into ADDR;
 *   execdata, execstack: run code written to its own data / stack;
 *   overflow: recursion with 16 KiB frames, past the job stack's guard page;
 *   spin: an endless loop; ldrd: an unaligned doubleword load; ok: returns 42. */
#include "jos.h"

/* Three pages of bss: the middle of it is a page of data only (never executable). */
static jos_u8 pages[3 * 4096] __attribute__((aligned(8)));
static volatile jos_u32 sink;

typedef int (*code)(void);

static int same(const char *text, int length, const char *word) {
    int i = 0;
    for (; word[i]; i++)
        if (i >= length || text[i] != word[i]) return 0;
    return i == length || text[i] == ' ';
}

static jos_u32 address_of(const char *text, int length) {
    int i = 0;
    while (i < length && text[i] != ' ') i++;
    jos_u32 value = 0;
    for (i++; i < length; i++) {
        char c = text[i];
        jos_u32 digit = c >= '0' && c <= '9' ? (jos_u32)(c - '0') : c >= 'a' && c <= 'f' ? (jos_u32)(c - 'a' + 10) : 0;
        value = value * 16 + digit;
    }
    return value;
}

static jos_u32 deep(jos_u32 depth) {
    volatile jos_u32 frame[4096];
    frame[0] = depth;
    frame[4095] = depth;
    return deep(depth + 1) + frame[depth & 4095];
}

static void spin(void) {
    for (;;) __asm__ volatile("" ::: "memory");
}

int run(void) {
    char text[48];
    int length = jos_input_read_all(text, sizeof text);
    if (length < 0) return length;
    jos_u32 address = address_of(text, length);
    if (same(text, length, "write")) {
        *(volatile jos_u32 *)address = 0xdeadbeef;
    } else if (same(text, length, "selfwrite")) {
        *(volatile jos_u32 *)(jos_size)&run = 0xe12fff1e;
    } else if (same(text, length, "read")) {
        sink = *(volatile jos_u32 *)address;
    } else if (same(text, length, "jump")) {
        return ((code)address)();
    } else if (same(text, length, "cpsid")) {
        __asm__ volatile("cpsid if" ::: "memory");
        spin();
    } else if (same(text, length, "msr")) {
        __asm__ volatile("msr cpsr_c, #0xd3" ::: "memory");
        spin();
    } else if (same(text, length, "mmuoff")) {
        __asm__ volatile("mov r0, #0\n mcr p15, 0, r0, c1, c0, 0" ::: "r0", "memory");
    } else if (same(text, length, "ttbr")) {
        __asm__ volatile("mov r0, #0\n mcr p15, 0, r0, c2, c0, 0" ::: "r0", "memory");
    } else if (same(text, length, "dacr")) {
        __asm__ volatile("mvn r0, #0\n mcr p15, 0, r0, c3, c0, 0" ::: "r0", "memory");
    } else if (same(text, length, "dcache")) {
        __asm__ volatile("mov r0, #0\n mcr p15, 0, r0, c7, c14, 0" ::: "r0", "memory");
    } else if (same(text, length, "icache")) {
        __asm__ volatile("mov r0, #0\n mcr p15, 0, r0, c7, c5, 0" ::: "r0", "memory");
    } else if (same(text, length, "tlb")) {
        __asm__ volatile("mov r0, #0\n mcr p15, 0, r0, c8, c7, 0" ::: "r0", "memory");
    } else if (same(text, length, "svc200")) {
        __asm__ volatile("svc #200" ::: "r0", "r1", "r2", "r3", "memory");
    } else if (same(text, length, "svc9")) {
        __asm__ volatile("svc #9" ::: "r0", "r1", "r2", "r3", "memory");
    } else if (same(text, length, "out")) {
        return jos_output_write((const void *)address, 64);
    } else if (same(text, length, "log")) {
        return jos_log(JOS_LOG_INFO, (const char *)address, 64);
    } else if (same(text, length, "random")) {
        return jos_random((void *)address, 64);
    } else if (same(text, length, "inread")) {
        return jos_input_read((void *)address, 4, 0);
    } else if (same(text, length, "outwrap")) {
        return jos_output_write(pages + 16, 0xfffffff8u);
    } else if (same(text, length, "inwrap")) {
        return jos_input_read(pages + 16, 0xffffffffu, 0);
    } else if (same(text, length, "udpsend") || same(text, length, "udpkernel") || same(text, length, "udprecv")) {
        int handle = jos_udp_bind(7002);
        if (handle < 0) return 1000 + handle;
        jos_endpoint to = {{127, 0, 0, 1}, {7, 0}, {0, 0}};
        if (same(text, length, "udpsend")) return jos_udp_send(handle, &to, pages + sizeof pages - 8, 8192);
        if (same(text, length, "udpkernel")) return jos_udp_send(handle, &to, (const void *)address, 64);
        return jos_udp_recv(handle, (void *)address, 64, &to);
    } else if (same(text, length, "execdata")) {
        jos_u32 *slot = (jos_u32 *)(pages + 4096 + 2048);
        slot[0] = 0xe3a0002a; /* mov r0, #42 */
        slot[1] = 0xe12fff1e; /* bx lr */
        return ((code)slot)();
    } else if (same(text, length, "execstack")) {
        volatile jos_u32 slot[2] = {0xe3a0002a, 0xe12fff1e};
        return ((code)slot)();
    } else if (same(text, length, "overflow")) {
        return (int)deep(0);
    } else if (same(text, length, "spin")) {
        spin();
    } else if (same(text, length, "ldrd")) {
        jos_u32 sum;
        const jos_u8 *odd = pages + 4096 + 1;
        __asm__ volatile("ldrd r2, r3, [%1]\n add %0, r2, r3" : "=r"(sum) : "r"(odd) : "r2", "r3", "memory");
        return (int)sum;
    } else if (same(text, length, "ok")) {
        return 42;
    } else {
        return -1000;
    }
    return 7;
}
