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

/* A 32-bit word that may alias any object, for the word-at-a-time loops below. */
typedef jos_u32 __attribute__((may_alias)) jos_rt_word;

/* Bytes until `address` is word-aligned. */
static jos_size jos_rt_misalignment(const void *address) {
    return (jos_size)(-(jos_size)address) & 3;
}

/* memcpy and memset move words when both sides can be word-aligned: a native blob's padding and
 * copies then cost about a quarter of the instructions (in wasm, a quarter of the fuel). */
JOS_RT void *memcpy(void *destination, const void *source, jos_size count) {
    jos_u8 *to = destination;
    const jos_u8 *from = source;
    if (count >= 8 && jos_rt_misalignment(to) == jos_rt_misalignment(from)) {
        for (jos_size head = jos_rt_misalignment(to); head > 0; head--, count--) *to++ = *from++;
        jos_rt_word *words_to = (jos_rt_word *)to;
        const jos_rt_word *words_from = (const jos_rt_word *)from;
        for (; count >= 16; count -= 16, words_to += 4, words_from += 4) {
            jos_u32 a = words_from[0], b = words_from[1], c = words_from[2], d = words_from[3];
            words_to[0] = a;
            words_to[1] = b;
            words_to[2] = c;
            words_to[3] = d;
        }
        for (; count >= 4; count -= 4) *words_to++ = *words_from++;
        to = (jos_u8 *)words_to;
        from = (const jos_u8 *)words_from;
    }
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
    jos_u8 byte = (jos_u8)value;
    if (count >= 8) {
        for (jos_size head = jos_rt_misalignment(to); head > 0; head--, count--) *to++ = byte;
        jos_u32 word = byte * 0x01010101u;
        jos_rt_word *words = (jos_rt_word *)to;
        for (; count >= 16; count -= 16, words += 4) {
            words[0] = word;
            words[1] = word;
            words[2] = word;
            words[3] = word;
        }
        for (; count >= 4; count -= 4) *words++ = word;
        to = (jos_u8 *)words;
    }
    while (count--) *to++ = byte;
    return destination;
}

JOS_RT int memcmp(const void *left, const void *right, jos_size count) {
    const jos_u8 *a = left, *b = right;
    for (jos_size i = 0; i < count; i++) {
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    }
    return 0;
}
