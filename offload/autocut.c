/* The edge's automatic cut and codec, one request at a time (include/eex.h,
 * eex_autoplan_next / eex_autoplan_done): what `eex run`, `eex eval` and
 * bench/offload/adapt share around eex_autoplan_choose / _update. Uses the
 * client only through its public calls. */
#include <string.h>

#include "../base/status.h"
#include "eex.h"

const char *eex_wire_name(int wire)
{
    return wire == EEX_WIRE_F32 ? "f32" : wire == EEX_WIRE_F16 ? "f16" : wire == EEX_WIRE_I8 ? "i8"
         : wire == EEX_WIRE_Q4 ? "q4" : "?";
}

eex_status eex_autoplan_next(eex_autoplan *a, eex_cloud_client *client, eex_autoplan_step *step)
{
    if (!a || !client || !step)
        return eex_fail(EEX_ERR_ARGUMENT, "eex_autoplan_next: NULL argument");
    memset(step, 0, sizeof *step);
    step->path = a->path;  /* the estimate this choice is made on */
    eex_autoplan_choose(a, &step->cut, &step->wire);
    step->predicted_ms = a->predicted_ms;
    eex_status st = eex_cloud_client_set_probe(client, 1);
    return st ? st : eex_cloud_client_set_wire(client, (eex_wire)step->wire);
}

void eex_autoplan_done(eex_autoplan *a, const eex_cloud_client *client, eex_autoplan_step *step,
                       const eex_offload_info *info)
{
    if (!a || !client || !step || !info)
        return;
    step->probe_rtt_ms = eex_cloud_client_probe_rtt_ms(client);
    step->tcp_rtt_ms = eex_cloud_client_tcp_rtt_ms(client);
    if (info->offloaded)
        eex_autoplan_update(a, step->cut, step->wire, info,
                            step->probe_rtt_ms > 0 ? step->probe_rtt_ms : step->tcp_rtt_ms);
}
