/* bad_load.c: a native test blob that reads an unmapped address (a data abort on the device). */
#include "jos.h"

int run(void) {
    jos_info("reading 0xF0000000");
    volatile jos_u32 *unmapped = (volatile jos_u32 *)0xF0000000u;
    return (int)*unmapped;
}
