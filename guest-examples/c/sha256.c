/* sha256.c: SHA-256 (FIPS 180-4) of the whole input.
 * Output: the digest as 64 lower-case hex digits and a newline. */
#include "jos.h"

#define INPUT_MAX 65536

static const jos_u32 ROUND_CONSTANTS[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static jos_u32 rotate_right(jos_u32 value, unsigned count) { return (value >> count) | (value << (32 - count)); }

static void sha256_block(jos_u32 state[8], const jos_u8 block[64]) {
    jos_u32 schedule[64];
    for (int i = 0; i < 16; i++) {
        schedule[i] = (jos_u32)block[4 * i] << 24 | (jos_u32)block[4 * i + 1] << 16 |
                      (jos_u32)block[4 * i + 2] << 8 | (jos_u32)block[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        jos_u32 s0 = rotate_right(schedule[i - 15], 7) ^ rotate_right(schedule[i - 15], 18) ^ (schedule[i - 15] >> 3);
        jos_u32 s1 = rotate_right(schedule[i - 2], 17) ^ rotate_right(schedule[i - 2], 19) ^ (schedule[i - 2] >> 10);
        schedule[i] = schedule[i - 16] + s0 + schedule[i - 7] + s1;
    }
    jos_u32 a = state[0], b = state[1], c = state[2], d = state[3];
    jos_u32 e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i++) {
        jos_u32 sum1 = rotate_right(e, 6) ^ rotate_right(e, 11) ^ rotate_right(e, 25);
        jos_u32 choose = (e & f) ^ (~e & g);
        jos_u32 temp1 = h + sum1 + choose + ROUND_CONSTANTS[i] + schedule[i];
        jos_u32 sum0 = rotate_right(a, 2) ^ rotate_right(a, 13) ^ rotate_right(a, 22);
        jos_u32 majority = (a & b) ^ (a & c) ^ (b & c);
        jos_u32 temp2 = sum0 + majority;
        h = g;
        g = f;
        f = e;
        e = d + temp1;
        d = c;
        c = b;
        b = a;
        a = temp1 + temp2;
    }
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
    state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

static jos_u8 input[INPUT_MAX];

int run(void) {
    int length = jos_input_read_all(input, sizeof input);
    if (length < 0) {
        jos_error("sha256: the input is larger than 65536 bytes");
        return length;
    }
    jos_u32 state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    jos_size offset = 0;
    for (; offset + 64 <= (jos_size)length; offset += 64) sha256_block(state, input + offset);
    jos_u8 tail[128];
    jos_size rest = (jos_size)length - offset;
    for (jos_size i = 0; i < rest; i++) tail[i] = input[offset + i];
    tail[rest] = 0x80;
    jos_size tail_length = rest < 56 ? 64 : 128;
    for (jos_size i = rest + 1; i < tail_length - 8; i++) tail[i] = 0;
    jos_u64 bits = (jos_u64)length * 8;
    for (int i = 0; i < 8; i++) tail[tail_length - 1 - i] = (jos_u8)(bits >> (8 * i));
    sha256_block(state, tail);
    if (tail_length == 128) sha256_block(state, tail + 64);
    static const char HEX[] = "0123456789abcdef";
    char text[65];
    for (int i = 0; i < 32; i++) {
        jos_u8 byte = (jos_u8)(state[i / 4] >> (24 - 8 * (i % 4)));
        text[2 * i] = HEX[byte >> 4];
        text[2 * i + 1] = HEX[byte & 15];
    }
    text[64] = '\n';
    return jos_output_write(text, sizeof text) < 0 ? -JOS_ELIMIT : 0;
}
