#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

const char *eex_version(void)
{
    return EEX_VERSION_STRING;
}

static const char *const status_names[EEX_STATUS_COUNT] = {
    [EEX_OK] = "EEX_OK",
    [EEX_ERR_ARGUMENT] = "EEX_ERR_ARGUMENT",
    [EEX_ERR_IO] = "EEX_ERR_IO",
    [EEX_ERR_NOMEM] = "EEX_ERR_NOMEM",
    [EEX_ERR_MAGIC] = "EEX_ERR_MAGIC",
    [EEX_ERR_VERSION] = "EEX_ERR_VERSION",
    [EEX_ERR_TRUNCATED] = "EEX_ERR_TRUNCATED",
    [EEX_ERR_BOUNDS] = "EEX_ERR_BOUNDS",
    [EEX_ERR_OVERFLOW] = "EEX_ERR_OVERFLOW",
    [EEX_ERR_ALIGNMENT] = "EEX_ERR_ALIGNMENT",
    [EEX_ERR_CHECKSUM] = "EEX_ERR_CHECKSUM",
    [EEX_ERR_DUPLICATE] = "EEX_ERR_DUPLICATE",
    [EEX_ERR_UNKNOWN_OP] = "EEX_ERR_UNKNOWN_OP",
    [EEX_ERR_FORMAT] = "EEX_ERR_FORMAT",
    [EEX_ERR_GRAPH] = "EEX_ERR_GRAPH",
    [EEX_ERR_SHAPE] = "EEX_ERR_SHAPE",
    [EEX_ERR_UNSUPPORTED] = "EEX_ERR_UNSUPPORTED",
    [EEX_ERR_NUMERIC] = "EEX_ERR_NUMERIC",
    [EEX_ERR_NOT_FOUND] = "EEX_ERR_NOT_FOUND",
    [EEX_ERR_STATE] = "EEX_ERR_STATE",
};

const char *eex_status_name(eex_status status)
{
    if ((unsigned)status >= EEX_STATUS_COUNT)
        return "EEX_ERR_UNKNOWN_STATUS";
    return status_names[status];
}

const char *eex_last_error(void) { return last_error; }

void eex_clear_error(void) { last_error[0] = '\0'; }

eex_status eex_fail(eex_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}
