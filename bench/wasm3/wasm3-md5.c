/* wasm3-md5.c: the interpreter peer of the benchmark (docs/benchmarks.md, "wasm3 against wasmi").
 *
 * Usage: wasm3-md5 MODULE.wasm N [RUNS]. Runs a jos md5 wasm module (guest-examples/c/md5.c built
 * for wasm32) in wasm3, the C interpreter whose sources ship in the wasm3-sys crate, with the input
 * "N" (as jos-bench invokes the module on jos), RUNS times (default 1), and prints one line per run:
 *   wasm3: n=N run=R cpu_us=C exec_us=E load_us=L digest=HEX
 * Per run the module is parsed and loaded into a new runtime (load_us), and `run` is called once
 * with the input "1" to let wasm3 compile the functions it reaches (it compiles lazily; jos
 * translates a module when it is pushed, before any job), untimed. Then `run` is called with the
 * input "N": cpu_us is the process's CPU time over that call (getrusage, user + system), exec_us
 * its elapsed time (clock_gettime(CLOCK_MONOTONIC)), as bench/linux/md5.c measures the C program.
 * digest is what the module wrote through `output_write`; the harness checks it.
 *
 * The module's imports are jos's system calls (module "jos"); this program provides the ones
 * the md5 guest uses, with the same meaning as on jos: input_len, input_read, output_write, log.
 * Guest pointers are checked against the linear memory here (wasm3's own accesses are
 * bounds-checked by wasm3). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "m3_api_defs.h"
#include "m3_env.h"
#include "wasm3.h"

/* The job's input and output, as jos keeps them for a wasm job. */
static char input[32];
static uint32_t input_length;
static uint8_t output[256];
static uint32_t output_length;

/* jos's error codes for the system calls used here (abi/include/jos.h). */
#define JOS_EFAULT 2
#define JOS_ELIMIT 3

static int in_memory(IM3Runtime runtime, uint32_t pointer, uint32_t length) {
    uint32_t size = 0;
    m3_GetMemory(runtime, &size, 0);
    return pointer <= size && length <= size - pointer;
}

m3ApiRawFunction(jos_input_len) {
    m3ApiReturnType(uint32_t);
    (void)runtime, (void)_mem;
    m3ApiReturn(input_length);
}

/* input_read(pointer, length, offset) -> bytes copied (0 at the end), or -error. */
m3ApiRawFunction(jos_input_read) {
    m3ApiReturnType(int32_t);
    m3ApiGetArg(uint32_t, pointer);
    m3ApiGetArg(uint32_t, length);
    m3ApiGetArg(uint32_t, offset);
    if (!in_memory(runtime, pointer, length)) m3ApiReturn(-JOS_EFAULT);
    uint32_t copied = 0;
    if (offset < input_length) {
        copied = input_length - offset < length ? input_length - offset : length;
        memcpy((uint8_t *)_mem + pointer, input + offset, copied);
    }
    m3ApiReturn((int32_t)copied);
}

/* output_write(pointer, length) -> 0, or -error. */
m3ApiRawFunction(jos_output_write) {
    m3ApiReturnType(int32_t);
    m3ApiGetArg(uint32_t, pointer);
    m3ApiGetArg(uint32_t, length);
    if (!in_memory(runtime, pointer, length)) m3ApiReturn(-JOS_EFAULT);
    if (length > sizeof output - output_length) m3ApiReturn(-JOS_ELIMIT);
    memcpy(output + output_length, (uint8_t *)_mem + pointer, length);
    output_length += length;
    m3ApiReturn(0);
}

/* log(level, pointer, length) -> 0: the line goes to stderr. */
m3ApiRawFunction(jos_log) {
    m3ApiReturnType(int32_t);
    m3ApiGetArg(uint32_t, level);
    m3ApiGetArg(uint32_t, pointer);
    m3ApiGetArg(uint32_t, length);
    if (!in_memory(runtime, pointer, length)) m3ApiReturn(-JOS_EFAULT);
    fprintf(stderr, "wasm3-md5: guest log %u: %.*s\n", level, (int)length, (const char *)_mem + pointer);
    m3ApiReturn(0);
}

static uint64_t cpu_us(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (uint64_t)usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec +
           (uint64_t)usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
}

static uint64_t monotonic_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000;
}

static int parse_count(const char *text, unsigned long *out) {
    char *end;
    if (text[0] < '0' || text[0] > '9') return -1;
    *out = strtoul(text, &end, 10);
    return *end == '\0' ? 0 : -1;
}

static int fail(const char *what, M3Result result) {
    fprintf(stderr, "wasm3-md5: %s: %s\n", what, result);
    return 1;
}

/* Calls `run` with `text` as the job's input; its i32 result in *value. */
static M3Result call_run(IM3Runtime runtime, IM3Function run, const char *text, int32_t *value) {
    input_length = (uint32_t)strlen(text);
    memcpy(input, text, input_length);
    output_length = 0;
    M3Result result = m3_Call(run);
    /* wasm3 leaves the result in the first slot of its stack. */
    *value = *(int32_t *)runtime->stack;
    return result;
}

/* A wasm3 runtime's stack (wasm3's own default for its command-line runner is 64 KiB). */
#define STACK_BYTES (64 * 1024)

int main(int argc, char **argv) {
    unsigned long count, runs = 1;
    if (argc < 3 || argc > 4 || parse_count(argv[2], &count) != 0 || (argc == 4 && parse_count(argv[3], &runs) != 0) ||
        strlen(argv[2]) >= sizeof input) {
        fprintf(stderr, "usage: wasm3-md5 MODULE.wasm N [RUNS]\n");
        return 2;
    }
    FILE *file = fopen(argv[1], "rb");
    if (!file) {
        perror(argv[1]);
        return 1;
    }
    static uint8_t module_bytes[1 << 20];
    size_t module_length = fread(module_bytes, 1, sizeof module_bytes, file);
    fclose(file);
    if (module_length == 0 || module_length == sizeof module_bytes) {
        fprintf(stderr, "wasm3-md5: %s: empty or larger than 1 MiB\n", argv[1]);
        return 1;
    }
    for (unsigned long round = 0; round < runs; round++) {
        uint64_t load0 = monotonic_us();
        IM3Environment environment = m3_NewEnvironment();
        IM3Runtime runtime = environment ? m3_NewRuntime(environment, STACK_BYTES, NULL) : NULL;
        if (!runtime) return fail("new runtime", "out of memory");
        IM3Module module;
        M3Result result = m3_ParseModule(environment, &module, module_bytes, (uint32_t)module_length);
        if (result) return fail("parse", result);
        result = m3_LoadModule(runtime, module);
        if (result) return fail("load", result);
        static const struct {
            const char *name, *signature;
            M3RawCall function;
        } imports[] = {
            {"input_len", "i()", jos_input_len},
            {"input_read", "i(iii)", jos_input_read},
            {"output_write", "i(ii)", jos_output_write},
            {"log", "i(iii)", jos_log},
        };
        for (size_t i = 0; i < sizeof imports / sizeof imports[0]; i++) {
            result = m3_LinkRawFunction(module, "jos", imports[i].name, imports[i].signature, imports[i].function);
            if (result && result != m3Err_functionLookupFailed) return fail(imports[i].name, result);
        }
        IM3Function run;
        result = m3_FindFunction(&run, runtime, "run");
        if (result) return fail("find run", result);
        uint64_t load = monotonic_us() - load0;
        int32_t value;
        result = call_run(runtime, run, "1", &value);
        if (result || value != 0) return fail("warm-up call of run", result ? result : "nonzero result");

        uint64_t cpu0 = cpu_us(), start = monotonic_us();
        result = call_run(runtime, run, argv[2], &value);
        uint64_t exec = monotonic_us() - start, cpu = cpu_us() - cpu0;
        if (result) return fail("run", result);
        if (value != 0) {
            fprintf(stderr, "wasm3-md5: run returned %d\n", value);
            return 1;
        }
        while (output_length > 0 && (output[output_length - 1] == '\n' || output[output_length - 1] == ' ')) {
            output_length--;
        }
        printf("wasm3: n=%lu run=%lu cpu_us=%llu exec_us=%llu load_us=%llu digest=%.*s\n", count, round,
               (unsigned long long)cpu, (unsigned long long)exec, (unsigned long long)load, (int)output_length,
               (const char *)output);
        fflush(stdout);
        m3_FreeRuntime(runtime);
        m3_FreeEnvironment(environment);
    }
    return 0;
}
