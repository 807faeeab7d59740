/* guest/agent/mkcpio.c - write an uncompressed cpio "newc" archive (the
 * initramfs format) from a list, without root: device nodes and owners are
 * written into the archive, never created on the host.
 *
 *   mkcpio OUT.cpio < LIST
 *
 * LIST lines (archive paths are absolute; owner is always 0:0, mtime 0 so
 * the archive is reproducible):
 *   dir   PATH MODE
 *   file  PATH SOURCE MODE
 *   slink PATH TARGET
 *   nod   PATH MODE c|b MAJOR MINOR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static FILE *out;
static unsigned long offset, ino = 1;
static const char *outname;

static void die(int line, const char *fmt, const char *arg)
{
	fprintf(stderr, "mkcpio: ");
	if (line)
		fprintf(stderr, "line %d: ", line);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	if (outname)
		remove(outname);
	exit(1);
}

static void emit(const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, out) != n)
		die(0, "write failed: %s", strerror(errno));
	offset += n;
}

static void pad4(void)
{
	static const char zero[4];

	emit(zero, (4 - offset % 4) % 4);
}

static void header(const char *name, unsigned long mode, unsigned long size,
		   unsigned long rmaj, unsigned long rmin)
{
	unsigned int f[13] = {
		(unsigned int)ino++, (unsigned int)mode, 0, 0,
		(mode & S_IFMT) == S_IFDIR ? 2 : 1, 0, (unsigned int)size, 0, 0,
		(unsigned int)rmaj, (unsigned int)rmin, 0, 0,
	};
	char h[9];

	while (*name == '/')
		name++;
	if (size > 0xffffffffUL)
		die(0, "%s: too big for cpio newc (4 GiB)", name);
	f[11] = (unsigned int)strlen(name) + 1;
	emit("070701", 6);
	for (int i = 0; i < 13; i++) {
		snprintf(h, sizeof(h), "%08X", f[i]);
		emit(h, 8);
	}
	emit(name, strlen(name) + 1);
	pad4();
}

static unsigned long octal(int line, const char *s)
{
	char *end;
	unsigned long v;

	if (!s)
		die(line, "%s", "missing mode");
	v = strtoul(s, &end, 8);
	if (*end || v > 07777)
		die(line, "bad mode '%s'", s);
	return v;
}

static void add_file(int line, const char *path, const char *src,
		     unsigned long mode)
{
	FILE *f = fopen(src, "rb");
	char buf[65536];
	long size;
	size_t n;

	if (!f)
		die(line, "cannot open %s", src);
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		die(line, "cannot size %s", src);
	header(path, S_IFREG | mode, (unsigned long)size, 0, 0);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		emit(buf, n);
	if (ferror(f))
		die(line, "read error on %s", src);
	fclose(f);
	pad4();
}

int main(int argc, char **argv)
{
	char buf[4096];
	int line = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: mkcpio OUT.cpio < LIST\n");
		return 2;
	}
	outname = argv[1];
	out = fopen(outname, "wb");
	if (!out)
		die(0, "cannot create %s", outname);
	while (fgets(buf, sizeof(buf), stdin)) {
		char *w[7] = { 0 }, *save = NULL;
		int n = 0;

		line++;
		for (char *t = strtok_r(buf, " \t\n", &save); t && n < 7;
		     t = strtok_r(NULL, " \t\n", &save))
			w[n++] = t;
		if (n == 0 || w[0][0] == '#')
			continue;
		if (!w[1] || w[1][0] != '/')
			die(line, "%s", "the path must be absolute");
		if (!strcmp(w[0], "dir") && n == 3) {
			header(w[1], S_IFDIR | octal(line, w[2]), 0, 0, 0);
		} else if (!strcmp(w[0], "file") && n == 4) {
			add_file(line, w[1], w[2], octal(line, w[3]));
		} else if (!strcmp(w[0], "slink") && n == 3) {
			header(w[1], S_IFLNK | 0777, strlen(w[2]), 0, 0);
			emit(w[2], strlen(w[2]));
			pad4();
		} else if (!strcmp(w[0], "nod") && n == 6 &&
			   (!strcmp(w[3], "c") || !strcmp(w[3], "b"))) {
			header(w[1], (w[3][0] == 'c' ? S_IFCHR : S_IFBLK) |
				     octal(line, w[2]), 0,
			       strtoul(w[4], NULL, 10), strtoul(w[5], NULL, 10));
		} else {
			die(line, "cannot parse '%s' (dir|file|slink|nod with their fields)", w[0]);
		}
	}
	header("TRAILER!!!", 0, 0, 0, 0);
	while (offset % 512)	/* as cpio(1) pads its output */
		emit("", 1);
	if (fclose(out))
		die(0, "cannot write %s", outname);
	return 0;
}
