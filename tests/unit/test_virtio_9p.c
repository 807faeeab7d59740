/* tests/unit/test_virtio_9p.c - the virtio-9p device (devices/virtio_9p.c)
 * through its registry entry and its virtio-mmio registers, on a fake
 * struct vm (tests/unit/fake_vm.h) with the real device thread: the
 * option parser, config space, 9P sessions over the ring (direct and
 * indirect chains), a chain with no room for a reply, and blocking locks
 * that park in flight: released by the guest, by a host process (the
 * retry timer), and ended by a device reset, which must not hang. */
#include <check.h>
#include <fcntl.h>
#include <linux/virtio_9p.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/p9_proto.h"
#include "devices/registry.h"
#include "devices/virtqueue.h"
#include "tests/unit/check_main.h"
#include "tests/unit/fake_vm.h"
#include "tests/unit/p9_wire.h"

extern const struct device_type virtio_9p_type;

#define RAM_SIZE	(8u << 20)
#define QSZ		64
#define DESC		0x1000ULL
#define AVAIL		0x2000ULL
#define USED		0x3000ULL
#define TABLES		0x8000ULL	/* indirect tables, 0x400 per slot */
#define MSGS		0x100000ULL	/* per slot: T-message 64 KiB */
#define REPLIES		0x500000ULL	/* per slot: reply room 64 KiB */
#define SLOT_SIZE	0x10000ULL

static uint8_t *ram;
static char dir[64];
static uint16_t seen_used;
static struct p9w_msg M;
static struct p9w_reply R;
static uint16_t next_tag = 1;



static uint16_t *avail(void) { return (uint16_t *)(ram + AVAIL); }
/* acquire, as a driver reads it: the used entries, the replies and the
 * device's last look at the descriptors come before what we do next */
static uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)(ram + USED + 2), __ATOMIC_ACQUIRE);
}
static struct vring_used_elem *used_ring(void)
{
	return (struct vring_used_elem *)(ram + USED + 4);
}
static struct vring_desc *desc(unsigned i)
{
	return (struct vring_desc *)(ram + DESC) + i;
}

static uint32_t driver_init(void)
{
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) |
		     (1ULL << VIRTIO_9P_MOUNT_TAG) |
		     (1ULL << VIRTIO_F_INDIRECT_DESC) |
		     (1ULL << VIRTIO_F_EVENT_IDX);
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	wr32(VIRTIO_MMIO_STATUS, 0);
	memset(ram, 0, MSGS);
	seen_used = 0;
	wr32(VIRTIO_MMIO_STATUS, st);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	st |= VIRTIO_STATUS_FEATURES_OK;
	wr32(VIRTIO_MMIO_STATUS, st);
	wr32(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr32(VIRTIO_MMIO_QUEUE_NUM, QSZ);
	wr32(VIRTIO_MMIO_QUEUE_DESC_LOW, DESC);
	wr32(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_LOW, AVAIL);
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_READY, 1);
	wr32(VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	return rd32(VIRTIO_MMIO_STATUS);
}

static void offer(uint16_t head)
{
	uint16_t idx = avail()[1];

	avail()[2 + idx % QSZ] = head;
	__atomic_store_n(&avail()[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static void kick(void)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(fvm.dev[0].notify_fd[0], &one, 8), 8);
}

/* Wait until n more used entries appear (bound: ms). */
static bool wait_used(unsigned n, int ms)
{
	for (int i = 0; i < ms; i++) {
		if ((uint16_t)(used_idx() - seen_used) >= n)
			return true;
		usleep(1000);
	}
	return false;
}

/* The used entry at position k (from 0) and its reply, parsed into R. */
static uint16_t take_used(void)
{
	struct vring_used_elem u = used_ring()[seen_used % QSZ];

	seen_used++;
	R.len = u.len;
	ck_assert_uint_le(u.len, SLOT_SIZE);
	memcpy(R.b, ram + REPLIES + (u.id / 2) * SLOT_SIZE, u.len);
	p9w_parse(&R);
	return (uint16_t)u.id;
}

/* Put M in slot s (descriptors 2s, 2s+1) and offer it. */
static void post(unsigned s)
{
	p9w_end(&M);
	memcpy(ram + MSGS + s * SLOT_SIZE, M.b, M.n);
	*desc(2 * s) = (struct vring_desc){ MSGS + s * SLOT_SIZE,
					    (uint32_t)M.n, VIRTQ_DESC_F_NEXT,
					    (uint16_t)(2 * s + 1) };
	*desc(2 * s + 1) = (struct vring_desc){ REPLIES + s * SLOT_SIZE,
						SLOT_SIZE, VIRTQ_DESC_F_WRITE,
						0 };
	offer((uint16_t)(2 * s));
}

/* One request in slot 0, waited for; the Rlerror errno or 0. */
static int rpc(uint8_t rtype)
{
	post(0);
	kick();
	ck_assert_msg(wait_used(1, 5000), "no reply to type %u", M.b[4]);
	take_used();
	if (R.type == P9_RLERROR)
		return p9w_err(&R);
	ck_assert_uint_eq(R.type, rtype);
	return 0;
}

static void start(uint8_t type)
{
	p9w_start(&M, type, next_tag++);
}

static void session(void)
{
	start(P9_TVERSION);
	p9w_32(&M, 65536);
	p9w_str(&M, P9_VERSION_L);
	ck_assert_int_eq(rpc(P9_RVERSION), 0);
	ck_assert_uint_eq(p9w_r32(&R), 65536);
	start(P9_TATTACH);
	p9w_32(&M, 1);
	p9w_32(&M, P9_NOFID);
	p9w_str(&M, "");
	p9w_str(&M, "");
	p9w_32(&M, 0);
	ck_assert_int_eq(rpc(P9_RATTACH), 0);
}

static int walk_open(uint32_t newfid, const char *name, uint32_t flags)
{
	int e;

	start(P9_TWALK);
	p9w_32(&M, 1);
	p9w_32(&M, newfid);
	p9w_16(&M, 1);
	p9w_str(&M, name);
	if ((e = rpc(P9_RWALK)))
		return e;
	start(P9_TLOPEN);
	p9w_32(&M, newfid);
	p9w_32(&M, flags);
	return rpc(P9_RLOPEN);
}

static int make(const char *opts, char *err, size_t errlen)
{
	char buf[512];
	uint8_t cfg[256];

	ck_assert_uint_le(virtio_9p_type.config_size, sizeof(cfg));
	memset(cfg, 0, sizeof(cfg));
	snprintf(buf, sizeof(buf), "%s", opts);
	if (virtio_9p_type.parse(buf, cfg, fvm.ndev, err, errlen))
		return -1;
	return virtio_9p_type.create(&fvm, cfg, err, errlen);
}

static void setup(void)
{
	char opts[128], err[256];

	memset(&fvm, 0, sizeof(fvm));
	ram = aligned_alloc(4096, RAM_SIZE);
	memset(ram, 0, RAM_SIZE);
	fvm.mem = (struct guest_mem){ ram, RAM_SIZE, RAM_SIZE };
	snprintf(dir, sizeof(dir), "/tmp/v9p-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(opts, sizeof(opts), "%s/f", dir);
	{
		FILE *f = fopen(opts, "w");

		ck_assert_ptr_nonnull(f);
		fputs("file contents\n", f);
		fclose(f);
	}
	snprintf(opts, sizeof(opts), "path=%s,tag=share0", dir);
	ck_assert_msg(make(opts, err, sizeof(err)) == 0, "%s", err);
	log_count = 0;
}

static void teardown(void)
{
	char cmd[128];

	fake_destroy_all();
	free(ram);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(options)
{
	char err[256], opts[300];

	ck_assert_str_eq(virtio_9p_type.option, "fs");
	ck_assert_uint_eq(virtio_9p_type.max, 8);
	ck_assert_int_eq(make("tag=x", err, sizeof(err)), -1);
	ck_assert(strstr(err, "path="));
	ck_assert_int_eq(make("path=/tmp", err, sizeof(err)), -1);
	ck_assert(strstr(err, "tag="));
	ck_assert_int_eq(make("path=/tmp,tag=a b", err, sizeof(err)), -1);
	ck_assert(strstr(err, "tag 'a b'"));
	ck_assert_int_eq(make("path=/tmp,tag=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", err,
			      sizeof(err)), -1);
	ck_assert_int_eq(make("path=/tmp,tag=t,readonly=maybe", err,
			      sizeof(err)), -1);
	ck_assert(strstr(err, "readonly=maybe"));
	ck_assert_int_eq(make("path=/tmp,tag=t,cache=none", err, sizeof(err)),
			 -1);
	ck_assert(strstr(err, "unknown key 'cache'"));
	ck_assert_int_eq(make("path=/tmp,tag", err, sizeof(err)), -1);
	/* a path that is not a directory: bad input, one line naming it */
	ck_assert_int_eq(make("path=/nonexistent/dir,tag=t", err, sizeof(err)),
			 VMM_EXIT_BAD_INPUT);
	ck_assert(strstr(err, "/nonexistent/dir"));
	snprintf(opts, sizeof(opts), "path=%s/f,tag=t", dir);
	ck_assert_int_eq(make(opts, err, sizeof(err)), VMM_EXIT_BAD_INPUT);
	ck_assert(strstr(err, "Not a directory"));
	snprintf(opts, sizeof(opts), "path=%s,tag=second,readonly=on", dir);
	ck_assert_int_eq(make(opts, err, sizeof(err)), 0);
}
END_TEST

START_TEST(config_space)
{
	uint16_t len;
	char tag[16] = "";

	ck_assert_uint_eq(rd32(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_9P);
	wr32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	ck_assert(rd32(VIRTIO_MMIO_DEVICE_FEATURES) &
		  (1u << VIRTIO_9P_MOUNT_TAG));
	wr32(VIRTIO_MMIO_QUEUE_SEL, 0);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_QUEUE_NUM_MAX), 128);
	fvm.dev[0].rd(fvm.dev[0].opaque, VIRTIO_MMIO_CONFIG, &len, 2);
	ck_assert_uint_eq(len, 6);
	for (unsigned i = 0; i < len; i++)
		fvm.dev[0].rd(fvm.dev[0].opaque, VIRTIO_MMIO_CONFIG + 2 + i,
			      &tag[i], 1);
	ck_assert_str_eq(tag, "share0");
}
END_TEST

START_TEST(session_over_the_ring)
{
	char buf[64];
	uint32_t n;

	ck_assert(driver_init() & VIRTIO_STATUS_DRIVER_OK);
	session();
	ck_assert_int_eq(walk_open(2, "f", 2), 0);
	start(P9_TREAD);
	p9w_32(&M, 2);
	p9w_64(&M, 0);
	p9w_32(&M, 100);
	ck_assert_int_eq(rpc(P9_RREAD), 0);
	n = p9w_r32(&R);
	ck_assert_uint_eq(n, 14);
	ck_assert_uint_eq(R.len, 11 + 14);	/* used len = reply length */
	p9w_get(&R, buf, n);
	ck_assert(!memcmp(buf, "file contents\n", 14));
	start(P9_TWRITE);
	p9w_32(&M, 2);
	p9w_64(&M, 0);
	p9w_32(&M, 4);
	p9w_put(&M, "FILE", 4);
	ck_assert_int_eq(rpc(P9_RWRITE), 0);
	ck_assert_uint_eq(p9w_r32(&R), 4);
	/* a read scattered over an indirect table of three buffers */
	start(P9_TREAD);
	p9w_32(&M, 2);
	p9w_64(&M, 0);
	p9w_32(&M, 100);
	p9w_end(&M);
	memcpy(ram + MSGS, M.b, M.n);
	{
		struct vring_desc *t = (struct vring_desc *)(ram + TABLES);

		t[0] = (struct vring_desc){ MSGS, (uint32_t)M.n,
					    VIRTQ_DESC_F_NEXT, 1 };
		t[1] = (struct vring_desc){ REPLIES, 5,
					    VIRTQ_DESC_F_NEXT |
					    VIRTQ_DESC_F_WRITE, 2 };
		t[2] = (struct vring_desc){ REPLIES + 5, 9,
					    VIRTQ_DESC_F_NEXT |
					    VIRTQ_DESC_F_WRITE, 3 };
		t[3] = (struct vring_desc){ REPLIES + 14, 100,
					    VIRTQ_DESC_F_WRITE, 0 };
		*desc(0) = (struct vring_desc){ TABLES, 64,
						VIRTQ_DESC_F_INDIRECT, 0 };
	}
	offer(0);
	kick();
	ck_assert(wait_used(1, 5000));
	take_used();
	ck_assert_uint_eq(R.type, P9_RREAD);
	ck_assert_uint_eq(p9w_r32(&R), 14);
	p9w_get(&R, buf, 14);
	ck_assert(!memcmp(buf, "FILE contents\n", 14));
}
END_TEST

START_TEST(no_room_for_a_reply)
{
	ck_assert(driver_init() & VIRTIO_STATUS_DRIVER_OK);
	session();
	start(P9_TCLUNK);
	p9w_32(&M, 77);
	p9w_end(&M);
	memcpy(ram + MSGS, M.b, M.n);
	*desc(0) = (struct vring_desc){ MSGS, (uint32_t)M.n, 0, 0 };
	offer(0);
	kick();
	ck_assert(wait_used(1, 5000));
	ck_assert_uint_eq(used_ring()[seen_used % QSZ].len, 0);
	seen_used++;
	ck_assert_int_ge(log_count, 1);
	ck_assert(strstr(last_log, "no room for a reply"));
	/* the device goes on */
	ck_assert(!(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET));
	start(P9_TSTATFS);
	p9w_32(&M, 1);
	ck_assert_int_eq(rpc(P9_RSTATFS), 0);
}
END_TEST

static void lock_msg(uint32_t fid, uint8_t type, uint32_t flags)
{
	start(P9_TLOCK);
	p9w_32(&M, fid);
	p9w_8(&M, type);
	p9w_32(&M, flags);
	p9w_64(&M, 0);
	p9w_64(&M, 0);
	p9w_32(&M, 1);
	p9w_str(&M, "t");
}

START_TEST(parked_locks)
{
	char path[128];
	int pfd[2], release[2];
	pid_t pid;
	char c;

	ck_assert(driver_init() & VIRTIO_STATUS_DRIVER_OK);
	session();
	ck_assert_int_eq(walk_open(2, "f", 2), 0);
	ck_assert_int_eq(walk_open(3, "f", 2), 0);
	lock_msg(2, P9_LOCK_TYPE_WRLCK, 0);
	ck_assert_int_eq(rpc(P9_RLOCK), 0);
	ck_assert_uint_eq(p9w_r8(&R), P9_LOCK_SUCCESS);
	/* fid 3 waits in slot 1, in flight, while slot 0 goes on */
	lock_msg(3, P9_LOCK_TYPE_WRLCK, P9_LOCK_FLAGS_BLOCK);
	post(1);
	kick();
	ck_assert(!wait_used(1, 100));
	start(P9_TSTATFS);
	p9w_32(&M, 1);
	ck_assert_int_eq(rpc(P9_RSTATFS), 0);
	/* fid 2 unlocks: both answers come (in either order) */
	lock_msg(2, P9_LOCK_TYPE_UNLCK, 0);
	post(0);
	kick();
	ck_assert(wait_used(2, 5000));
	for (int k = 0, heads = 0; k < 2; k++) {
		heads |= 1 << take_used();
		ck_assert_uint_eq(R.type, P9_RLOCK);
		ck_assert_uint_eq(p9w_r8(&R), P9_LOCK_SUCCESS);
		if (k == 1)
			ck_assert_int_eq(heads, (1 << 0) | (1 << 2));
	}
	lock_msg(3, P9_LOCK_TYPE_UNLCK, 0);
	ck_assert_int_eq(rpc(P9_RLOCK), 0);

	/* a host process holds the file: the timer retries until it goes */
	snprintf(path, sizeof(path), "%s/f", dir);
	/* the host process holds it until told to go (no sleep: a loaded
	 * machine must not let it go before the guest asked) */
	ck_assert_int_eq(pipe(pfd), 0);
	ck_assert_int_eq(pipe(release), 0);
	pid = fork();
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd = open(path, O_RDWR);

		if (fd < 0 || fcntl(fd, F_SETLK, &fl) || write(pfd[1], "l", 1) != 1)
			_exit(1);
		if (read(release[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	lock_msg(2, P9_LOCK_TYPE_RDLCK, P9_LOCK_FLAGS_BLOCK);
	post(1);
	kick();
	ck_assert(!wait_used(1, 50));
	ck_assert_int_eq(write(release[1], "g", 1), 1);
	ck_assert(wait_used(1, 5000));	/* no kick: the timer did it */
	take_used();
	ck_assert_uint_eq(R.type, P9_RLOCK);
	ck_assert_uint_eq(p9w_r8(&R), P9_LOCK_SUCCESS);
	waitpid(pid, NULL, 0);
	close(release[0]);
	close(release[1]);

	/* parked when the driver resets: the reset returns (the parked
	 * chain ends without a reply) and a new session starts clean */
	lock_msg(3, P9_LOCK_TYPE_WRLCK, P9_LOCK_FLAGS_BLOCK);
	post(1);
	kick();
	ck_assert(!wait_used(1, 50));
	wr32(VIRTIO_MMIO_STATUS, 0);
	ck_assert_uint_eq(rd32(VIRTIO_MMIO_STATUS), 0);
	ck_assert(driver_init() & VIRTIO_STATUS_DRIVER_OK);
	session();
	start(P9_TCLUNK);
	p9w_32(&M, 2);
	ck_assert_int_eq(rpc(P9_RCLUNK), EBADF);	/* the old fids went */
	ck_assert_int_eq(walk_open(2, "f", 2), 0);
	lock_msg(2, P9_LOCK_TYPE_WRLCK, 0);
	ck_assert_int_eq(rpc(P9_RLOCK), 0);
	ck_assert_uint_eq(p9w_r8(&R), P9_LOCK_SUCCESS);	/* locks went too */
}
END_TEST

/* A descriptor outside guest RAM: the queue breaks, the device asks for
 * a reset, and comes back after one. */
START_TEST(hostile_chain)
{
	ck_assert(driver_init() & VIRTIO_STATUS_DRIVER_OK);
	*desc(0) = (struct vring_desc){ RAM_SIZE - 8, 64, 0, 0 };
	offer(0);
	kick();
	for (int i = 0; i < 5000 &&
	     !(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(1000);
	ck_assert(rd32(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	ck_assert(driver_init() & VIRTIO_STATUS_DRIVER_OK);
	session();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_9p");
	TCase *t = tcase_create("device");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 30);
	tcase_add_test(t, options);
	tcase_add_test(t, config_space);
	tcase_add_test(t, session_over_the_ring);
	tcase_add_test(t, no_room_for_a_reply);
	tcase_add_test(t, parked_locks);
	tcase_add_test(t, hostile_chain);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return check_run(suite());
}
