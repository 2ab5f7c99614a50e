/* jos.h: the jos guest SDK for C (ABI 1.0). One header, no libc.
 *
 * Every system call of abi/src/syscall.rs is a `static inline` function `jos_NAME`:
 *  - wasm32 (clang --target=wasm32): imports from module "jos" named NAME;
 *  - native ARM blobs (arm-none-eabi-gcc): an AAPCS call through an import slot, a pointer in
 *    section .jos_imports whose initial value is the syscall id; `jos-cli build` lists every slot
 *    in the blob's import table and the loader stores the kernel's function address in it;
 *  - JOS_AOT_HOST (only for AOT-compiled wasm run on the host): plain external functions.
 * A negative int result is -(error code), see the JOS_E* constants.
 *
 * A job defines `int run(void)` (the entry convention): read the input with jos_input_*, write
 * with jos_output_write, return the exit value. See docs/guests.md. */
#ifndef JOS_H
#define JOS_H

typedef unsigned int jos_u32;
typedef int jos_i32;
typedef long long jos_i64;
typedef unsigned long long jos_u64;
typedef unsigned char jos_u8;
typedef __SIZE_TYPE__ jos_size;

#define JOS_ABI_MAJOR 1
#define JOS_ABI_MINOR 0

/* Error codes (jos_abi::ErrorCode); calls return their negation. */
#define JOS_EINVAL 1      /* invalid argument */
#define JOS_EFAULT 2      /* address outside the job's memory */
#define JOS_ELIMIT 3      /* limit exceeded */
#define JOS_EPERM 4       /* the job lacks the capability */
#define JOS_EWOULDBLOCK 5 /* nothing available yet */
#define JOS_ENOTFOUND 6   /* no such socket / pin */
#define JOS_EBUSY 7
#define JOS_EUNSUPPORTED 8
#define JOS_EMALFORMED 9
#define JOS_EIO 13
#define JOS_EINUSE 14

/* Log levels for jos_log. */
#define JOS_LOG_ERROR 1
#define JOS_LOG_WARN 2
#define JOS_LOG_INFO 3
#define JOS_LOG_DEBUG 4

/* An IPv4 UDP endpoint: address bytes in network order, port little-endian, 2 bytes of zero. */
typedef struct jos_endpoint {
    jos_u8 address[4];
    jos_u8 port[2];
    jos_u8 zero[2];
} jos_endpoint;

#if defined(__wasm32__)
#define JOS__IMPORT(name) __attribute__((import_module("jos"), import_name(#name)))
#define JOS__CALL0(id, name, ret) \
    JOS__IMPORT(name) ret jos__import_##name(void); \
    static inline ret jos_##name(void) { return jos__import_##name(); }
#define JOS__CALL1(id, name, ret, t1) \
    JOS__IMPORT(name) ret jos__import_##name(t1); \
    static inline ret jos_##name(t1 a) { return jos__import_##name(a); }
#define JOS__CALL2(id, name, ret, t1, t2) \
    JOS__IMPORT(name) ret jos__import_##name(t1, t2); \
    static inline ret jos_##name(t1 a, t2 b) { return jos__import_##name(a, b); }
#define JOS__CALL3(id, name, ret, t1, t2, t3) \
    JOS__IMPORT(name) ret jos__import_##name(t1, t2, t3); \
    static inline ret jos_##name(t1 a, t2 b, t3 c) { return jos__import_##name(a, b, c); }
#define JOS__CALL4(id, name, ret, t1, t2, t3, t4) \
    JOS__IMPORT(name) ret jos__import_##name(t1, t2, t3, t4); \
    static inline ret jos_##name(t1 a, t2 b, t3 c, t4 d) { return jos__import_##name(a, b, c, d); }
#elif defined(__arm__)
/* The slot is a function-local static, so only the calls a program uses get a slot. It is
 * volatile so the compiler cannot fold the id it holds at build time into the call. */
#define JOS__SLOT(id, type) \
    static type volatile jos__slot __attribute__((section(".jos_imports"), used)) = (type)(jos_size)(id)
#define JOS__CALL0(id, name, ret) \
    static inline ret jos_##name(void) { \
        typedef ret (*jos__fn)(void); JOS__SLOT(id, jos__fn); return jos__slot(); }
#define JOS__CALL1(id, name, ret, t1) \
    static inline ret jos_##name(t1 a) { \
        typedef ret (*jos__fn)(t1); JOS__SLOT(id, jos__fn); return jos__slot(a); }
#define JOS__CALL2(id, name, ret, t1, t2) \
    static inline ret jos_##name(t1 a, t2 b) { \
        typedef ret (*jos__fn)(t1, t2); JOS__SLOT(id, jos__fn); return jos__slot(a, b); }
#define JOS__CALL3(id, name, ret, t1, t2, t3) \
    static inline ret jos_##name(t1 a, t2 b, t3 c) { \
        typedef ret (*jos__fn)(t1, t2, t3); JOS__SLOT(id, jos__fn); return jos__slot(a, b, c); }
#define JOS__CALL4(id, name, ret, t1, t2, t3, t4) \
    static inline ret jos_##name(t1 a, t2 b, t3 c, t4 d) { \
        typedef ret (*jos__fn)(t1, t2, t3, t4); JOS__SLOT(id, jos__fn); return jos__slot(a, b, c, d); }
#elif defined(JOS_AOT_HOST)
/* The host build of an AOT-compiled module (jos-cli run --local --aot): plain functions that
 * abi/aot/jos-aot-host.c defines. */
#define JOS__CALL0(id, name, ret) ret jos_##name(void);
#define JOS__CALL1(id, name, ret, t1) ret jos_##name(t1);
#define JOS__CALL2(id, name, ret, t1, t2) ret jos_##name(t1, t2);
#define JOS__CALL3(id, name, ret, t1, t2, t3) ret jos_##name(t1, t2, t3);
#define JOS__CALL4(id, name, ret, t1, t2, t3, t4) ret jos_##name(t1, t2, t3, t4);
#else
#error "jos.h: build for wasm32 (clang --target=wasm32) or ARM (arm-none-eabi-gcc); use jos-cli build"
#endif

/* input_len() -> length of the job's input in bytes */
JOS__CALL0(1, input_len, int)
/* input_read(buffer, length, offset) -> bytes copied (0 at the end) */
JOS__CALL3(2, input_read, int, void *, jos_size, jos_size)
/* output_write(buffer, length) -> 0 or -JOS_ELIMIT */
JOS__CALL2(3, output_write, int, const void *, jos_size)
/* log(level, buffer, length) -> 0 */
JOS__CALL3(4, log, int, jos_u32, const char *, jos_size)
/* time_us() -> monotonic microseconds since boot */
JOS__CALL0(5, time_us, jos_i64)
/* random(buffer, length) -> 0 or an error */
JOS__CALL2(6, random, int, void *, jos_size)
/* yield() -> 0: nothing to do now: gives the rest of the device's 1 ms frame back and returns in a
 * later frame, after the device polled the network (a loop that works between yields gets slower) */
JOS__CALL0(7, yield, int)
/* udp_bind(port) -> socket handle (capability Network) */
JOS__CALL1(16, udp_bind, int, jos_u32)
/* udp_send(handle, endpoint, buffer, length) -> 0 */
JOS__CALL4(17, udp_send, int, int, const jos_endpoint *, const void *, jos_size)
/* udp_recv(handle, buffer, length, endpoint) -> datagram length or -JOS_EWOULDBLOCK */
JOS__CALL4(18, udp_recv, int, int, void *, jos_size, jos_endpoint *)
/* udp_close(handle) -> 0 */
JOS__CALL1(19, udp_close, int, int)
/* screen_print(buffer, length) -> 0 (capability Screen) */
JOS__CALL2(24, screen_print, int, const char *, jos_size)
/* gpio_write(pin, level) -> 0 (capability Gpio) */
JOS__CALL2(32, gpio_write, int, jos_u32, jos_u32)
/* gpio_read(pin) -> 0, 1 or an error (capability Gpio) */
JOS__CALL1(33, gpio_read, int, jos_u32)

/* exit(code): ends the job now. */
#if defined(__wasm32__)
JOS__IMPORT(exit) void jos__import_exit(int);
static inline __attribute__((noreturn)) void jos_exit(int code) {
    jos__import_exit(code);
    __builtin_unreachable();
}
#elif defined(JOS_AOT_HOST)
__attribute__((noreturn)) void jos_exit(int code);
#else
static inline __attribute__((noreturn)) void jos_exit(int code) {
    typedef void (*jos__fn)(int);
    JOS__SLOT(8, jos__fn);
    jos__slot(code);
    for (;;) {
    }
}
#endif

/* ---- Conveniences (no system call of their own) ---- */

/* Length of a NUL-terminated string. */
static inline jos_size jos_strlen(const char *text) {
    jos_size length = 0;
    while (text[length]) length++;
    return length;
}

/* Logs a NUL-terminated string at `level`. */
static inline void jos_log_str(jos_u32 level, const char *text) { jos_log(level, text, jos_strlen(text)); }
#define jos_info(text) jos_log_str(JOS_LOG_INFO, (text))
#define jos_warn(text) jos_log_str(JOS_LOG_WARN, (text))
#define jos_error(text) jos_log_str(JOS_LOG_ERROR, (text))

/* Writes a NUL-terminated string to the output. */
static inline int jos_output_str(const char *text) { return jos_output_write(text, jos_strlen(text)); }

/* Reads the whole input into `buffer` (capacity `capacity`): its length, or -JOS_ELIMIT when it
 * does not fit. */
static inline int jos_input_read_all(void *buffer, jos_size capacity) {
    int length = jos_input_len();
    if (length < 0) return length;
    if ((jos_size)length > capacity) return -JOS_ELIMIT;
    jos_size filled = 0;
    while (filled < (jos_size)length) {
        int count = jos_input_read((jos_u8 *)buffer + filled, (jos_size)length - filled, filled);
        if (count < 0) return count;
        if (count == 0) break;
        filled += (jos_size)count;
    }
    return (int)filled;
}

/* The job's entry point, which the guest defines. */
int run(void);

#endif /* JOS_H */
