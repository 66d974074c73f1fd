/* Internal error reporting: set the thread's last error and return its status. */
#ifndef EEX_STATUS_H
#define EEX_STATUS_H

#include "eex.h"

#if defined(__GNUC__)
#define EEX_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EEX_PRINTF(a, b)
#endif

/* Formats the message into the thread-local buffer and returns `status`, so a
 * failure site reads: return eex_fail(EEX_ERR_BOUNDS, "weights: ..."). */
eex_status eex_fail(eex_status status, const char *fmt, ...) EEX_PRINTF(2, 3);

/* Clears the thread's message (successful public calls do not clear it). */
void eex_clear_error(void);

#endif
