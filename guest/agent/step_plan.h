/* guest/agent/step_plan.h - file checks the test plans need without a
 * shell (step_plan.c): stat, chown, statfs, count, disklink. */
#ifndef GUEST_AGENT_STEP_PLAN_H
#define GUEST_AGENT_STEP_PLAN_H

#include "guest/agent/steps.h"

/* stat path=F [want=UID:GID:MODE]: reports uid, gid, mode (octal), size,
 * nlink; with want=, fails unless they are those */
int op_stat(const struct job_step *st, struct report *r,
	    struct step_result *res);
/* chown path=F [uid=N] [gid=N] [mode=OCTAL] */
int op_chown(const struct job_step *st, struct report *r,
	     struct step_result *res);
/* statfs path=F: reports size_kib, free_kib, type (the f_type magic) */
int op_statfs(const struct job_step *st, struct report *r,
	      struct step_result *res);
/* count path=F match=TEXT [want=N]: lines of F (up to 1 MiB read) that
 * hold TEXT (%20 for a space); with want=, fails unless there are N */
int op_count(const struct job_step *st, struct report *r,
	     struct step_result *res);
/* disklink serial=S path=P: P becomes a symlink to the disk with serial S
 * (a name for it whatever its letter) */
int op_disklink(const struct job_step *st, struct report *r,
		struct step_result *res);

#endif
