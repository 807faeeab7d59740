/* guest/agent/vsock_server.h - the agent's service on a vsock port: the
 * host's live channel into the guest (guest/linux/README.md, "The agent
 * over vsock").
 *
 * One request per connection, a line of words (each %XX-decoded):
 *   exec ARG...   run ARG... with stdin from the connection (until the host
 *                 shuts its writing side); answers frames "out N\n" + N
 *                 bytes, "err N\n" + N bytes, and last "exit S\n"
 *   job           the rest of the connection (until the host shuts its
 *                 writing side) is a job in the step language; answers its
 *                 JSON result lines and the summary line
 *   ping          answers "pong\n"
 *   poweroff      answers "ok\n"; the boot job's `serve` step then ends
 *                 (and with it the VM, when the job is done)
 * Anything else: "error MESSAGE\n".  Connections are served concurrently,
 * each in its own process.
 */
#ifndef GUEST_AGENT_VSOCK_SERVER_H
#define GUEST_AGENT_VSOCK_SERVER_H

#include "guest/agent/job.h"
#include "guest/agent/report.h"
#include "guest/agent/steps.h"

#define VSOCK_AGENT_PORT	52
#define VSOCK_REQUEST_MAX	4096	/* bytes of the request line */

/* Start the server in a child process.  where: NULL or "" (port 52 if the
 * guest has a vsock device), "off", a port number, or (for host tests)
 * "unix:PATH".  0 when serving; -1 when not (no device, off, or an error,
 * reported in err). */
int vsock_server_start(const char *where, char *err, size_t errlen);
/* Whether a server runs (for the default job). */
int vsock_serving(void);

/* The `serve` step: wait until a client sends `poweroff`. */
int op_serve(const struct job_step *st, struct report *r,
	     struct step_result *res);

/* Provided by agent.c: parse and run a job with its results on stdout,
 * then the summary; returns the job's status (never ends the VM). */
int agent_run_job_text(char *text, const char *source, int keep_going);

#endif
