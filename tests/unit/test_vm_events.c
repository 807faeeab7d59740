/* Unit tests: what the guest tells the VMM besides device I/O, per VM:
 * the console watcher (a Linux panic ends the VM with status 126) and the
 * boot-ready hook (once per VM, several VMs in one process). */
#include <check.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/console_watch.h"
#include "vmm/vm_private.h"
#include "tests/unit/check_main.h"

static void vm_init(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	pthread_mutex_init(&vm->exit_lock, NULL);
	vm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(vm->exit_efd, 0);
}

static int vm_status(struct vm *vm)
{
	return vm->exiting ? vm->exit_status : -1;
}

static void say(struct console_watch *w, const char *s)
{
	while (*s)
		console_watch_byte(w, *s++);
}

START_TEST(panic_then_reboot_is_126)
{
	struct vm vm;
	struct console_watch w;

	vm_init(&vm);
	console_watch_init(&w, &vm);
	say(&w, "[    1.0] Kernel panic - not syncing: VFS: Unable to mount\n");
	ck_assert_int_eq(vm_status(&vm), -1);	/* panic=-1: a reboot follows */
	vm_request_exit(&vm, 0);		/* the reboot */
	ck_assert_int_eq(vm_status(&vm), VMM_EXIT_GUEST_PANIC);
	close(vm.exit_efd);
}
END_TEST

START_TEST(end_of_panic_is_126)
{
	struct vm vm;
	struct console_watch w;

	vm_init(&vm);
	console_watch_init(&w, &vm);
	say(&w, "a very long line that is longer than the watcher keeps, "
		"a very long line that is longer than the watcher keeps, "
		"a very long line that is longer than the watcher keeps\n");
	say(&w, "Kernel panic");	/* no newline yet: nothing */
	ck_assert_int_eq(vm_status(&vm), -1);
	say(&w, " - not syncing: x\n---[ end Kernel panic - not syncing ]---\n");
	ck_assert_int_eq(vm_status(&vm), VMM_EXIT_GUEST_PANIC);
	close(vm.exit_efd);
}
END_TEST

START_TEST(ordinary_output_and_reboot_is_0)
{
	struct vm vm;
	struct console_watch w;

	vm_init(&vm);
	console_watch_init(&w, &vm);
	say(&w, "panic: a word on its own is not a kernel panic\n");
	vm_request_exit(&vm, 0);
	ck_assert_int_eq(vm_status(&vm), 0);
	close(vm.exit_efd);
}
END_TEST

static void count_ready(struct vm *vm, void *opaque)
{
	(void)vm;
	(*(int *)opaque)++;
}

START_TEST(boot_ready_once_per_vm)
{
	struct vm a, b;
	int na = 0, nb = 0;

	vm_init(&a);
	vm_init(&b);
	a.on_boot_ready = b.on_boot_ready = count_ready;
	a.on_boot_ready_opaque = &na;
	b.on_boot_ready_opaque = &nb;
	vm_boot_ready(&a);
	vm_boot_ready(&a);
	ck_assert_int_eq(na, 1);
	ck_assert_int_eq(nb, 0);	/* per VM, not per process */
	vm_boot_ready(&b);
	ck_assert_int_eq(nb, 1);
	close(a.exit_efd);
	close(b.exit_efd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vm_events");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, panic_then_reboot_is_126);
	tcase_add_test(tc, end_of_panic_is_126);
	tcase_add_test(tc, ordinary_output_and_reboot_is_0);
	tcase_add_test(tc, boot_ready_once_per_vm);
	suite_add_tcase(s, tc);
	return check_run(s);
}
