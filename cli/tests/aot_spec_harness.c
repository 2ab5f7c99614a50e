/* aot_spec_harness.c: the fixed part of each spec-suite program of cli/tests/aot_spec.rs (the
 * test includes it after the modules' headers and appends main()). */

/* A trap longjmps back to the step that is running. */
static jmp_buf jos_spec_jump;
static volatile int jos_spec_trap;

void jos_aot_trap(wasm_rt_trap_t trap) {
    jos_spec_trap = (int)trap;
    longjmp(jos_spec_jump, 1);
}

/* STEP(n, code): prints "Sn", runs code (which prints the values and " ok"), or " trap CODE". */
#define STEP(n, ...) \
    do { \
        printf("S%d", (n)); \
        fflush(stdout); \
        wasm_rt_call_stack_depth = 0; \
        if (setjmp(jos_spec_jump) == 0) { \
            __VA_ARGS__ \
        } else { \
            printf(" trap %d\n", jos_spec_trap); \
        } \
        fflush(stdout); \
    } while (0)

/* The reference interpreter's `spectest` module. */
struct Z_spectest_instance_t {
    int unused;
};
static struct Z_spectest_instance_t spectest;
void Z_spectestZ_print(struct Z_spectest_instance_t *s) { (void)s; }
void Z_spectestZ_print_i32(struct Z_spectest_instance_t *s, u32 a) { (void)s, (void)a; }
void Z_spectestZ_print_i64(struct Z_spectest_instance_t *s, u64 a) { (void)s, (void)a; }
void Z_spectestZ_print_f32(struct Z_spectest_instance_t *s, f32 a) { (void)s, (void)a; }
void Z_spectestZ_print_f64(struct Z_spectest_instance_t *s, f64 a) { (void)s, (void)a; }
void Z_spectestZ_print_i32_f32(struct Z_spectest_instance_t *s, u32 a, f32 b) { (void)s, (void)a, (void)b; }
void Z_spectestZ_print_f64_f64(struct Z_spectest_instance_t *s, f64 a, f64 b) { (void)s, (void)a, (void)b; }
static u32 spectest_global_i32 = 666;
static u64 spectest_global_i64 = 666;
static f32 spectest_global_f32 = 666.6f;
static f64 spectest_global_f64 = 666.6;
u32 *Z_spectestZ_global_i32(struct Z_spectest_instance_t *s) { (void)s; return &spectest_global_i32; }
u64 *Z_spectestZ_global_i64(struct Z_spectest_instance_t *s) { (void)s; return &spectest_global_i64; }
f32 *Z_spectestZ_global_f32(struct Z_spectest_instance_t *s) { (void)s; return &spectest_global_f32; }
f64 *Z_spectestZ_global_f64(struct Z_spectest_instance_t *s) { (void)s; return &spectest_global_f64; }
static uint8_t spectest_memory_data[2 * 65536];
static wasm_rt_memory_t spectest_memory = {spectest_memory_data, 1, 2, 65536};
wasm_rt_memory_t *Z_spectestZ_memory(struct Z_spectest_instance_t *s) { (void)s; return &spectest_memory; }
static wasm_rt_funcref_t spectest_table_data[20];
static wasm_rt_funcref_table_t spectest_table = {spectest_table_data, 20, 10};
wasm_rt_funcref_table_t *Z_spectestZ_table(struct Z_spectest_instance_t *s) { (void)s; return &spectest_table; }
