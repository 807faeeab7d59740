/* vmm/libvmm.c - the public API (vmm.h) over the app layer (app.h): the
 * config object records each option given so a VM can replay it into its
 * own copy, error lines per object and per thread, errno mapping, and the
 * start/wait/stop state a caller can get wrong. */
#include "vmm/vmm.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/app.h"
#include "vmm/options.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

struct vmm {
	struct vmm_config cfg;	/* the VM's own copy (the app layer's) */
	struct app_vm *app;
	bool started;
	char error[256];
};

/* the calling thread's last failure: vmm_error(NULL) */
static __thread char thread_error[256];

/* Record a failure on an object (its buffer, NULL: none) and the thread;
 * returns err. */
static int fail(char *obj, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *obj, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(thread_error, sizeof(thread_error), fmt, ap);
	va_end(ap);
	if (obj)
		memcpy(obj, thread_error, sizeof(thread_error));
	return err;
}

/* app.h returns the command line's statuses; the API speaks errno */
static int status_errno(int status)
{
	switch (status) {
	case VMM_EXIT_USAGE: return EINVAL;
	case VMM_EXIT_BAD_INPUT: return ENOEXEC;
	case VMM_EXIT_UNAVAILABLE: return ENODEV;
	default: return EIO;
	}
}

int vmm_exit_status(int err)
{
	switch (err < 0 ? -err : err) {
	case EINVAL: return VMM_EXIT_USAGE;
	case ENOEXEC: return VMM_EXIT_BAD_INPUT;
	case ENODEV:
	case ENOMEM: return VMM_EXIT_UNAVAILABLE;
	default: return VMM_EXIT_INTERNAL;
	}
}

static struct vmm_config *config_init_library(struct vmm_config *c)
{
	vmm_config_init(c);
	c->serial = SERIAL_PIPE;	/* a library does not own stdout */
	return c;
}

struct vmm_config *vmm_config_new(void)
{
	struct vmm_config *c = malloc(sizeof(*c));

	if (!c) {
		fail(NULL, 0, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	return config_init_library(c);
}

/* Apply option=value to c through the command line's parser, keeping
 * the copies it points into.  0 or -1 with the line in err. */
static int config_record(struct vmm_config *c, const char *option,
			 const char *value, char *err, size_t errlen)
{
	struct vmm_config_setting *st = calloc(1, sizeof(*st));

	if (!st || !(st->option = strdup(option)) ||
	    (value && (!(st->value = strdup(value)) ||
		       !(st->parsed = strdup(value))))) {
		if (st) {
			free(st->option);
			free(st->value);
			free(st);
		}
		return errf(err, errlen, "out of memory");
	}
	if (vmm_config_apply(c, st->option, st->parsed, err, errlen)) {
		free(st->option);
		free(st->value);
		free(st->parsed);
		free(st);
		return -1;
	}
	*c->settings_tail = st;
	c->settings_tail = &st->next;
	return 0;
}

int vmm_config_set(struct vmm_config *c, const char *option,
		   const char *value)
{
	char err[sizeof(c->error)];

	if (!c)
		return fail(NULL, -EINVAL, "vmm_config_set: no config (NULL)");
	if (!option || !*option)
		return fail(c->error, -EINVAL, "vmm_config_set: no option name");
	if (!strncmp(option, "--", 2))
		option += 2;
	/* the command line's own flags, not a VM's options */
	if (!strcmp(option, "help") || !strcmp(option, "version"))
		return fail(c->error, -EINVAL,
			    "unknown option '%s' (a flag of the vmm command, "
			    "not a VM option)", option);
	if (config_record(c, option, value, err, sizeof(err)))
		return fail(c->error, -EINVAL, "%s", err);
	return 0;
}

const char *vmm_config_error(const struct vmm_config *c)
{
	return c ? c->error : thread_error;
}

void vmm_config_free(struct vmm_config *c)
{
	if (!c)
		return;
	vmm_config_clear(c);
	free(c);
}

struct vmm *vmm_create(const struct vmm_config *c)
{
	double start = now_seconds();
	char err[sizeof(thread_error)];
	struct vmm *v;
	int status;

	if (!c) {
		errno = fail(NULL, EINVAL, "vmm_create: no config (NULL)");
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		errno = fail(NULL, ENOMEM, "out of memory");
		return NULL;
	}
	/* replay: the same parser on the same values gives the same config,
	 * owned by v (parsing is pure) */
	config_init_library(&v->cfg);
	for (const struct vmm_config_setting *st = c->settings; st; st = st->next)
		if (config_record(&v->cfg, st->option, st->value, err,
				  sizeof(err))) {
			vmm_config_clear(&v->cfg);
			free(v);
			errno = fail(NULL, EINVAL, "%s", err);
			return NULL;
		}
	status = app_vm_create(&v->cfg, start, &v->app, err, sizeof(err));
	if (status) {
		vmm_config_clear(&v->cfg);
		free(v);
		errno = fail(NULL, status_errno(status), "%s", err);
		return NULL;
	}
	return v;
}

const char *vmm_error(const struct vmm *v)
{
	return v ? v->error : thread_error;
}

int vmm_start(struct vmm *v)
{
	char err[sizeof(v->error)];
	int status;

	if (!v)
		return fail(NULL, -EINVAL, "vmm_start: no VM (NULL)");
	if (v->started)
		return fail(v->error, -EALREADY, "vmm_start: already started");
	v->started = true;
	status = app_vm_start(v->app, err, sizeof(err));
	if (status)
		return fail(v->error, -status_errno(status), "%s", err);
	return 0;
}

int vmm_wait(struct vmm *v, int timeout_ms)
{
	int status;

	if (!v)
		return fail(NULL, -EINVAL, "vmm_wait: no VM (NULL)");
	status = app_vm_status(v->app);
	if (status >= 0)
		return status;
	if (!v->started)
		return fail(v->error, -EINVAL, "vmm_wait: the VM was never started");
	status = app_vm_wait(v->app, timeout_ms);
	if (status < 0)
		return fail(v->error, -ETIMEDOUT,
			    "vmm_wait: still running after %d ms", timeout_ms);
	return status;
}

int vmm_stop_status(struct vmm *v, int status)
{
	if (!v)
		return fail(NULL, -EINVAL, "vmm_stop: no VM (NULL)");
	if (status < 0 || status > 255)
		return fail(NULL, -EINVAL,
			    "vmm_stop_status: status %d is not 0-255", status);
	app_vm_stop(v->app, status);
	return 0;
}

int vmm_stop(struct vmm *v)
{
	return vmm_stop_status(v, 128 + SIGTERM);
}

int vmm_console_fd(struct vmm *v)
{
	if (!v)
		return fail(NULL, -EINVAL, "vmm_console_fd: no VM (NULL)");
	return app_vm_console_fd(v->app);
}

int vmm_event_fd(struct vmm *v)
{
	if (!v)
		return fail(NULL, -EINVAL, "vmm_event_fd: no VM (NULL)");
	return app_vm_event_fd(v->app);
}

void vmm_destroy(struct vmm *v)
{
	if (!v)
		return;
	if (app_vm_status(v->app) < 0)
		app_vm_stop(v->app, 128 + SIGTERM);
	app_vm_destroy(v->app);
	vmm_config_clear(&v->cfg);
	free(v);
}

int vmm_set_kick_signal(int signo)
{
	if (vcpu_set_kick_signal(signo))
		return fail(NULL, -EINVAL,
			    "vmm_set_kick_signal: %d is not SIGUSR1, SIGUSR2 "
			    "or a real-time signal", signo);
	return 0;
}

int vmm_kick_signal(void)
{
	return vcpu_kick_signal();
}

const char *vmm_version(void)
{
	return VMM_VERSION;
}
