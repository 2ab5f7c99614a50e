/* spin.c: a native test blob that never returns (the device must end it at its deadline). */
#include "jos.h"

int run(void) {
    jos_info("spinning");
    for (;;) {
        __asm__ volatile("" ::: "memory");
    }
}
