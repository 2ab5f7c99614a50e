/* jos-aot.h: the jos runtime for wasm modules compiled ahead of time (jos-cli build --format aot).
 *
 * wabt's wasm2c turns the module into C with explicit bounds checks; the glue jos-cli generates
 * per module includes this header, defines wasm2c's `jos` imports with the jos_aot_* adapters
 * below and the entry `int run(void)`. The adapters give the jos system calls wasm semantics:
 * every (pointer, length) pair is checked against the current linear memory (-JOS_EFAULT outside
 * it, as the interpreter answers) and then passed on as a native pointer. On ARM the calls go
 * through jos.h's import slots (the same mechanism as C native blobs); on the host
 * (JOS_AOT_HOST, `jos-cli run --local --aot`) jos-aot-host.c implements them.
 * See docs/runtime.md, "Ahead-of-time compiled wasm". */
#ifndef JOS_AOT_H
#define JOS_AOT_H

#include "wasm-rt.h"
#include "jos.h"

/* Whether [pointer, pointer + length) lies inside the linear memory `memory` (may be NULL). */
static inline int jos_aot_in_memory(const wasm_rt_memory_t *memory, uint32_t pointer, uint32_t length) {
    return memory != 0 && (uint64_t)pointer + (uint64_t)length <= (uint64_t)memory->size;
}

#define JOS_AOT_AT(memory, pointer) ((void *)((memory)->data + (pointer)))
#define JOS_AOT_CHECK(memory, pointer, length) \
    do { \
        if (!jos_aot_in_memory((memory), (pointer), (length))) return (uint32_t)-JOS_EFAULT; \
    } while (0)

static inline uint32_t jos_aot_input_len(wasm_rt_memory_t *m) {
    (void)m;
    return (uint32_t)jos_input_len();
}
static inline uint32_t jos_aot_input_read(wasm_rt_memory_t *m, uint32_t buffer, uint32_t length, uint32_t offset) {
    JOS_AOT_CHECK(m, buffer, length);
    return (uint32_t)jos_input_read(JOS_AOT_AT(m, buffer), length, offset);
}
static inline uint32_t jos_aot_output_write(wasm_rt_memory_t *m, uint32_t buffer, uint32_t length) {
    JOS_AOT_CHECK(m, buffer, length);
    return (uint32_t)jos_output_write(JOS_AOT_AT(m, buffer), length);
}
static inline uint32_t jos_aot_log(wasm_rt_memory_t *m, uint32_t level, uint32_t buffer, uint32_t length) {
    if (level < JOS_LOG_ERROR || level > JOS_LOG_DEBUG) return (uint32_t)-JOS_EINVAL;
    JOS_AOT_CHECK(m, buffer, length);
    return (uint32_t)jos_log(level, JOS_AOT_AT(m, buffer), length);
}
static inline uint64_t jos_aot_time_us(wasm_rt_memory_t *m) {
    (void)m;
    return (uint64_t)jos_time_us();
}
static inline uint32_t jos_aot_random(wasm_rt_memory_t *m, uint32_t buffer, uint32_t length) {
    JOS_AOT_CHECK(m, buffer, length);
    return (uint32_t)jos_random(JOS_AOT_AT(m, buffer), length);
}
static inline uint32_t jos_aot_yield(wasm_rt_memory_t *m) {
    (void)m;
    return (uint32_t)jos_yield();
}
static inline void jos_aot_exit(wasm_rt_memory_t *m, uint32_t code) {
    (void)m;
    jos_exit((int)code);
}
static inline uint32_t jos_aot_udp_bind(wasm_rt_memory_t *m, uint32_t port) {
    (void)m;
    return (uint32_t)jos_udp_bind(port);
}
static inline uint32_t jos_aot_udp_send(wasm_rt_memory_t *m, uint32_t handle, uint32_t endpoint, uint32_t buffer,
                                        uint32_t length) {
    JOS_AOT_CHECK(m, endpoint, sizeof(jos_endpoint));
    JOS_AOT_CHECK(m, buffer, length);
    return (uint32_t)jos_udp_send((int)handle, JOS_AOT_AT(m, endpoint), JOS_AOT_AT(m, buffer), length);
}
static inline uint32_t jos_aot_udp_recv(wasm_rt_memory_t *m, uint32_t handle, uint32_t buffer, uint32_t length,
                                        uint32_t endpoint) {
    JOS_AOT_CHECK(m, buffer, length);
    JOS_AOT_CHECK(m, endpoint, sizeof(jos_endpoint));
    return (uint32_t)jos_udp_recv((int)handle, JOS_AOT_AT(m, buffer), length, JOS_AOT_AT(m, endpoint));
}
static inline uint32_t jos_aot_udp_close(wasm_rt_memory_t *m, uint32_t handle) {
    (void)m;
    return (uint32_t)jos_udp_close((int)handle);
}
static inline uint32_t jos_aot_screen_print(wasm_rt_memory_t *m, uint32_t buffer, uint32_t length) {
    JOS_AOT_CHECK(m, buffer, length);
    return (uint32_t)jos_screen_print(JOS_AOT_AT(m, buffer), length);
}
static inline uint32_t jos_aot_gpio_write(wasm_rt_memory_t *m, uint32_t pin, uint32_t level) {
    (void)m;
    return (uint32_t)jos_gpio_write(pin, level);
}
static inline uint32_t jos_aot_gpio_read(wasm_rt_memory_t *m, uint32_t pin) {
    (void)m;
    return (uint32_t)jos_gpio_read(pin);
}

/* Ends the job for a wasm trap (wasm_rt_trap): see jos-aot-rt.c. */
WASM_RT_NO_RETURN void jos_aot_trap(wasm_rt_trap_t trap);

#endif /* JOS_AOT_H */
