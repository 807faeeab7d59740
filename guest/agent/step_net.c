/* guest/agent/step_net.c - the "net" job step: bring up a network
 * interface with an IPv4 address and, optionally, a default route.
 *
 *   net dev=eth0 addr=10.0.2.15/24 [gw=10.0.2.1] [mtu=N] [wait_ms=5000]
 *
 * Plain ioctls (the agent is static and the minimal initramfs has no ip
 * command).  Waits up to wait_ms for the device to appear (the driver may
 * still be probing), brings lo up too, and reports the MAC and MTU.
 */
#include "guest/agent/step_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(struct step_result *res, int err, const char *what,
		const char *dev)
{
	snprintf(res->msg, sizeof(res->msg), "%s %s: %s", what, dev,
		 strerror(err));
	res->err = err;
	return -1;
}

static int bad(struct step_result *res, const char *fmt, const char *v)
{
	snprintf(res->msg, sizeof(res->msg), fmt, v);
	res->err = EINVAL;
	res->bad_args = true;
	return -1;
}

static void set_sin(struct sockaddr *sa, struct in_addr a)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = a };

	memcpy(sa, &sin, sizeof(sin));
}

static int if_up(int s, const char *dev)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	ifr.ifr_flags |= IFF_UP;
	return ioctl(s, SIOCSIFFLAGS, &ifr);
}

int op_net(const struct job_step *st, struct report *r,
	   struct step_result *res)
{
	const char *dev = job_get(st, "dev"), *addr = job_get(st, "addr");
	const char *gw = job_get(st, "gw"), *mtu_s = job_get(st, "mtu");
	const char *wait_s = job_get(st, "wait_ms");
	struct in_addr ip, mask, gwa;
	struct ifreq ifr = { 0 };
	char ipbuf[32], macbuf[24], *slash, *end;
	unsigned long prefix, mtu = 0, wait_ms = 5000;
	const unsigned char *m;
	int s, rc = -1;

	if (!dev || !*dev)
		dev = "eth0";
	if (strlen(dev) >= IFNAMSIZ)
		return bad(res, "dev=%s: name too long", dev);
	if (!addr || strlen(addr) >= sizeof(ipbuf))
		return bad(res, "addr=%s: expected A.B.C.D/PREFIX",
			   addr ? addr : "");
	snprintf(ipbuf, sizeof(ipbuf), "%s", addr);
	slash = strchr(ipbuf, '/');
	if (!slash)
		return bad(res, "addr=%s: expected A.B.C.D/PREFIX", addr);
	*slash = 0;
	prefix = strtoul(slash + 1, &end, 10);
	if (*end || end == slash + 1 || prefix < 1 || prefix > 32 ||
	    inet_pton(AF_INET, ipbuf, &ip) != 1)
		return bad(res, "addr=%s: expected A.B.C.D/PREFIX", addr);
	mask.s_addr = htonl(prefix == 32 ? 0xffffffffu :
			    ~(0xffffffffu >> prefix));
	if (gw && inet_pton(AF_INET, gw, &gwa) != 1)
		return bad(res, "gw=%s: not an IPv4 address", gw);
	if (mtu_s) {
		mtu = strtoul(mtu_s, &end, 10);
		if (*end || mtu < 68 || mtu > 65535)
			return bad(res, "mtu=%s: expected 68-65535", mtu_s);
	}
	if (wait_s) {
		wait_ms = strtoul(wait_s, &end, 10);
		if (*end)
			return bad(res, "wait_ms=%s: not a number", wait_s);
	}

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail(res, errno, "socket for", dev);
	if_up(s, "lo");
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev);
	/* the driver may still be probing */
	for (unsigned long t = 0; ioctl(s, SIOCGIFINDEX, &ifr) < 0; t += 50) {
		if (t >= wait_ms) {
			rc = fail(res, ENODEV, "no interface", dev);
			goto out;
		}
		usleep(50000);
	}
	if (mtu) {
		ifr.ifr_mtu = (int)mtu;
		if (ioctl(s, SIOCSIFMTU, &ifr) < 0) {
			rc = fail(res, errno, "setting the MTU of", dev);
			goto out;
		}
	}
	set_sin(&ifr.ifr_addr, ip);
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0) {
		rc = fail(res, errno, "setting the address of", dev);
		goto out;
	}
	set_sin(&ifr.ifr_netmask, mask);
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) {
		rc = fail(res, errno, "setting the netmask of", dev);
		goto out;
	}
	if (if_up(s, dev) < 0) {
		rc = fail(res, errno, "bringing up", dev);
		goto out;
	}
	if (gw) {
		struct rtentry rt;

		memset(&rt, 0, sizeof(rt));
		set_sin(&rt.rt_dst, (struct in_addr){ 0 });
		set_sin(&rt.rt_genmask, (struct in_addr){ 0 });
		set_sin(&rt.rt_gateway, gwa);
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		rt.rt_dev = (char *)dev;
		if (ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST) {
			rc = fail(res, errno, "default route via", gw);
			goto out;
		}
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev);
	if (ioctl(s, SIOCGIFHWADDR, &ifr) == 0) {
		m = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
		snprintf(macbuf, sizeof(macbuf),
			 "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
			 m[3], m[4], m[5]);
		report_str(r, "mac", macbuf);
	}
	if (ioctl(s, SIOCGIFMTU, &ifr) == 0)
		report_int(r, "mtu", ifr.ifr_mtu);
	report_str(r, "dev", dev);
	report_str(r, "addr", addr);
	rc = 0;
out:
	close(s);
	return rc;
}
