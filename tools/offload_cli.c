#include "offload_cli.h"

#include <string.h>

#include "cli.h"

int cli_parse_hostport(const char *spec, const char *default_host, char *host, size_t cap, int *port)
{
    if (!spec || !*spec)
        return -1;
    const char *colon = NULL, *p = spec;
    if (spec[0] == '[') {  /* [::1]:9000 */
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= cap)
            return -1;
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        p = close + 2;
    } else if ((colon = strrchr(spec, ':'))) {
        const size_t n = (size_t)(colon - spec);
        if (n >= cap)
            return -1;
        memcpy(host, spec, n);
        host[n] = '\0';
        if (!n)
            snprintf(host, cap, "%s", default_host);
        p = colon + 1;
    } else
        snprintf(host, cap, "%s", default_host);
    return (*port = cli_parse_int(p, 0, 65535)) < 0 ? -1 : 0;
}

int cli_parse_wire(const char *s, eex_wire *wire)
{
    if (!strcmp(s, "f32"))
        *wire = EEX_WIRE_F32;
    else if (!strcmp(s, "f16"))
        *wire = EEX_WIRE_F16;
    else if (!strcmp(s, "i8") || !strcmp(s, "int8"))
        *wire = EEX_WIRE_I8;
    else if (!strcmp(s, "q4"))
        *wire = EEX_WIRE_Q4;
    else
        return -1;
    return 0;
}

const char *cli_wire_name(eex_wire wire)
{
    return wire == EEX_WIRE_F16 ? "f16" : wire == EEX_WIRE_I8 ? "i8" : wire == EEX_WIRE_Q4 ? "q4" : "f32";
}

void cli_offload_json(FILE *f, const eex_offload_info *i)
{
    fprintf(f,
            "{\"request_id\": %llu, \"bytes_sent\": %zu, \"bytes_received\": %zu, \"payload_bytes\": %zu, "
            "\"connects\": %d, \"edge_ms\": %.3f, \"offload_ms\": %.3f, \"total_ms\": %.3f, \"server_ms\": %.3f}",
            (unsigned long long)i->request_id, i->bytes_sent, i->bytes_received, i->payload_bytes, i->connects,
            i->edge_ms, i->offload_ms, i->total_ms, i->server_ms);
}

int cli_cloud_key(const char *cmd, eex_cloud_client *client, const char *keyfile)
{
    if (!keyfile)
        return CLI_OK;
    uint8_t key[EEX_KEY_MAX];
    size_t len;
    eex_status st = eex_key_read(keyfile, key, sizeof key, &len);
    if (!st)
        st = eex_cloud_client_set_key(client, key, len);
    memset(key, 0, sizeof key);
    return st ? cli_status(cmd, st) : CLI_OK;
}
