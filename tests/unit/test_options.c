/* Unit tests: ./vmm command-line parsing (vmm/options.c). */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_blk.h"
#include "vmm/options.h"
#include "tests/unit/check_main.h"

static struct vmm_config cfg;
static char err[256];

/* Parse a NULL-terminated list of arguments (copied: parsing edits them). */
static int parse(const char *first, ...)
{
	static char store[16][256];
	static char prog[] = "vmm";
	char *argv[17] = { prog };
	va_list ap;
	const char *a;
	int argc = 1;

	va_start(ap, first);
	for (a = first; a; a = va_arg(ap, const char *)) {
		snprintf(store[argc - 1], sizeof(store[0]), "%s", a);
		argv[argc] = store[argc - 1];
		argc++;
	}
	va_end(ap);
	err[0] = '\0';
	vmm_config_clear(&cfg);
	return options_parse(argc, argv, &cfg, err, sizeof(err));
}

START_TEST(sizes)
{
	uint64_t v;

	ck_assert_int_eq(parse_size("256M", &v), 0);
	ck_assert_uint_eq(v, 256ULL << 20);
	ck_assert_int_eq(parse_size("1G", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 30);
	ck_assert_int_eq(parse_size("4096k", &v), 0);
	ck_assert_uint_eq(v, 4096ULL << 10);
	ck_assert_int_eq(parse_size("512MiB", &v), 0);
	ck_assert_uint_eq(v, 512ULL << 20);
	ck_assert_int_eq(parse_size("1048576", &v), 0);
	ck_assert_uint_eq(v, 1048576);
	ck_assert_int_eq(parse_size("", &v), -1);
	ck_assert_int_eq(parse_size("M", &v), -1);
	ck_assert_int_eq(parse_size("-1M", &v), -1);
	ck_assert_int_eq(parse_size("12X", &v), -1);
	ck_assert_int_eq(parse_size("1.5G", &v), -1);
	ck_assert_int_eq(parse_size("99999999999999T", &v), -1);
	ck_assert_int_eq(parse_size("99999999999999999999999", &v), -1);
}
END_TEST

START_TEST(defaults_and_basic)
{
	ck_assert_int_eq(parse("--kernel", "k", NULL), 0);
	ck_assert_str_eq(cfg.kernel, "k");
	ck_assert_uint_eq(cfg.memory, VMM_DEFAULT_MEMORY);
	ck_assert_uint_eq(cfg.cpus, 1);
	ck_assert_ptr_null(cfg.cmdline);
	ck_assert_int_eq(cfg.serial, SERIAL_TTY);
	ck_assert_int_eq(cfg.pvm_quirks, TRI_AUTO);

	ck_assert_int_eq(parse("--kernel=k", "--memory", "size=1G", "--cpus", "boot=4",
			       "--cmdline", "a b=c", "--timeout", "2.5", "--boot-timer",
			       "--serial", "file=/tmp/x", "--initramfs", "i",
			       "--pvm-quirks=off", NULL), 0);
	ck_assert_uint_eq(cfg.memory, 1ULL << 30);
	ck_assert_uint_eq(cfg.cpus, 4);
	ck_assert_str_eq(cfg.cmdline, "a b=c");
	ck_assert(cfg.timeout > 2.49 && cfg.timeout < 2.51);
	ck_assert(cfg.boot_timer);
	ck_assert_int_eq(cfg.serial, SERIAL_FILE);
	ck_assert_str_eq(cfg.serial_path, "/tmp/x");
	ck_assert_str_eq(cfg.initramfs, "i");
	ck_assert_int_eq(cfg.pvm_quirks, TRI_OFF);
}
END_TEST

START_TEST(bad_options)
{
	ck_assert_int_eq(parse(NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "--kernel is required"));
	ck_assert_int_eq(parse("--kernel", "k", "--bogus", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown option '--bogus'"));
	ck_assert_int_eq(parse("--kernel", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "needs a value"));
	ck_assert_int_eq(parse("--kernel", "k", "--memory", "lots", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "invalid size"));
	ck_assert_int_eq(parse("--kernel", "k", "--memory", "1M", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "too small"));
	ck_assert_int_eq(parse("--kernel", "k", "--memory", "16777217", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--cpus", "0", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--cpus", "boot=65", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--cpus", "two", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--timeout", "0", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--timeout", "soon", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--serial", "telnet", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--boot-timer=1", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "stray", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--pvm-quirks", "maybe", NULL), -1);
}
END_TEST

START_TEST(disks)
{
	ck_assert_int_eq(parse("--kernel", "k", "--disk", "path=a.img,format=raw",
			       "--disk", "path=b.qcow2,format=qcow2,readonly=on,cache=none,serial=abc",
			       NULL), 0);
	ck_assert_uint_eq(vmm_config_device_count(&cfg, "disk"), 2);
	const struct virtio_blk_opts *disk0 = vmm_config_device(&cfg, "disk", 0);
	const struct virtio_blk_opts *disk1 = vmm_config_device(&cfg, "disk", 1);
	ck_assert_ptr_null(vmm_config_device(&cfg, "disk", 2));
	ck_assert_str_eq(disk0->blk.path, "a.img");
	ck_assert_int_eq(disk0->blk.format, BLK_FMT_RAW);
	ck_assert(!disk0->blk.readonly);
	ck_assert_int_eq(disk0->blk.cache, BLK_CACHE_WRITEBACK);
	ck_assert_uint_eq(disk0->index, 0);
	ck_assert_str_eq(disk1->blk.path, "b.qcow2");
	ck_assert_int_eq(disk1->blk.format, BLK_FMT_QCOW2);
	ck_assert(disk1->blk.readonly);
	ck_assert_int_eq(disk1->blk.cache, BLK_CACHE_NONE);
	ck_assert_str_eq(disk1->serial, "abc");
	ck_assert_uint_eq(disk1->index, 1);

	ck_assert_int_eq(parse("--kernel", "k", "--disk", "path=a.img", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "format= is required"));
	ck_assert_int_eq(parse("--kernel", "k", "--disk", "path=a,format=vmdk", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "unknown format"));
	ck_assert_int_eq(parse("--kernel", "k", "--disk", "format=raw", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--disk", "path=a,format=raw,readonly=maybe", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--disk", "path=a,format=raw,cache=unsafe", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--disk", "path=a,format=raw,color=red", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--disk", "path=a,format=raw,junk", NULL), -1);
	ck_assert_int_eq(parse("--kernel", "k", "--disk",
			       "path=a,format=raw,serial=123456789012345678901", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "longer than 20"));
}
END_TEST

START_TEST(too_many_disks)
{
	char *argv[2 + 2 * (VIRTIO_BLK_MAX_DISKS + 1) + 1];
	char bufs[VIRTIO_BLK_MAX_DISKS + 1][2][64], prog[] = "vmm", kernel[] = "--kernel=k";
	int argc = 0, i;

	argv[argc++] = prog;
	argv[argc++] = kernel;
	for (i = 0; i <= VIRTIO_BLK_MAX_DISKS; i++) {	/* parsing edits argv: copies */
		snprintf(bufs[i][0], sizeof(bufs[i][0]), "--disk");
		snprintf(bufs[i][1], sizeof(bufs[i][1]), "path=d%d,format=raw", i);
		argv[argc++] = bufs[i][0];
		argv[argc++] = bufs[i][1];
	}
	vmm_config_clear(&cfg);
	ck_assert_int_eq(options_parse(argc, argv, &cfg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "at most"));
}
END_TEST

/* Two shares with one mount tag: refused at parsing, naming both. */
START_TEST(fs_duplicate_tag)
{
	ck_assert_int_eq(parse("--kernel", "k", "--fs", "path=/a,tag=t",
			       "--fs", "path=/b,tag=u", NULL), 0);
	ck_assert_int_eq(parse("--kernel", "k", "--fs", "path=/a,tag=t",
			       "--fs", "path=/b,tag=u", "--fs",
			       "path=/c,tag=t", NULL), -1);
	ck_assert_ptr_nonnull(strstr(err, "--fs: tag 't' is already used by "
				     "--fs #1 (path=/a)"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("options");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, sizes);
	tcase_add_test(tc, defaults_and_basic);
	tcase_add_test(tc, bad_options);
	tcase_add_test(tc, disks);
	tcase_add_test(tc, too_many_disks);
	tcase_add_test(tc, fs_duplicate_tag);
	suite_add_tcase(s, tc);
	return check_run(s);
}
