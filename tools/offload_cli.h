/* Command-line pieces of the partition executor shared by serve, run and eval. */
#ifndef EEX_OFFLOAD_CLI_H
#define EEX_OFFLOAD_CLI_H

#include <stdio.h>

#include "eex.h"

/* "HOST:PORT", "[V6ADDR]:PORT", ":PORT" or "PORT" (host = default_host).
 * Returns 0, or -1 when it is not one. */
int cli_parse_hostport(const char *spec, const char *default_host, char *host, size_t cap, int *port);
/* "f32" | "f16" | "i8" -> 0, else -1. */
int cli_parse_wire(const char *s, eex_wire *wire);
const char *cli_wire_name(eex_wire wire);
/* The "cloud" object of `run --json`: timings, bytes, reason. */
void cli_offload_json(FILE *f, const eex_offload_info *info);
/* --key FILE for an edge: reads the shared key (offload/keyfile.c rules) and
 * sets it on the client. NULL keyfile: nothing to do. Returns CLI_OK or the
 * exit code of the error it printed. */
int cli_cloud_key(const char *cmd, eex_cloud_client *client, const char *keyfile);

#endif
