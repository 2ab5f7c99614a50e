/* md5.c: the seed's compute benchmark. MD5 (RFC 1321) of a string, computed N times.
 *
 * Input: "N" or "N STRING" as decimal text (a leading ASCII digit), or N as a u32 little-endian
 * followed by the string. Empty input, or no string, means the string "jon"; no N means 1.
 * Output: the digest as 32 lower-case hex digits and a newline.
 *
 * The Linux baseline (bench/linux/md5.c) includes this file with JOS_MD5_CORE_ONLY defined and
 * the jos_u8/jos_u32/jos_u64/jos_size types from <stdint.h>, so both measure the same MD5 code. */
#ifndef JOS_MD5_CORE_ONLY
#include "jos.h"

#define INPUT_MAX 4096
#endif

static const jos_u32 SINES[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const jos_u8 SHIFTS[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static jos_u32 rotate_left(jos_u32 value, unsigned count) { return (value << count) | (value >> (32 - count)); }

/* One 64-byte block into the state (RFC 1321, section 3.4). */
static void md5_block(jos_u32 state[4], const jos_u8 block[64]) {
    jos_u32 words[16];
    for (int i = 0; i < 16; i++) {
        words[i] = (jos_u32)block[4 * i] | (jos_u32)block[4 * i + 1] << 8 | (jos_u32)block[4 * i + 2] << 16 |
                   (jos_u32)block[4 * i + 3] << 24;
    }
    jos_u32 a = state[0], b = state[1], c = state[2], d = state[3];
    for (int i = 0; i < 64; i++) {
        jos_u32 f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (b & d) | (c & ~d);
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
        }
        jos_u32 next = b + rotate_left(a + f + SINES[i] + words[g], SHIFTS[i]);
        a = d;
        d = c;
        c = b;
        b = next;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

/* MD5 of `length` bytes: padding with 0x80, zeros and the bit length (little-endian). */
static void md5(const jos_u8 *message, jos_size length, jos_u8 digest[16]) {
    jos_u32 state[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    jos_size offset = 0;
    for (; offset + 64 <= length; offset += 64) md5_block(state, message + offset);
    jos_u8 tail[128];
    jos_size rest = length - offset;
    for (jos_size i = 0; i < rest; i++) tail[i] = message[offset + i];
    tail[rest] = 0x80;
    jos_size tail_length = rest < 56 ? 64 : 128;
    for (jos_size i = rest + 1; i < tail_length - 8; i++) tail[i] = 0;
    jos_u64 bits = (jos_u64)length * 8;
    for (int i = 0; i < 8; i++) tail[tail_length - 8 + i] = (jos_u8)(bits >> (8 * i));
    md5_block(state, tail);
    if (tail_length == 128) md5_block(state, tail + 64);
    for (int i = 0; i < 16; i++) digest[i] = (jos_u8)(state[i / 4] >> (8 * (i % 4)));
}

#ifndef JOS_MD5_CORE_ONLY
static jos_u8 input[INPUT_MAX];

int run(void) {
    int length = jos_input_read_all(input, sizeof input);
    if (length < 0) {
        jos_error("md5: the input is larger than 4096 bytes");
        return length;
    }
    jos_u32 count = 1;
    const jos_u8 *message = (const jos_u8 *)"jon";
    jos_size message_length = 3;
    if (length > 0 && input[0] >= '0' && input[0] <= '9') {
        int i = 0;
        count = 0;
        for (; i < length && input[i] >= '0' && input[i] <= '9'; i++) {
            jos_u32 digit = (jos_u32)(input[i] - '0');
            if (count > (0xffffffffu - digit) / 10) {
                jos_error("md5: N does not fit in 32 bits");
                return -JOS_EINVAL;
            }
            count = count * 10 + digit;
        }
        if (i < length) {
            if (input[i] != ' ') {
                jos_error("md5: expected \"N\" or \"N STRING\"");
                return -JOS_EINVAL;
            }
            message = input + i + 1;
            message_length = (jos_size)(length - i - 1);
        }
    } else if (length >= 4) {
        count = (jos_u32)input[0] | (jos_u32)input[1] << 8 | (jos_u32)input[2] << 16 | (jos_u32)input[3] << 24;
        if (length > 4) {
            message = input + 4;
            message_length = (jos_size)(length - 4);
        }
    } else if (length > 0) {
        jos_error("md5: expected decimal text or a u32 little-endian count");
        return -JOS_EINVAL;
    }
    jos_u8 digest[16] = {0};
    for (jos_u32 round = 0; round < count; round++) {
        md5(message, message_length, digest);
        /* The digest escapes through memory each round, so the loop is not folded away. */
        __asm__ volatile("" : : "r"(digest) : "memory");
    }
    static const char HEX[] = "0123456789abcdef";
    char text[33];
    for (int i = 0; i < 16; i++) {
        text[2 * i] = HEX[digest[i] >> 4];
        text[2 * i + 1] = HEX[digest[i] & 15];
    }
    text[32] = '\n';
    return jos_output_write(text, sizeof text) < 0 ? -JOS_ELIMIT : 0;
}
#endif
