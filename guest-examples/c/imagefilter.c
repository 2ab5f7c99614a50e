/* imagefilter.c: turns a binary PPM picture (P6, maxval 255, '#' comments allowed) into its
 * grayscale version (luma 0.299 R + 0.587 G + 0.114 B, in 8.8 fixed point), also P6.
 * Limits: 128 x 128 pixels at most; a larger picture ends the job with -JOS_ELIMIT, a malformed
 * one with -JOS_EMALFORMED. */
#include "jos.h"

#define PIXELS_MAX (128 * 128)
#define INPUT_MAX (64 + 3 * PIXELS_MAX)

static jos_u8 picture[INPUT_MAX];

/* Skips whitespace and comments, then reads a decimal number; -1 when there is none. */
static int header_number(const jos_u8 *bytes, int length, int *position) {
    for (;;) {
        while (*position < length && (bytes[*position] == ' ' || bytes[*position] == '\n' ||
                                      bytes[*position] == '\r' || bytes[*position] == '\t')) {
            (*position)++;
        }
        if (*position < length && bytes[*position] == '#') {
            while (*position < length && bytes[*position] != '\n') (*position)++;
            continue;
        }
        break;
    }
    int value = -1;
    while (*position < length && bytes[*position] >= '0' && bytes[*position] <= '9') {
        if (value > 100000) return -1;
        value = (value < 0 ? 0 : value * 10) + (bytes[*position] - '0');
        (*position)++;
    }
    return value;
}

static int malformed(const char *why) {
    jos_error(why);
    return -JOS_EMALFORMED;
}

int run(void) {
    int length = jos_input_read_all(picture, sizeof picture);
    if (length < 0) {
        jos_error("imagefilter: the picture is larger than 128 x 128");
        return -JOS_ELIMIT;
    }
    if (length < 2 || picture[0] != 'P' || picture[1] != '6') return malformed("imagefilter: not a binary PPM (P6)");
    int position = 2;
    int width = header_number(picture, length, &position);
    int height = header_number(picture, length, &position);
    int maxval = header_number(picture, length, &position);
    if (width <= 0 || height <= 0 || maxval != 255) {
        return malformed("imagefilter: the header needs a width, a height and maxval 255");
    }
    if (width * height > PIXELS_MAX) {
        jos_error("imagefilter: more than 128 x 128 pixels");
        return -JOS_ELIMIT;
    }
    if (position >= length) return malformed("imagefilter: no pixel data");
    position++; /* the single whitespace byte after maxval */
    int pixels = width * height;
    if (length - position < 3 * pixels) return malformed("imagefilter: pixel data is shorter than the header says");
    char header[32] = "P6\n";
    int used = 3;
    int numbers[2] = {width, height};
    for (int n = 0; n < 2; n++) {
        char digits[8];
        int count = 0;
        int value = numbers[n];
        do {
            digits[count++] = (char)('0' + value % 10);
            value /= 10;
        } while (value != 0);
        while (count > 0) header[used++] = digits[--count];
        header[used++] = n == 0 ? ' ' : '\n';
    }
    header[used++] = '2';
    header[used++] = '5';
    header[used++] = '5';
    header[used++] = '\n';
    jos_u8 *data = picture + position;
    for (int i = 0; i < pixels; i++) {
        jos_u32 luma = (77u * data[3 * i] + 150u * data[3 * i + 1] + 29u * data[3 * i + 2]) >> 8;
        data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = (jos_u8)luma;
    }
    if (jos_output_write(header, (jos_size)used) < 0 || jos_output_write(data, (jos_size)(3 * pixels)) < 0) {
        return -JOS_ELIMIT;
    }
    return 0;
}
