/* devices.c: a test job for the capability calls (tests/tests/capabilities.rs). Prints a line on
 * the status screen, drives GPIO 17 high and low reading it back each time, tries a kernel pin
 * (14) and a pin that does not exist (60), then binds UDP 7001 twice (and ends without closing).
 * Output: eight little-endian i32 results, in the order of the calls above (the first write of
 * pin 17 is the sixth). */
#include "jos.h"

int run(void) {
    int results[8];
    static const char line[] = "capabilities test line (native)";
    results[0] = jos_screen_print(line, sizeof line - 1);
    results[5] = jos_gpio_write(17, 1);
    results[1] = jos_gpio_read(17);
    jos_gpio_write(17, 0);
    results[2] = jos_gpio_read(17);
    results[3] = jos_gpio_write(14, 1);
    results[4] = jos_gpio_read(60);
    results[6] = jos_udp_bind(7001);
    results[7] = jos_udp_bind(7001);
    return jos_output_write(results, sizeof results);
}
