/* jos-rt.c: the few C run-time functions compilers may call on their own (memcpy, memmove,
 * memset, memcmp), for guests built without a libc. jos-cli build compiles and links it with
 * every C guest; the definitions are weak, so a guest may provide its own. */
#include "jos.h"

#if defined(__GNUC__) && !defined(__clang__)
/* Keep GCC from turning these loops back into calls to themselves. */
#define JOS_RT __attribute__((weak, optimize("no-tree-loop-distribute-patterns")))
#else
#define JOS_RT __attribute__((weak))
#endif

JOS_RT void *memcpy(void *destination, const void *source, jos_size count) {
    jos_u8 *to = destination;
    const jos_u8 *from = source;
    while (count--) *to++ = *from++;
    return destination;
}

JOS_RT void *memmove(void *destination, const void *source, jos_size count) {
    jos_u8 *to = destination;
    const jos_u8 *from = source;
    if (to < from) {
        while (count--) *to++ = *from++;
    } else {
        while (count--) to[count] = from[count];
    }
    return destination;
}

JOS_RT void *memset(void *destination, int value, jos_size count) {
    jos_u8 *to = destination;
    while (count--) *to++ = (jos_u8)value;
    return destination;
}

JOS_RT int memcmp(const void *left, const void *right, jos_size count) {
    const jos_u8 *a = left, *b = right;
    for (jos_size i = 0; i < count; i++) {
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    }
    return 0;
}
