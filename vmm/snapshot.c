/* vmm/snapshot.c - the snapshot format, its writer and validating reader,
 * and the KVM state of the VM and its vCPUs (see snapshot.h and
 * docs/snapshot.md). */
#include "vmm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/registry.h"
#include "vmm/options.h"
#include "vmm/vcpu.h"
#include "vmm/vm_private.h"
#include "vmm/vmm.h"

#define PAGE		4096u
#define MSR_IA32_TSC		0x10
#define MSR_TSC_DEADLINE	0x6e0	/* set after the LAPIC (its timer mode) */
#define MAX_MSRS	1024
#define MSR_BATCH	255	/* KVM_GET/SET_MSRS take fewer than 256 at once */
#define MAX_XSAVE	(1u << 20)
#define MAX_CPUID	256
#define PAUSE_MS	5000	/* vCPUs and devices get this long to stop */

_Static_assert(sizeof(struct snap_header) == 32, "header layout");
_Static_assert(sizeof(struct snap_section_hdr) == 32, "section layout");

/* ---- bytes ---- */

void snap_put_machine(struct snap_buf *b, uint64_t mem_size, unsigned ncpus,
		      const struct vmm_config *cfg)
{
	struct snap_machine m = {
		.arch = SNAP_ARCH,
		.vmm_version = VMM_VERSION,
		.mem_size = mem_size,
		.ncpus = ncpus,
		.page_size = PAGE,
	};
	struct snap_machine_dev d[VMM_MAX_DEVICE_TYPES];
	size_t at = snap_section_begin(b, "machine");

	memset(d, 0, sizeof(d));
	for (unsigned i = 0; i < VMM_MAX_DEVICE_TYPES; i++) {
		const struct vmm_device_configs *dc = &cfg->devices[i];

		if (!dc->count)
			continue;
		snprintf(d[m.ndevice_types].option, sizeof(d[0].option), "%s",
			 dc->type->option);
		d[m.ndevice_types++].count = dc->count;
	}
	vm_snap_put(b, &m, sizeof(m));
	vm_snap_put(b, d, m.ndevice_types * sizeof(d[0]));
	snap_section_end(b, at);
}

static int pwrite_all(int fd, const void *p, size_t n, off_t off)
{
	const uint8_t *c = p;

	while (n) {
		ssize_t w = pwrite(fd, c, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/* Write path whole or not at all: fill() writes PATH.tmp (0, or -1 with
 * errno), which then replaces path.  0, or -1 with the error line. */
static int write_via_tmp(const char *path, int (*fill)(int fd, void *arg),
			 void *arg, char *err, size_t errlen)
{
	char tmp[4300];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return errf(err, errlen, "%s: %s", tmp, strerror(errno));
	if (fill(fd, arg)) {
		errf(err, errlen, "%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

struct state_file {
	const struct snap_header *h;
	const struct snap_buf *payload;
};

static int fill_state(int fd, void *arg)
{
	const struct state_file *f = arg;

	if (pwrite_all(fd, f->h, sizeof(*f->h), 0) ||
	    pwrite_all(fd, f->payload->data, f->payload->len, sizeof(*f->h)))
		return -1;
	return 0;
}

int snap_state_write(const char *path, const struct snap_buf *payload,
		     char *err, size_t errlen)
{
	struct snap_header h = {
		.magic = SNAP_MAGIC,
		.version = SNAP_VERSION,
		.header_size = sizeof(h),
		.payload_size = payload->len,
	};
	struct state_file f = { &h, payload };

	if (payload->failed)
		return errf(err, errlen, "%s: out of memory", path);
	h.payload_crc32 = snap_crc32(0, payload->data, payload->len);
	h.header_crc32 = snap_crc32(0, &h, offsetof(struct snap_header,
						    header_crc32));
	return write_via_tmp(path, fill_state, &f, err, errlen);
}

/* ---- reading and checking, all before KVM ---- */

/* Walk the sections: each inside the payload.  0 or -1 (err). */
static int check_sections(const uint8_t *p, size_t len, const char *path,
			  char *err, size_t errlen)
{
	size_t off = 0;

	while (off < len) {
		struct snap_section_hdr h;

		if (len - off < sizeof(h))
			return errf(err, errlen, "%s: section header cut at "
				    "byte %zu", path, off);
		memcpy(&h, p + off, sizeof(h));
		if (!memchr(h.name, 0, sizeof(h.name)))
			return errf(err, errlen, "%s: malformed section name at "
				    "byte %zu", path, off);
		off += sizeof(h);
		if (h.size > len - off)
			return errf(err, errlen, "%s: section %s runs past the "
				    "end", path, h.name);
		off += h.size + (8 - h.size % 8) % 8;
	}
	return 0;
}

int snapshot_section(const struct snapshot *s, const char *name,
		     struct snap_reader *r)
{
	size_t off = 0;

	while (off + sizeof(struct snap_section_hdr) <= s->payload_size) {
		struct snap_section_hdr h;

		memcpy(&h, s->payload + off, sizeof(h));
		off += sizeof(h);
		if (!strcmp(h.name, name)) {
			*r = (struct snap_reader){ s->payload + off, h.size, 0 };
			return 0;
		}
		off += h.size + (8 - h.size % 8) % 8;
	}
	return -1;
}

static int read_state(struct snapshot *s, char *err, size_t errlen)
{
	char path[4200];
	struct snap_header h;
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/" SNAP_STATE_FILE, s->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errf(err, errlen, "--restore: %s: %s", path,
			    strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return errf(err, errlen, "--restore: %s: not a regular file",
			    path);
	}
	n = pread(fd, &h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h) || memcmp(h.magic, SNAP_MAGIC, 8)) {
		close(fd);
		return errf(err, errlen, "--restore: %s: not a vmm snapshot "
			    "(bad magic or shorter than its header)", path);
	}
	if (h.header_crc32 != snap_crc32(0, &h, offsetof(struct snap_header,
							 header_crc32))) {
		close(fd);
		return errf(err, errlen, "--restore: %s: header checksum "
			    "mismatch (corrupt)", path);
	}
	if (h.version != SNAP_VERSION || h.header_size != sizeof(h)) {
		close(fd);
		return errf(err, errlen, "--restore: %s: format version %u, "
			    "this vmm reads version %u", path, h.version,
			    SNAP_VERSION);
	}
	if (h.payload_size > SNAP_STATE_MAX ||
	    (uint64_t)st.st_size != sizeof(h) + h.payload_size) {
		close(fd);
		return errf(err, errlen, "--restore: %s: %lld bytes, the header "
			    "says %llu (truncated or padded)", path,
			    (long long)st.st_size,
			    (unsigned long long)(sizeof(h) + h.payload_size));
	}
	s->payload_size = h.payload_size;
	s->payload = malloc(s->payload_size ? s->payload_size : 1);
	if (!s->payload) {
		close(fd);
		return errf(err, errlen, "--restore: out of memory");
	}
	n = pread(fd, s->payload, s->payload_size, sizeof(h));
	close(fd);
	if (n != (ssize_t)s->payload_size)
		return errf(err, errlen, "--restore: %s: short read", path);
	if (snap_crc32(0, s->payload, s->payload_size) != h.payload_crc32)
		return errf(err, errlen, "--restore: %s: checksum mismatch "
			    "(corrupt)", path);
	return check_sections(s->payload, s->payload_size, path, err, errlen);
}

/* The machine section against cfg. */
static int check_machine(struct snapshot *s, const struct vmm_config *cfg,
			 char *err, size_t errlen)
{
	struct snap_machine *m = &s->machine;
	struct snap_machine_dev d;
	struct snap_reader r;
	unsigned want = 0, i;

	if (snapshot_section(s, "machine", &r) || vm_snap_get(&r, m, sizeof(*m)))
		return errf(err, errlen, "--restore: %s: no machine section",
			    s->dir);
	m->arch[sizeof(m->arch) - 1] = m->vmm_version[sizeof(m->vmm_version) - 1] = 0;
	if (strcmp(m->arch, SNAP_ARCH) || m->page_size != PAGE)
		return errf(err, errlen, "--restore: %s: taken on a %s machine "
			    "with %u-byte pages; this is %s with %u", s->dir,
			    m->arch, m->page_size, SNAP_ARCH, PAGE);
	if (m->ncpus < 1 || m->ncpus > VMM_MAX_CPUS || m->mem_size < VMM_MIN_MEMORY ||
	    m->mem_size % PAGE)
		return errf(err, errlen, "--restore: %s: impossible machine "
			    "(%u vCPUs, %llu bytes of RAM)", s->dir, m->ncpus,
			    (unsigned long long)m->mem_size);
	if (cfg->memory_set && cfg->memory != m->mem_size)
		return errf(err, errlen, "--restore: --memory is %llu MiB, the "
			    "snapshot's %llu MiB", (unsigned long long)(cfg->memory >> 20),
			    (unsigned long long)(m->mem_size >> 20));
	if (cfg->cpus_set && cfg->cpus != m->ncpus)
		return errf(err, errlen, "--restore: --cpus is %u, the snapshot "
			    "has %u vCPUs", cfg->cpus, m->ncpus);
	/* the devices: the same types, as many, in the same order */
	for (i = 0; i < VMM_MAX_DEVICE_TYPES; i++) {
		const struct vmm_device_configs *dc = &cfg->devices[i];

		if (!dc->count)
			continue;
		if (want >= m->ndevice_types || vm_snap_get(&r, &d, sizeof(d)))
			return errf(err, errlen, "--restore: --%s given, the "
				    "snapshot has no such device", dc->type->option);
		d.option[sizeof(d.option) - 1] = 0;
		if (strcmp(d.option, dc->type->option) || d.count != dc->count)
			return errf(err, errlen, "--restore: devices differ: "
				    "%u --%s given where the snapshot has %u --%s",
				    dc->count, dc->type->option, d.count, d.option);
		want++;
	}
	if (want != m->ndevice_types) {
		if (vm_snap_get(&r, &d, sizeof(d)) == 0) {
			d.option[sizeof(d.option) - 1] = 0;
			return errf(err, errlen, "--restore: devices differ: the "
				    "snapshot has %u --%s, not given", d.count,
				    d.option);
		}
		return errf(err, errlen, "--restore: %s: machine section cut "
			    "short", s->dir);
	}
	for (i = 0; i < m->ncpus; i++) {
		char name[16];

		snprintf(name, sizeof(name), "vcpu%u", i);
		if (snapshot_section(s, name, &r))
			return errf(err, errlen, "--restore: %s: no state for "
				    "vCPU %u", s->dir, i);
	}
	if (snapshot_section(s, "vm", &r))
		return errf(err, errlen, "--restore: %s: no vm section", s->dir);
	return 0;
}

static int open_memory(struct snapshot *s, char *err, size_t errlen)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/" SNAP_MEMORY_FILE, s->dir);
	s->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->mem_fd < 0)
		return errf(err, errlen, "--restore: %s: %s", path,
			    strerror(errno));
	if (fstat(s->mem_fd, &st) < 0 || !S_ISREG(st.st_mode))
		return errf(err, errlen, "--restore: %s: not a regular file",
			    path);
	if ((uint64_t)st.st_size != s->machine.mem_size)
		return errf(err, errlen, "--restore: %s: %lld bytes, the "
			    "snapshot's RAM is %llu", path,
			    (long long)st.st_size,
			    (unsigned long long)s->machine.mem_size);
	return 0;
}

int snapshot_open(const char *dir, const struct vmm_config *cfg,
		  struct snapshot **out, char *err, size_t errlen)
{
	struct snapshot *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s) {
		errf(err, errlen, "--restore: out of memory");
		return VMM_EXIT_UNAVAILABLE;
	}
	s->mem_fd = -1;
	if (strlen(dir) >= sizeof(s->dir) - 16) {
		free(s);
		errf(err, errlen, "--restore: path too long");
		return VMM_EXIT_BAD_INPUT;
	}
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	if (read_state(s, err, errlen) || check_machine(s, cfg, err, errlen) ||
	    open_memory(s, err, errlen)) {
		snapshot_close(s);
		return VMM_EXIT_BAD_INPUT;
	}
	*out = s;
	return 0;
}

void snapshot_close(struct snapshot *s)
{
	if (!s)
		return;
	if (s->mem_fd >= 0)
		close(s->mem_fd);
	free(s->payload);
	free(s);
}

/* ---- KVM state: the VM ---- */

struct vm_state {
	struct kvm_irqchip pic_master, pic_slave, ioapic;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

static int save_vm(struct vm *vm, struct snap_buf *b, char *err, size_t errlen)
{
	struct vm_state s;
	size_t at;

	memset(&s, 0, sizeof(s));
	s.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
	s.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	s.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
	if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s.pic_master) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s.pic_slave) < 0 ||
	    ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &s.ioapic) < 0)
		return errf(err, errlen, "KVM_GET_IRQCHIP: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &s.pit) < 0)
		return errf(err, errlen, "KVM_GET_PIT2: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &s.clock) < 0)
		return errf(err, errlen, "KVM_GET_CLOCK: %s", strerror(errno));
	at = snap_section_begin(b, "vm");
	vm_snap_put(b, &s, sizeof(s));
	snap_section_end(b, at);
	return 0;
}

/* ---- KVM state: a vCPU ---- */

/* Layout of a "vcpuN" section (each part fixed-size unless counted). */
struct vcpu_fixed {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs debugregs;
	uint32_t has_xcrs;
	uint32_t tsc_khz;		/* 0: unknown */
	uint32_t xsave_kind;		/* 0: struct kvm_fpu, 1: XSAVE area */
	uint32_t xsave_size;		/* bytes that follow */
};

struct msr_list {
	struct kvm_msr_list hdr;
	uint32_t idx[MAX_MSRS];
};

/* The MSRs KVM says a VMM should save (msrs_to_save + emulated ones). */
static int msr_index_list(struct vm *vm, struct msr_list *l, char *err,
			  size_t errlen)
{
	l->hdr.nmsrs = MAX_MSRS;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0)
		return errf(err, errlen, "KVM_GET_MSR_INDEX_LIST: %s",
			    strerror(errno));
	return 0;
}

/* XSAVE area size: KVM_CAP_XSAVE2 says (AMX makes it > 4 KiB); 0: no
 * XSAVE, use KVM_GET_FPU. */
static size_t xsave_size(struct vm *vm)
{
	int n = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	if (n > (int)sizeof(struct kvm_xsave) && n <= (int)MAX_XSAVE)
		return (size_t)n;
	if (ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0)
		return sizeof(struct kvm_xsave);
	return 0;
}

static int save_vcpu(struct vm *vm, struct vcpu *c, const struct msr_list *ml,
		     struct snap_buf *b, char *err, size_t errlen)
{
	struct vcpu_fixed f;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MAX_MSRS];
	} *msrs = NULL;
	struct kvm_cpuid2 *cpuid = NULL;
	struct kvm_msr_entry *saved = NULL;
	void *xs = NULL;
	size_t at, xsz = xsave_size(vm);
	uint32_t n, got = 0;
	char name[16];
	int r = -1, tsc;

	memset(&f, 0, sizeof(f));
#define GET(req, arg) \
	if (ioctl(c->fd, req, arg) < 0) { \
		errf(err, errlen, "vCPU %u: " #req ": %s", c->id, strerror(errno)); \
		goto out; \
	}
	GET(KVM_GET_REGS, &f.regs);
	GET(KVM_GET_SREGS, &f.sregs);
	GET(KVM_GET_LAPIC, &f.lapic);
	GET(KVM_GET_VCPU_EVENTS, &f.events);
	GET(KVM_GET_MP_STATE, &f.mp);
	GET(KVM_GET_DEBUGREGS, &f.debugregs);
	if (ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		GET(KVM_GET_XCRS, &f.xcrs);
		f.has_xcrs = 1;
	}
	tsc = ioctl(c->fd, KVM_GET_TSC_KHZ, 0);
	f.tsc_khz = tsc > 0 ? (uint32_t)tsc : 0;
	f.xsave_kind = xsz ? 1 : 0;
	f.xsave_size = xsz ? (uint32_t)xsz : sizeof(struct kvm_fpu);
	xs = calloc(1, f.xsave_size);
	msrs = calloc(1, sizeof(*msrs));
	saved = calloc(MAX_MSRS, sizeof(*saved));
	cpuid = calloc(1, sizeof(*cpuid) + MAX_CPUID * sizeof(cpuid->entries[0]));
	if (!xs || !msrs || !saved || !cpuid) {
		errf(err, errlen, "out of memory");
		goto out;
	}
	if (!xsz) {
		GET(KVM_GET_FPU, xs);
	} else if (xsz > sizeof(struct kvm_xsave)) {
		GET(KVM_GET_XSAVE2, xs);
	} else {
		GET(KVM_GET_XSAVE, xs);
	}
	/* All MSRs in one call stops at the first one this vCPU lacks (one
	 * whose feature its CPUID does not have): skip that one, go on. */
	for (uint32_t i = 0; i < ml->hdr.nmsrs;) {
		uint32_t want = ml->hdr.nmsrs - i;
		int k;

		if (want > MSR_BATCH)
			want = MSR_BATCH;
		msrs->hdr.nmsrs = want;
		for (uint32_t j = 0; j < want; j++)
			msrs->e[j] = (struct kvm_msr_entry){ .index = ml->idx[i + j] };
		k = ioctl(c->fd, KVM_GET_MSRS, msrs);
		if (k < 0) {
			errf(err, errlen, "vCPU %u: KVM_GET_MSRS: %s", c->id,
			     strerror(errno));
			goto out;
		}
		memcpy(saved + got, msrs->e, (size_t)k * sizeof(saved[0]));
		got += (uint32_t)k;
		i += (uint32_t)k + ((uint32_t)k < want);
	}
	cpuid->nent = MAX_CPUID;
	GET(KVM_GET_CPUID2, cpuid);
#undef GET
	snprintf(name, sizeof(name), "vcpu%u", c->id);
	at = snap_section_begin(b, name);
	vm_snap_put(b, &f, sizeof(f));
	vm_snap_put(b, xs, f.xsave_size);
	vm_snap_put(b, &got, sizeof(got));
	vm_snap_put(b, saved, got * sizeof(saved[0]));
	n = cpuid->nent;
	vm_snap_put(b, &n, sizeof(n));
	vm_snap_put(b, cpuid->entries, n * sizeof(cpuid->entries[0]));
	snap_section_end(b, at);
	r = 0;
out:
	free(xs);
	free(saved);
	free(msrs);
	free(cpuid);
	return r;
}

/* KVM_SET_MSRS one batch; an MSR this host refuses is named and skipped
 * (docs/snapshot.md: which ones a host refuses). */
static int set_msrs(struct vcpu *c, const struct kvm_msr_entry *e, uint32_t n,
		    char *err, size_t errlen)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MAX_MSRS];
	} *m = calloc(1, sizeof(*m));
	uint32_t i = 0;

	if (!m)
		return errf(err, errlen, "out of memory");
	while (i < n) {
		uint32_t want = n - i < MSR_BATCH ? n - i : MSR_BATCH;
		int k;

		m->hdr.nmsrs = want;
		memcpy(m->e, e + i, want * sizeof(e[0]));
		k = ioctl(c->fd, KVM_SET_MSRS, m);
		if (k < 0) {
			free(m);
			return errf(err, errlen, "vCPU %u: KVM_SET_MSRS: %s",
				    c->id, strerror(errno));
		}
		i += (uint32_t)k;
		if ((uint32_t)k < want) {
			vm_log("restore", "vCPU %u: KVM_SET_MSRS refused MSR "
			       "%#x (value %#llx): skipped", c->id, e[i].index,
			       (unsigned long long)e[i].data);
			i++;
		}
	}
	free(m);
	return 0;
}

/* The guest's TSC goes on from the value saved.  Writing IA32_TSC is not
 * enough: KVM takes a host write within a second of the TSC it expects
 * (a snapshot of a guest less than a second old, counted from vCPU
 * creation) for vCPU hot-plug synchronisation and keeps the old offset,
 * so the guest's TSC would go back to near zero; on a host whose TSC is
 * unstable, KVM's catch-up then stalls the guest's TSC for as long.  So,
 * where KVM has the TSC offset attribute (5.16), the offset is set
 * directly: vCPU 0's is computed from its TSC now, and every vCPU gets
 * that one offset, as their TSCs were in step when saved. */
struct tsc_restore {
	bool have;		/* offset computed (by vCPU 0) */
	int64_t offset;
};

static int load_tsc(struct vcpu *c, const struct kvm_msr_entry *msrs,
		    uint32_t nmsrs, struct tsc_restore *t, char *err,
		    size_t errlen)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} now = { .hdr.nmsrs = 1, .e.index = MSR_IA32_TSC };
	struct kvm_device_attr a = { .group = KVM_VCPU_TSC_CTRL,
				     .attr = KVM_VCPU_TSC_OFFSET };
	const struct kvm_msr_entry *saved = NULL;
	int64_t cur;

	for (uint32_t i = 0; i < nmsrs; i++)
		if (msrs[i].index == MSR_IA32_TSC)
			saved = &msrs[i];
	if (!saved || ioctl(c->fd, KVM_HAS_DEVICE_ATTR, &a) < 0)
		return 0;	/* older KVM: the MSR write stands */
	if (!t->have) {
		a.addr = (uintptr_t)&cur;
		if (ioctl(c->fd, KVM_GET_DEVICE_ATTR, &a) < 0 ||
		    ioctl(c->fd, KVM_GET_MSRS, &now) != 1)
			return errf(err, errlen, "--restore: vCPU %u: reading "
				    "its TSC offset: %s", c->id, strerror(errno));
		t->offset = cur + (int64_t)(saved->data - now.e.data);
		t->have = true;
	}
	a.addr = (uintptr_t)&t->offset;
	if (ioctl(c->fd, KVM_SET_DEVICE_ATTR, &a) < 0)
		return errf(err, errlen, "--restore: vCPU %u: KVM_SET_DEVICE_ATTR "
			    "TSC offset: %s", c->id, strerror(errno));
	return 0;
}

static int load_vcpu(struct vm *vm, struct vcpu *c, struct snap_reader *r,
		     struct tsc_restore *tsc, char *err, size_t errlen)
{
	struct vcpu_fixed f;
	struct kvm_msr_entry *msrs = NULL, deadline = { .index = 0 };
	struct kvm_cpuid2 *cpuid = NULL;
	uint32_t nmsrs, ncpuid, n = 0;
	void *xs = NULL;
	int status = VMM_EXIT_BAD_INPUT;

	if (vm_snap_get(r, &f, sizeof(f)) || f.xsave_size > MAX_XSAVE ||
	    (f.xsave_kind == 0 && f.xsave_size != sizeof(struct kvm_fpu)) ||
	    (f.xsave_kind == 1 && f.xsave_size < sizeof(struct kvm_xsave)) ||
	    f.xsave_kind > 1) {
		errf(err, errlen, "--restore: vCPU %u: malformed state", c->id);
		return status;
	}
	xs = malloc(f.xsave_size);
	if (!xs || vm_snap_get(r, xs, f.xsave_size) ||
	    vm_snap_get(r, &nmsrs, sizeof(nmsrs)) || nmsrs > MAX_MSRS ||
	    !(msrs = calloc(nmsrs + 1, sizeof(*msrs))) ||
	    vm_snap_get(r, msrs, nmsrs * sizeof(*msrs)) ||
	    vm_snap_get(r, &ncpuid, sizeof(ncpuid)) || ncpuid > MAX_CPUID ||
	    !(cpuid = calloc(1, sizeof(*cpuid) + ncpuid * sizeof(cpuid->entries[0]))) ||
	    vm_snap_get(r, cpuid->entries, ncpuid * sizeof(cpuid->entries[0])) ||
	    vm_snap_left(r)) {
		errf(err, errlen, "--restore: vCPU %u: malformed state", c->id);
		goto out;
	}
	if (f.xsave_kind == 1 && f.xsave_size > sizeof(struct kvm_xsave) &&
	    xsave_size(vm) < f.xsave_size) {
		errf(err, errlen, "--restore: vCPU %u: its XSAVE area (%u bytes) "
		     "is larger than this host's", c->id, f.xsave_size);
		goto out;
	}
	cpuid->nent = ncpuid;
	/* the TSC deadline after the LAPIC (it is only valid in that mode) */
	for (uint32_t i = 0; i < nmsrs; i++)
		if (msrs[i].index == MSR_TSC_DEADLINE)
			deadline = msrs[i];
		else
			msrs[n++] = msrs[i];
	status = VMM_EXIT_UNAVAILABLE;
#define SET(req, arg) \
	if (ioctl(c->fd, req, arg) < 0) { \
		errf(err, errlen, "--restore: vCPU %u: " #req ": %s", c->id, \
		     strerror(errno)); \
		goto out; \
	}
	SET(KVM_SET_CPUID2, cpuid);
	if (f.tsc_khz) {
		int here = ioctl(c->fd, KVM_GET_TSC_KHZ, 0);

		if (here > 0 && (uint32_t)here != f.tsc_khz)
			SET(KVM_SET_TSC_KHZ, (unsigned long)f.tsc_khz);
	}
	/* QEMU's order: MSRs after sregs, the LAPIC after the MP state,
	 * events after the LAPIC */
	SET(KVM_SET_REGS, &f.regs);
	if (f.xsave_kind == 1) {
		SET(KVM_SET_XSAVE, xs);
	} else {
		SET(KVM_SET_FPU, xs);
	}
	if (f.has_xcrs)
		SET(KVM_SET_XCRS, &f.xcrs);
	SET(KVM_SET_SREGS, &f.sregs);
	if (set_msrs(c, msrs, n, err, errlen) ||
	    load_tsc(c, msrs, n, tsc, err, errlen))
		goto out;
	SET(KVM_SET_MP_STATE, &f.mp);
	SET(KVM_SET_LAPIC, &f.lapic);
	if (deadline.index && set_msrs(c, &deadline, 1, err, errlen))
		goto out;
	f.events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING |
			  KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	SET(KVM_SET_VCPU_EVENTS, &f.events);
	SET(KVM_SET_DEBUGREGS, &f.debugregs);
#undef SET
	status = 0;
out:
	free(xs);
	free(msrs);
	free(cpuid);
	return status;
}

static int load_vm(struct vm *vm, const struct snapshot *s, char *err,
		   size_t errlen)
{
	struct snap_reader r;
	struct vm_state st;

	if (snapshot_section(s, "vm", &r) || vm_snap_get(&r, &st, sizeof(st)) ||
	    vm_snap_left(&r)) {
		errf(err, errlen, "--restore: malformed vm section");
		return VMM_EXIT_BAD_INPUT;
	}
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &st.pit) < 0) {
		errf(err, errlen, "--restore: KVM_SET_PIT2: %s", strerror(errno));
		return VMM_EXIT_UNAVAILABLE;
	}
	if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &st.pic_master) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &st.pic_slave) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &st.ioapic) < 0) {
		errf(err, errlen, "--restore: KVM_SET_IRQCHIP: %s",
		     strerror(errno));
		return VMM_EXIT_UNAVAILABLE;
	}
	return 0;
}

static int load_clock(struct vm *vm, const struct snapshot *s, char *err,
		      size_t errlen)
{
	struct snap_reader r;
	struct vm_state st;
	struct kvm_clock_data clock;

	snapshot_section(s, "vm", &r);
	if (vm_snap_get(&r, &st, sizeof(st)))
		return VMM_EXIT_BAD_INPUT;
	/* the guest's clock goes on from where it stopped */
	memset(&clock, 0, sizeof(clock));
	clock.clock = st.clock.clock;
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0) {
		errf(err, errlen, "--restore: KVM_SET_CLOCK: %s", strerror(errno));
		return VMM_EXIT_UNAVAILABLE;
	}
	return 0;
}

int snapshot_restore(struct vm *vm, const struct snapshot *s, char *err,
		     size_t errlen)
{
	struct snap_reader r;
	struct tsc_restore tsc = { .have = false };
	size_t off = 0;
	int status;

	/* every section the snapshot has must have a taker here */
	while (off < s->payload_size) {
		struct snap_section_hdr h;
		bool known;

		memcpy(&h, s->payload + off, sizeof(h));
		known = !strcmp(h.name, "machine") || !strcmp(h.name, "vm") ||
			!strncmp(h.name, "vcpu", 4);
		for (unsigned i = 0; !known && i < vm->nsnap; i++)
			known = !strcmp(vm->snap[i].name, h.name);
		if (!known) {
			errf(err, errlen, "--restore: the snapshot has a device "
			     "%s this VM lacks", h.name);
			return VMM_EXIT_BAD_INPUT;
		}
		off += sizeof(h) + h.size + (8 - h.size % 8) % 8;
	}
	status = load_vm(vm, s, err, errlen);
	for (unsigned i = 0; !status && i < vm->ncpus; i++) {
		char name[16];

		snprintf(name, sizeof(name), "vcpu%u", i);
		if (snapshot_section(s, name, &r)) {
			errf(err, errlen, "--restore: no state for vCPU %u", i);
			return VMM_EXIT_BAD_INPUT;
		}
		status = load_vcpu(vm, &vm->vcpus[i], &r, &tsc, err, errlen);
	}
	if (!status)
		status = load_clock(vm, s, err, errlen);
	/* devices last: one that resumes work may interrupt the guest, and
	 * the irqchip is in place now */
	for (unsigned i = 0; !status && i < vm->nsnap; i++) {
		struct vm_snap_section *sec = &vm->snap[i];
		char msg[300];

		if (snapshot_section(s, sec->name, &r)) {
			errf(err, errlen, "--restore: the snapshot has no state "
			     "for %s (taken with other devices)", sec->name);
			return VMM_EXIT_BAD_INPUT;
		}
		msg[0] = 0;
		status = sec->ops->load(sec->opaque, &r, msg, sizeof(msg));
		if (status)
			errf(err, errlen, "--restore: %s: %s", sec->name, msg);
	}
	return status;
}

/* ---- taking one ---- */

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (unsigned i = 0; i < PAGE / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] |
		    w[i + 5] | w[i + 6] | w[i + 7])
			return false;
	return true;
}

#define SCAN_CHUNK	(2u << 20)	/* bytes per look at the page map */
#define PM_PRESENT	(1ULL << 63)
#define PM_SWAPPED	(1ULL << 62)

/* Which pages of [host, host + len) were ever touched: present or swapped
 * out, from /proc/self/pagemap (mincore would call a swapped page
 * untouched).  touched[i] for page i; -1 if the map cannot be read. */
static int touched_pages(int pm_fd, const uint8_t *host, uint64_t len,
			 bool *touched)
{
	uint64_t ent[SCAN_CHUNK / PAGE];
	size_t n = len / PAGE;
	off_t at = (off_t)((uintptr_t)host / PAGE * sizeof(uint64_t));

	if (pread(pm_fd, ent, n * sizeof(ent[0]), at) != (ssize_t)(n * sizeof(ent[0])))
		return -1;
	for (size_t i = 0; i < n; i++)
		touched[i] = (ent[i] & (PM_PRESENT | PM_SWAPPED)) != 0;
	return 0;
}

int64_t snap_write_memory(int fd, const uint8_t *host, uint64_t size,
			  bool resident_only)
{
	bool touched[SCAN_CHUNK / PAGE];
	int64_t written = 0;
	uint64_t run_start = 0, run_len = 0;
	int pm_fd = -1;

	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0)
		return -1;
	/* without the page map every page is read (slower, as correct) */
	if (resident_only)
		pm_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	for (uint64_t off = 0; off < size; off += SCAN_CHUNK) {
		uint64_t len = size - off < SCAN_CHUNK ? size - off : SCAN_CHUNK;
		bool mapped = pm_fd >= 0 &&
			      touched_pages(pm_fd, host + off, len, touched) == 0;

		for (uint64_t p = 0; p < len; p += PAGE) {
			uint64_t pos = off + p;
			bool data = (!mapped || touched[p / PAGE]) &&
				    !page_is_zero(host + pos);

			if (data && run_len && run_start + run_len == pos) {
				run_len += PAGE;
				continue;
			}
			if (run_len) {	/* a run ends: out with it */
				if (pwrite_all(fd, host + run_start, run_len,
					      (off_t)run_start))
					goto fail;
				written += (int64_t)run_len;
				run_len = 0;
			}
			if (data) {
				run_start = pos;
				run_len = PAGE;
			}
		}
	}
	if (run_len) {
		if (pwrite_all(fd, host + run_start, run_len, (off_t)run_start))
			goto fail;
		written += (int64_t)run_len;
	}
	if (pm_fd >= 0)
		close(pm_fd);
	return written;
fail:
	if (pm_fd >= 0)
		close(pm_fd);
	return -1;
}

struct memory_file {
	const struct vm *vm;
	int64_t written;
};

static int fill_memory(int fd, void *arg)
{
	struct memory_file *f = arg;
	const struct vm *vm = f->vm;

	/* a restored VM's RAM is a file map: untouched pages hold data there */
	f->written = snap_write_memory(fd, vm->mem.host, vm->mem.size,
				       !vm->mem_from_file);
	return f->written < 0 ? -1 : 0;
}

static int write_memory(struct vm *vm, const char *dir, uint64_t *bytes,
			char *err, size_t errlen)
{
	struct memory_file f = { vm, 0 };
	char path[4200];

	snprintf(path, sizeof(path), "%s/" SNAP_MEMORY_FILE, dir);
	if (write_via_tmp(path, fill_memory, &f, err, errlen))
		return -1;
	*bytes = (uint64_t)f.written;
	return 0;
}

int snapshot_take(struct vm *vm, const struct vmm_config *cfg,
		  const char *dir, struct snapshot_stats *st, char *err,
		  size_t errlen)
{
	struct snap_buf b = { 0 };
	struct msr_list *ml = NULL;
	char path[4200];
	unsigned paused = 0;
	double t0 = now_seconds();
	int r = -1;

	memset(st, 0, sizeof(*st));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return errf(err, errlen, "--snapshot-to %s: %s", dir,
			    strerror(errno));
	if (vcpus_pause(vm, PAUSE_MS))
		return errf(err, errlen, "snapshot: the vCPUs did not stop "
			    "within %d ms", PAUSE_MS);
	for (; paused < vm->nsnap; paused++) {
		struct vm_snap_section *sec = &vm->snap[paused];
		char msg[200] = "";

		if (sec->ops->pause && sec->ops->pause(sec->opaque, msg,
						       sizeof(msg))) {
			errf(err, errlen, "snapshot: %s: %s", sec->name, msg);
			goto out;
		}
	}
	ml = calloc(1, sizeof(*ml));
	if (!ml) {
		errf(err, errlen, "snapshot: out of memory");
		goto out;
	}
	if (msr_index_list(vm, ml, err, errlen))
		goto out;
	snap_put_machine(&b, vm->mem.size, vm->ncpus, cfg);
	if (save_vm(vm, &b, err, errlen))
		goto out;
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (save_vcpu(vm, &vm->vcpus[i], ml, &b, err, errlen))
			goto out;
	for (unsigned i = 0; i < vm->nsnap; i++) {
		struct vm_snap_section *sec = &vm->snap[i];
		size_t at = snap_section_begin(&b, sec->name);
		char msg[200] = "";

		if (sec->ops->save(sec->opaque, &b, msg, sizeof(msg))) {
			errf(err, errlen, "snapshot: %s: %s", sec->name, msg);
			goto out;
		}
		snap_section_end(&b, at);
	}
	/* memory first: a state file is only ever next to its memory */
	if (write_memory(vm, dir, &st->memory_bytes, err, errlen))
		goto out;
	snprintf(path, sizeof(path), "%s/" SNAP_STATE_FILE, dir);
	if (snap_state_write(path, &b, err, errlen))
		goto out;
	st->state_bytes = sizeof(struct snap_header) + b.len;
	st->ms = (now_seconds() - t0) * 1e3;
	r = 0;
out:
	while (paused)
		if (vm->snap[--paused].ops->resume)
			vm->snap[paused].ops->resume(vm->snap[paused].opaque);
	free(ml);
	snap_buf_free(&b);
	return r;
}
