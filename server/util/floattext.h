/* floattext.h - float32 values as JSON number text, without printf.
 *
 * An encode response is mostly numbers: 64 to 1024 floats per image. Written
 * through jansson they cost a json_t each and a "%.9g" snprintf each, which was
 * the largest part of answering a request outside the forward pass itself.
 *
 * The text has 9 significant digits (fewer when the 9 end in zeros), which is
 * enough for any float32 to read back as exactly the same value: the decimal is
 * within half a unit of its 9th digit, at most 5e-9 of the value, and float32
 * values are at least 2^-24 (6e-8) of their size apart. It is %.9g's layout
 * (exponent form below 1e-4 and from 1e9 on, "1e-05" style), with ".0" added
 * when the text would otherwise read as an integer, as jansson does.
 * Depends on nothing but libc.
 */
#ifndef DIMD_UTIL_FLOATTEXT_H
#define DIMD_UTIL_FLOATTEXT_H

#include <stddef.h>

/* The longest text plus its NUL: "-1.23456789e-38". */
#define FLOATTEXT_MAX 24

/* Writes finite v into out (NUL-terminated) and returns the length, or 0 when v
 * is NaN or infinite (JSON has no number for them; out is then ""). */
size_t floattext(float v, char out[FLOATTEXT_MAX]);

#endif
