/* real.h - real numbers on the wire. JSON has no NaN or infinities, so dimd
 * writes them as the strings "NaN", "Infinity" and "-Infinity" (in JSON and
 * CSV alike), and every finite real with DIMD_REAL_DIGITS significant digits,
 * so a value reads the same from an event, a history page or a CSV file.
 * Depends on jansson.
 */
#ifndef DIMD_API_REAL_H
#define DIMD_API_REAL_H

#include <jansson.h>

/* Significant digits of every real number dimd writes as JSON or CSV (API
 * replies, stored event data, checkpoint metrics). */
#define DIMD_REAL_DIGITS 15

/* "NaN", "Infinity" or "-Infinity" for a value that is not finite; NULL for a finite one. */
const char *real_nonfinite_text(double v);
/* v as JSON: a real, or real_nonfinite_text's string (a new reference). */
json_t *real_json(double v);

#endif
