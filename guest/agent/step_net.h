/* guest/agent/step_net.h - the "net" job step (step_net.c). */
#ifndef GUEST_AGENT_STEP_NET_H
#define GUEST_AGENT_STEP_NET_H

#include "guest/agent/steps.h"

/* net dev=eth0 addr=A.B.C.D/P [gw=G] [mtu=N] [wait_ms=5000] */
int op_net(const struct job_step *st, struct report *r,
	   struct step_result *res);

#endif
