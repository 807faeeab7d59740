/* Unit tests: the snapshot format (vmm/snapshot.c, vmm/snap_buf.c): the
 * writer, and the reader's checks that run before KVM is touched --
 * every bad file is refused with VMM_EXIT_BAD_INPUT and one line. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/options.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"
#include "tests/unit/check_main.h"

#define MEM	(16u << 20)

static char dir[64];
static char err[512];
static struct vmm_config cfg;
static char disk_val[] = "path=/nonexistent.img,format=raw";

static void path_of(char *out, size_t n, const char *file)
{
	snprintf(out, n, "%s/%s", dir, file);
}

/* A writable copy of a device value that outlives the config (the
 * parser splits it in place and the config points into it). */
static char *keep(const char *v)
{
	static char store[16][64];
	static unsigned next;
	char *p = store[next++ % 16];

	snprintf(p, sizeof(store[0]), "%s", v);
	return p;
}

/* A config as the command line would give it: one disk. */
static void cfg_one_disk(void)
{
	vmm_config_clear(&cfg);
	ck_assert_int_eq(vmm_config_add_device(&cfg, "disk", keep(disk_val),
					       err, sizeof(err)), 0);
}

static void put_section(struct snap_buf *b, const char *name, size_t n)
{
	size_t at = snap_section_begin(b, name);
	uint8_t *junk = calloc(1, n + 1);

	vm_snap_put(b, junk, n);
	free(junk);
	snap_section_end(b, at);
}

/* A well-formed snapshot of a 16 MiB, ncpus VM with cfg's devices. */
static void write_snapshot(unsigned ncpus, const char *arch)
{
	struct snap_buf b = { 0 };
	char path[128];
	int fd;

	if (!arch) {
		snap_put_machine(&b, MEM, ncpus, &cfg);
	} else {	/* the same, from another machine */
		struct snap_machine m = { .mem_size = MEM, .ncpus = ncpus,
					  .page_size = 4096 };
		size_t at = snap_section_begin(&b, "machine");

		snprintf(m.arch, sizeof(m.arch), "%s", arch);
		vm_snap_put(&b, &m, sizeof(m));
		snap_section_end(&b, at);
	}
	put_section(&b, "vm", 100);
	for (unsigned i = 0; i < ncpus; i++) {
		char name[16];

		snprintf(name, sizeof(name), "vcpu%u", i);
		put_section(&b, name, 333);
	}
	path_of(path, sizeof(path), SNAP_STATE_FILE);
	ck_assert_int_eq(snap_state_write(path, &b, err, sizeof(err)), 0);
	snap_buf_free(&b);
	path_of(path, sizeof(path), SNAP_MEMORY_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, MEM), 0);
	close(fd);
}

static int open_it(void)
{
	struct snapshot *s = NULL;
	int r;

	err[0] = 0;
	r = snapshot_open(dir, &cfg, &s, err, sizeof(err));
	ck_assert(r ? s == NULL : s != NULL);
	if (!r) {
		ck_assert_uint_eq(s->machine.mem_size, MEM);
		ck_assert_int_ge(s->mem_fd, 0);
	}
	snapshot_close(s);
	return r;
}

static void expect_bad(const char *what)
{
	ck_assert_int_eq(open_it(), VMM_EXIT_BAD_INPUT);
	ck_assert_msg(strstr(err, what), "error '%s' lacks '%s'", err, what);
	ck_assert_msg(!strchr(err, '\n'), "one line: '%s'", err);
}

/* Change the state file at off (n bytes); fix_crc: recompute the
 * checksums so only the content is wrong. */
static void patch_state(long off, const void *data, size_t n, bool fix_crc)
{
	char path[128];
	struct snap_header h;
	struct stat st;
	uint8_t *all;
	FILE *f;

	path_of(path, sizeof(path), SNAP_STATE_FILE);
	ck_assert_int_eq(stat(path, &st), 0);
	all = malloc((size_t)st.st_size);
	f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(all, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	memcpy(all + off, data, n);
	if (fix_crc) {
		memcpy(&h, all, sizeof(h));
		h.payload_crc32 = snap_crc32(0, all + sizeof(h),
					     (size_t)st.st_size - sizeof(h));
		h.header_crc32 = snap_crc32(0, &h, offsetof(struct snap_header,
							    header_crc32));
		memcpy(all, &h, sizeof(h));
	}
	rewind(f);
	ck_assert_uint_eq(fwrite(all, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	free(all);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/vmm-snap-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	vmm_config_init(&cfg);
	cfg_one_disk();
}

static void teardown(void)
{
	char cmd[128];

	vmm_config_clear(&cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(crc_known_value)
{
	ck_assert_uint_eq(snap_crc32(0, "123456789", 9), 0xcbf43926u);
	ck_assert_uint_eq(snap_crc32(snap_crc32(0, "1234", 4), "56789", 5),
			  0xcbf43926u);
}
END_TEST

START_TEST(sections_round_trip)
{
	struct snap_buf b = { 0 };
	struct snapshot s = { .mem_fd = -1 };
	struct snap_reader r;
	uint32_t v = 0x12345678, got;
	uint8_t odd[3] = { 1, 2, 3 };

	size_t at = snap_section_begin(&b, "one");
	vm_snap_put(&b, odd, sizeof(odd));
	snap_section_end(&b, at);
	ck_assert_uint_eq(b.len % 8, 0);	/* padded */
	at = snap_section_begin(&b, "two");
	vm_snap_put(&b, &v, sizeof(v));
	snap_section_end(&b, at);
	s.payload = b.data;
	s.payload_size = b.len;
	ck_assert_int_eq(snapshot_section(&s, "two", &r), 0);
	ck_assert_uint_eq(vm_snap_left(&r), 4);
	ck_assert_int_eq(vm_snap_get(&r, &got, sizeof(got)), 0);
	ck_assert_uint_eq(got, v);
	ck_assert_int_eq(vm_snap_get(&r, &got, 1), -1);	/* short */
	ck_assert_int_eq(snapshot_section(&s, "one", &r), 0);
	ck_assert_uint_eq(vm_snap_left(&r), 3);
	ck_assert_int_eq(snapshot_section(&s, "three", &r), -1);
	snap_buf_free(&b);
}
END_TEST

START_TEST(valid_opens)
{
	write_snapshot(2, NULL);
	ck_assert_int_eq(open_it(), 0);
	/* --memory and --cpus may be given when they match */
	ck_assert_int_eq(vmm_config_apply(&cfg, "memory", (char[]){ "16M" },
					  err, sizeof(err)), 0);
	ck_assert_int_eq(vmm_config_apply(&cfg, "cpus", (char[]){ "2" },
					  err, sizeof(err)), 0);
	ck_assert_int_eq(open_it(), 0);
}
END_TEST

START_TEST(missing_files)
{
	expect_bad("state: No such file");
	write_snapshot(1, NULL);
	{
		char path[128];

		path_of(path, sizeof(path), SNAP_MEMORY_FILE);
		unlink(path);
	}
	expect_bad("memory: No such file");
}
END_TEST

START_TEST(truncated)
{
	char path[128];
	struct stat st;

	write_snapshot(1, NULL);
	path_of(path, sizeof(path), SNAP_STATE_FILE);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(truncate(path, st.st_size - 9), 0);
	expect_bad("truncated");
	ck_assert_int_eq(truncate(path, 20), 0);
	expect_bad("not a vmm snapshot");
	ck_assert_int_eq(truncate(path, 0), 0);
	expect_bad("not a vmm snapshot");
}
END_TEST

START_TEST(corrupt)
{
	uint8_t x = 0x5a;

	write_snapshot(1, NULL);
	patch_state(sizeof(struct snap_header) + 40, &x, 1, false);
	expect_bad("checksum mismatch");
	write_snapshot(1, NULL);
	patch_state(offsetof(struct snap_header, payload_size), &x, 1, false);
	expect_bad("header checksum");
	patch_state(0, "NOTSNAP", 8, false);
	expect_bad("not a vmm snapshot");
}
END_TEST

START_TEST(wrong_version)
{
	uint32_t v = SNAP_VERSION + 1;

	write_snapshot(1, NULL);
	patch_state(offsetof(struct snap_header, version), &v, sizeof(v), true);
	expect_bad("format version 2");
}
END_TEST

START_TEST(wrong_machine)
{
	write_snapshot(1, "aarch64");
	expect_bad("taken on a aarch64 machine");
}
END_TEST

START_TEST(memory_file_size)
{
	char path[128];

	write_snapshot(1, NULL);
	path_of(path, sizeof(path), SNAP_MEMORY_FILE);
	ck_assert_int_eq(truncate(path, MEM - 4096), 0);
	expect_bad("the snapshot's RAM is 16777216");
	ck_assert_int_eq(truncate(path, MEM + 4096), 0);
	expect_bad("the snapshot's RAM is 16777216");
}
END_TEST

START_TEST(config_must_match)
{
	write_snapshot(1, NULL);
	ck_assert_int_eq(vmm_config_apply(&cfg, "memory", (char[]){ "32M" },
					  err, sizeof(err)), 0);
	expect_bad("--memory is 32 MiB, the snapshot's 16 MiB");
	cfg_one_disk();
	ck_assert_int_eq(vmm_config_apply(&cfg, "cpus", (char[]){ "4" },
					  err, sizeof(err)), 0);
	expect_bad("--cpus is 4, the snapshot has 1");
}
END_TEST

START_TEST(devices_must_match)
{
	write_snapshot(1, NULL);
	vmm_config_clear(&cfg);		/* no disk */
	expect_bad("the snapshot has 1 --disk, not given");
	cfg_one_disk();			/* two disks */
	ck_assert_int_eq(vmm_config_add_device(&cfg, "disk", keep(disk_val),
					       err, sizeof(err)), 0);
	expect_bad("2 --disk given where the snapshot has 1 --disk");
	vmm_config_clear(&cfg);		/* another kind */
	ck_assert_int_eq(vmm_config_add_device(&cfg, "vsock", keep("cid=3,uds=/tmp/x.sock"),
					       err, sizeof(err)), 0);
	expect_bad("--vsock given");
}
END_TEST

START_TEST(missing_sections)
{
	struct snap_buf b = { 0 };
	char path[128];

	write_snapshot(2, NULL);
	/* the same machine, one vCPU section short */
	snap_put_machine(&b, MEM, 2, &cfg);
	put_section(&b, "vm", 100);
	put_section(&b, "vcpu0", 10);
	path_of(path, sizeof(path), SNAP_STATE_FILE);
	ck_assert_int_eq(snap_state_write(path, &b, err, sizeof(err)), 0);
	expect_bad("no state for vCPU 1");
	snap_buf_free(&b);
	/* a section whose size runs past the end (checksums fixed) */
	write_snapshot(1, NULL);
	{
		uint32_t huge = 1u << 30;

		patch_state(sizeof(struct snap_header) +
			    offsetof(struct snap_section_hdr, size), &huge,
			    sizeof(huge), true);
	}
	expect_bad("runs past the end");
}
END_TEST

START_TEST(memory_writer_sparse)
{
	size_t size = 8u << 20;
	uint8_t *mem = calloc(1, size), *back = malloc(size);
	char path[128];
	struct stat st;
	int64_t n;
	int fd;

	/* data in three places; the rest zero */
	memset(mem + 4096, 0xab, 4096);
	memset(mem + 5 * 4096, 0xcd, 2 * 4096);
	mem[size - 1] = 1;
	path_of(path, sizeof(path), "mem");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	n = snap_write_memory(fd, mem, size, false);
	ck_assert_int_eq(n, 4 * 4096);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)size);
	ck_assert_int_lt(st.st_blocks * 512, (off_t)size / 4);	/* holes */
	ck_assert_int_eq(pread(fd, back, size, 0), (ssize_t)size);
	ck_assert(memcmp(mem, back, size) == 0);
	close(fd);
	free(mem);
	free(back);
}
END_TEST

/* Anonymous memory as a VM has it: untouched pages are skipped without
 * being read (they would read as zero anyway: the content must match). */
START_TEST(memory_writer_touched_only)
{
	size_t size = 8u << 20;
	uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *back = malloc(size);
	char path[128];
	int64_t n;
	int fd;

	ck_assert(mem != MAP_FAILED);
	mem[3 * 4096 + 17] = 7;			/* touched, data */
	memset(mem + 2 * 4096, 0, 4096);	/* touched, zero */
	mem[size - 4096] = 9;
	path_of(path, sizeof(path), "mem");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	n = snap_write_memory(fd, mem, size, true);
	ck_assert_int_eq(n, 2 * 4096);
	ck_assert_int_eq(pread(fd, back, size, 0), (ssize_t)size);
	ck_assert(memcmp(mem, back, size) == 0);
	close(fd);
	munmap(mem, size);
	free(back);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("format");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, crc_known_value);
	tcase_add_test(tc, sections_round_trip);
	tcase_add_test(tc, valid_opens);
	tcase_add_test(tc, missing_files);
	tcase_add_test(tc, truncated);
	tcase_add_test(tc, corrupt);
	tcase_add_test(tc, wrong_version);
	tcase_add_test(tc, wrong_machine);
	tcase_add_test(tc, memory_file_size);
	tcase_add_test(tc, config_must_match);
	tcase_add_test(tc, devices_must_match);
	tcase_add_test(tc, missing_sections);
	tcase_add_test(tc, memory_writer_sparse);
	tcase_add_test(tc, memory_writer_touched_only);
	suite_add_tcase(s, tc);
	return check_run(s);
}
