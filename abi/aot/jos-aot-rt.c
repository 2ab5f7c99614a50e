/* jos-aot-rt.c: wasm2c's `wasm-rt` interface for jos (wabt 1.0.32), for ARM blobs and the host.
 *
 * - No heap: linear memory lives in a static arena of JOS_AOT_MEMORY_PAGES pages (the module's
 *   memory maximum after jos-cli's cap, reserved as the blob's bss); memory.grow beyond it answers
 *   -1, as the interpreter does at the job's memory cap. Tables come from a static arena of
 *   JOS_AOT_TABLE_ELEMENTS elements; table.grow beyond it answers -1.
 * - Function types are interned by value, so call_indirect's type check compares two numbers.
 * - Calls nest at most WASM_RT_MAX_CALL_STACK_DEPTH deep (jos-cli defines it as the interpreter's
 *   recursion limit); deeper recursion traps with "call stack exhausted".
 * - A trap ends the job (jos_aot_trap): on the device it logs "wasm trap: REASON" and executes an
 *   undefined instruction, which the kernel ends with status Trap; on the host, jos-aot-host.c
 *   records the trap for jos-cli.
 * jos-cli passes -DJOS_AOT_MEMORY_PAGES, -DJOS_AOT_TABLE_ELEMENTS, -DWASM_RT_MAX_CALL_STACK_DEPTH
 * and -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0 (explicit bounds checks on every target). */
#include <stdarg.h>

#include "jos-aot.h"

#if WASM_RT_MEMCHECK_SIGNAL_HANDLER
#error "jos AOT needs explicit bounds checks: build with -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0"
#endif
#ifndef JOS_AOT_MEMORY_PAGES
#error "define JOS_AOT_MEMORY_PAGES (the memory cap in 64 KiB pages)"
#endif
#ifndef JOS_AOT_TABLE_ELEMENTS
#define JOS_AOT_TABLE_ELEMENTS 0
#endif
#ifndef JOS_AOT_TABLE_LIMIT
#define JOS_AOT_TABLE_LIMIT 10000u /* jos_runtime::wasm::Limits::default().max_table_elements */
#endif

#define JOS_AOT_PAGE 65536u

uint32_t wasm_rt_call_stack_depth;

static int jos_aot_initialized;

void wasm_rt_init(void) {
    jos_aot_initialized = 1;
    wasm_rt_call_stack_depth = 0;
}

bool wasm_rt_is_initialized(void) { return jos_aot_initialized != 0; }

void wasm_rt_free(void) { jos_aot_initialized = 0; }

const char *wasm_rt_strerror(wasm_rt_trap_t trap) {
    switch (trap) {
    case WASM_RT_TRAP_NONE: return "no trap";
    case WASM_RT_TRAP_OOB: return "out of bounds memory access";
    case WASM_RT_TRAP_INT_OVERFLOW: return "integer overflow";
    case WASM_RT_TRAP_DIV_BY_ZERO: return "integer divide by zero";
    case WASM_RT_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
    case WASM_RT_TRAP_UNREACHABLE: return "unreachable executed";
    case WASM_RT_TRAP_CALL_INDIRECT: return "indirect call type mismatch or null";
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return "uncaught exception";
    case WASM_RT_TRAP_EXHAUSTION: return "call stack exhausted";
    }
    return "trap";
}

void wasm_rt_trap(wasm_rt_trap_t trap) { jos_aot_trap(trap); }

#if !defined(JOS_AOT_HOST)
/* On the device: the reason in the job's log, then an undefined instruction ends the job with
 * status Trap (the kernel ends a native job on any fault). */
void jos_aot_trap(wasm_rt_trap_t trap) {
    static const char prefix[] = "wasm trap: ";
    char line[80];
    jos_size length = 0;
    for (const char *c = prefix; *c && length < sizeof line; c++) line[length++] = *c;
    for (const char *c = wasm_rt_strerror(trap); *c && length < sizeof line; c++) line[length++] = *c;
    jos_log(JOS_LOG_ERROR, line, length);
    for (;;) __builtin_trap();
}

/* newlib's libm wrappers (sqrtf, sqrt: wasm2c's f32.sqrt and f64.sqrt) set errno through
 * __errno(), which newlib's libc would give: wasm has no errno, so one word the job never reads. */
int *__errno(void) {
    static int jos_aot_errno;
    return &jos_aot_errno;
}

/* newlib's assert() (wasm2c's output asserts that the runtime was initialised): ends the job as a
 * trap too. */
void __assert_func(const char *file, int line, const char *function, const char *expression) {
    (void)file, (void)line, (void)function, (void)expression;
    jos_aot_trap(WASM_RT_TRAP_NONE);
}
#endif

/* ---- Function types: interned (params, results, types...) tuples ---- */

#define JOS_AOT_MAX_TYPES 512
#define JOS_AOT_MAX_TYPE_VALUES 4096
static uint32_t jos_aot_type_start[JOS_AOT_MAX_TYPES];
static uint8_t jos_aot_type_params[JOS_AOT_MAX_TYPES], jos_aot_type_results[JOS_AOT_MAX_TYPES];
static uint8_t jos_aot_type_values[JOS_AOT_MAX_TYPE_VALUES];
static uint32_t jos_aot_type_count, jos_aot_type_used;

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...) {
    uint8_t types[256];
    uint32_t count = params + results;
    if (params > 255 || results > 255 || count > sizeof types) wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
    va_list list;
    va_start(list, results);
    for (uint32_t i = 0; i < count; i++) types[i] = (uint8_t)va_arg(list, int);
    va_end(list);
    for (uint32_t t = 0; t < jos_aot_type_count; t++) {
        if (jos_aot_type_params[t] != params || jos_aot_type_results[t] != results) continue;
        const uint8_t *known = &jos_aot_type_values[jos_aot_type_start[t]];
        uint32_t i = 0;
        while (i < count && known[i] == types[i]) i++;
        if (i == count) return t + 1;
    }
    if (jos_aot_type_count == JOS_AOT_MAX_TYPES || jos_aot_type_used + count > JOS_AOT_MAX_TYPE_VALUES) {
        wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
    }
    uint32_t t = jos_aot_type_count++;
    jos_aot_type_params[t] = (uint8_t)params;
    jos_aot_type_results[t] = (uint8_t)results;
    jos_aot_type_start[t] = jos_aot_type_used;
    for (uint32_t i = 0; i < count; i++) jos_aot_type_values[jos_aot_type_used++] = types[i];
    /* 0 is the null funcref's type: real types start at 1. */
    return t + 1;
}

/* ---- Exceptions: not enabled (jos-cli runs wasm2c without --enable-exceptions) ---- */

uint32_t wasm_rt_register_tag(uint32_t size) {
    (void)size;
    wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
}
void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void *values) {
    (void)tag, (void)size, (void)values;
    wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION);
}
void wasm_rt_throw(void) { wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION); }
static WASM_RT_UNWIND_TARGET *jos_aot_unwind_target;
WASM_RT_UNWIND_TARGET *wasm_rt_get_unwind_target(void) { return jos_aot_unwind_target; }
void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET *target) { jos_aot_unwind_target = target; }
uint32_t wasm_rt_exception_tag(void) { return 0; }
uint32_t wasm_rt_exception_size(void) { return 0; }
void *wasm_rt_exception(void) { return 0; }

/* ---- Linear memory: one static arena ---- */

/* The arena goes last in the blob's bss (jos-native.ld places the `.bss.0*` sections after the
 * rest): the device zeroes and maps a job's bss as the job first touches it, so the pages the
 * module never uses cost nothing, and touching the runtime's other variables must not commit it. */
#if JOS_AOT_MEMORY_PAGES > 0
static uint8_t jos_aot_memory[(uint32_t)JOS_AOT_MEMORY_PAGES * JOS_AOT_PAGE]
    __attribute__((aligned(16), section(".bss.0jos_aot_memory")));
#else
static uint8_t jos_aot_memory[16] __attribute__((aligned(16)));
#endif
static int jos_aot_memory_taken;
/* Bytes of the arena an instance ever had: above, it still holds the bss's zeros. */
static uint32_t jos_aot_memory_used;

/* Makes [from, to) of the arena zero, writing only where an earlier instance may have written. */
static void jos_aot_memory_zero(uint32_t from, uint32_t to) {
    uint32_t dirty_end = to < jos_aot_memory_used ? to : jos_aot_memory_used;
    if (from < dirty_end) memset(jos_aot_memory + from, 0, dirty_end - from);
    if (to > jos_aot_memory_used) jos_aot_memory_used = to;
}

/* The highest memory size the job reached, in pages (the host reports it as peak memory). */
uint32_t jos_aot_peak_pages;

void wasm_rt_allocate_memory(wasm_rt_memory_t *memory, uint32_t initial_pages, uint32_t max_pages) {
    /* jos-cli refuses modules with more than one memory or an initial size above the cap, so
     * neither trap below is reachable from a module it built. */
    if (jos_aot_memory_taken || initial_pages > (uint32_t)JOS_AOT_MEMORY_PAGES) wasm_rt_trap(WASM_RT_TRAP_OOB);
    jos_aot_memory_taken = 1;
    if (max_pages > (uint32_t)JOS_AOT_MEMORY_PAGES) max_pages = (uint32_t)JOS_AOT_MEMORY_PAGES;
    memory->data = jos_aot_memory;
    memory->pages = initial_pages;
    memory->max_pages = max_pages;
    memory->size = initial_pages * JOS_AOT_PAGE;
    /* The arena is bss (zero until written); what an earlier instantiation used is zeroed again. */
    jos_aot_memory_zero(0, memory->size);
    if (initial_pages > jos_aot_peak_pages) jos_aot_peak_pages = initial_pages;
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *memory, uint32_t delta) {
    uint32_t old_pages = memory->pages;
    if (delta > memory->max_pages - old_pages) return (uint32_t)-1;
    uint32_t new_pages = old_pages + delta;
    jos_aot_memory_zero(memory->size, new_pages * JOS_AOT_PAGE);
    memory->pages = new_pages;
    memory->size = new_pages * JOS_AOT_PAGE;
    if (new_pages > jos_aot_peak_pages) jos_aot_peak_pages = new_pages;
    return old_pages;
}

void wasm_rt_free_memory(wasm_rt_memory_t *memory) {
    (void)memory;
    jos_aot_memory_taken = 0;
}

/* ---- Tables: a bump arena; each table reserves room up to its maximum (capped) ---- */

#if JOS_AOT_TABLE_ELEMENTS > 0
static wasm_rt_funcref_t jos_aot_funcrefs[JOS_AOT_TABLE_ELEMENTS];
static wasm_rt_externref_t jos_aot_externrefs[JOS_AOT_TABLE_ELEMENTS];
#else
static wasm_rt_funcref_t jos_aot_funcrefs[1];
static wasm_rt_externref_t jos_aot_externrefs[1];
#endif
static uint32_t jos_aot_funcrefs_used, jos_aot_externrefs_used;

/* Reserves room for a table of `elements` growing up to `max_elements`; returns the first index
 * and sets `*capacity` (traps when not even the initial size fits). */
static uint32_t jos_aot_table_reserve(uint32_t *used, uint32_t elements, uint32_t *max_elements) {
    uint32_t room = (uint32_t)(sizeof jos_aot_funcrefs / sizeof jos_aot_funcrefs[0]) - *used;
    if (elements > room) wasm_rt_trap(WASM_RT_TRAP_OOB);
    /* A table grows at most to the interpreter's table limit (no maximum: 0xffffffff). */
    if (*max_elements > JOS_AOT_TABLE_LIMIT) *max_elements = JOS_AOT_TABLE_LIMIT;
    if (*max_elements < elements) *max_elements = elements;
    if (*max_elements > room) *max_elements = room;
    uint32_t start = *used;
    *used += *max_elements;
    return start;
}

void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t *table, uint32_t elements, uint32_t max_elements) {
    uint32_t start = jos_aot_table_reserve(&jos_aot_funcrefs_used, elements, &max_elements);
    table->data = &jos_aot_funcrefs[start];
    table->size = elements;
    table->max_size = max_elements;
    for (uint32_t i = 0; i < max_elements; i++) table->data[i] = wasm_rt_funcref_null_value;
}

void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t *table, uint32_t elements, uint32_t max_elements) {
    uint32_t start = jos_aot_table_reserve(&jos_aot_externrefs_used, elements, &max_elements);
    table->data = &jos_aot_externrefs[start];
    table->size = elements;
    table->max_size = max_elements;
    for (uint32_t i = 0; i < max_elements; i++) table->data[i] = wasm_rt_externref_null_value;
}

/* Freeing the most recently reserved table gives its room back (a module frees its own). */
void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t *table) {
    if (table->data + table->max_size == &jos_aot_funcrefs[jos_aot_funcrefs_used]) {
        jos_aot_funcrefs_used -= table->max_size;
    }
}
void wasm_rt_free_externref_table(wasm_rt_externref_table_t *table) {
    if (table->data + table->max_size == &jos_aot_externrefs[jos_aot_externrefs_used]) {
        jos_aot_externrefs_used -= table->max_size;
    }
}

uint32_t wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t *table, uint32_t delta, wasm_rt_funcref_t init) {
    uint32_t old_size = table->size;
    if (delta > table->max_size - old_size) return (uint32_t)-1;
    for (uint32_t i = old_size; i < old_size + delta; i++) table->data[i] = init;
    table->size = old_size + delta;
    return old_size;
}

uint32_t wasm_rt_grow_externref_table(wasm_rt_externref_table_t *table, uint32_t delta, wasm_rt_externref_t init) {
    uint32_t old_size = table->size;
    if (delta > table->max_size - old_size) return (uint32_t)-1;
    for (uint32_t i = old_size; i < old_size + delta; i++) table->data[i] = init;
    table->size = old_size + delta;
    return old_size;
}
