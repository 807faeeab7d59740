/* devices/guest_log.h - the one logger for problems a guest causes.
 *
 * A guest can repeat a malformed request, a bad register write or a reset
 * cycle as often as it likes, so every line it can trigger comes out of a
 * budget it cannot refill: GUEST_LOG_LINES per device for its lifetime
 * (transport, queues and device share one budget), the last line saying
 * that further ones are dropped.  Host-side failures (a write to an eventfd
 * that failed) use vm_log() directly.
 *
 * Every line logged also becomes a device-error event of the VM the calling
 * thread works for (vm_events_device_error() in vmm/vm.h).
 *
 * Thread safe: the budget is taken atomically.
 */
#ifndef DEVICES_GUEST_LOG_H
#define DEVICES_GUEST_LOG_H

#define GUEST_LOG_LINES	50	/* per device, for its lifetime */

/* Log "who: message" if *budget (atomic; NULL: unlimited) has a line left. */
void guest_log(int *budget, const char *who, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Take one line from *budget (atomic; NULL: unlimited): 0 do not log,
 * 1 log, 2 log and say it is the last one.  guest_log() is built on it;
 * use guest_log() rather than this. */
int virtio_log_take(int *budget);

#endif
