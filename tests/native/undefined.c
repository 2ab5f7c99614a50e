/* undefined.c: a native test blob that executes a permanently undefined instruction. */
#include "jos.h"

int run(void) {
    jos_info("executing an undefined instruction");
    __asm__ volatile(".word 0xe7f000f0");
    return 1;
}
