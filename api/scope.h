/* scope.h - what a bearer token may do, and what a route needs: nothing
 * (open routes), read, or write (which includes read). "read" and "write" on
 * the wire and in the database.
 * Depends on libc only.
 */
#ifndef DIMD_API_SCOPE_H
#define DIMD_API_SCOPE_H

enum scope { SCOPE_NONE = 0, SCOPE_READ = 1, SCOPE_WRITE = 2 };

/* "read" or "write" (SCOPE_NONE: "none"). */
const char *scope_name(enum scope s);
/* SCOPE_READ or SCOPE_WRITE for "read" / "write"; SCOPE_NONE for anything else. */
enum scope scope_parse(const char *name);

#endif
