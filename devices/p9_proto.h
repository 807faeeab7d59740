/* devices/p9_proto.h - 9P2000.L wire constants (the dialect Linux's v9fs
 * speaks; see the Linux sources, include/net/9p/9p.h, for the reference
 * encoding).  Every message is size[4] type[1] tag[2] body, little-endian;
 * strings are len[2] bytes (no NUL). */
#ifndef DEVICES_P9_PROTO_H
#define DEVICES_P9_PROTO_H

#define P9_VERSION_L		"9P2000.L"
#define P9_HDR_SIZE		7	/* size[4] type[1] tag[2] */
#define P9_IOHDR_SIZE		24	/* Twrite header + slack (Linux) */
#define P9_NOTAG		0xffff
#define P9_NOFID		0xffffffffu
#define P9_NONUNAME		0xffffffffu
#define P9_MAXWELEM		16	/* names in one Twalk */

enum p9_msg {
	P9_TLERROR = 6, P9_RLERROR,
	P9_TSTATFS = 8, P9_RSTATFS,
	P9_TLOPEN = 12, P9_RLOPEN,
	P9_TLCREATE = 14, P9_RLCREATE,
	P9_TSYMLINK = 16, P9_RSYMLINK,
	P9_TMKNOD = 18, P9_RMKNOD,
	P9_TRENAME = 20, P9_RRENAME,
	P9_TREADLINK = 22, P9_RREADLINK,
	P9_TGETATTR = 24, P9_RGETATTR,
	P9_TSETATTR = 26, P9_RSETATTR,
	P9_TXATTRWALK = 30, P9_RXATTRWALK,
	P9_TXATTRCREATE = 32, P9_RXATTRCREATE,
	P9_TREADDIR = 40, P9_RREADDIR,
	P9_TFSYNC = 50, P9_RFSYNC,
	P9_TLOCK = 52, P9_RLOCK,
	P9_TGETLOCK = 54, P9_RGETLOCK,
	P9_TLINK = 70, P9_RLINK,
	P9_TMKDIR = 72, P9_RMKDIR,
	P9_TRENAMEAT = 74, P9_RRENAMEAT,
	P9_TUNLINKAT = 76, P9_RUNLINKAT,
	P9_TVERSION = 100, P9_RVERSION,
	P9_TAUTH = 102, P9_RAUTH,
	P9_TATTACH = 104, P9_RATTACH,
	P9_TERROR = 106, P9_RERROR,
	P9_TFLUSH = 108, P9_RFLUSH,
	P9_TWALK = 110, P9_RWALK,
	P9_TOPEN = 112, P9_ROPEN,
	P9_TCREATE = 114, P9_RCREATE,
	P9_TREAD = 116, P9_RREAD,
	P9_TWRITE = 118, P9_RWRITE,
	P9_TCLUNK = 120, P9_RCLUNK,
	P9_TREMOVE = 122, P9_RREMOVE,
	P9_TSTAT = 124, P9_RSTAT,
	P9_TWSTAT = 126, P9_RWSTAT,
};

/* qid.type */
#define P9_QTDIR		0x80
#define P9_QTSYMLINK		0x02
#define P9_QTFILE		0x00
#define P9_QID_SIZE		13	/* type[1] version[4] path[8] */

/* Tlopen / Tlcreate flags (Linux's O_* values, named for the wire) */
#define P9_DOTL_ACCMODE		00000003
#define P9_DOTL_CREATE		00000100
#define P9_DOTL_EXCL		00000200
#define P9_DOTL_NOCTTY		00000400
#define P9_DOTL_TRUNC		00001000
#define P9_DOTL_APPEND		00002000
#define P9_DOTL_NONBLOCK	00004000
#define P9_DOTL_DSYNC		00010000
#define P9_DOTL_FASYNC		00020000
#define P9_DOTL_DIRECT		00040000
#define P9_DOTL_LARGEFILE	00100000
#define P9_DOTL_DIRECTORY	00200000
#define P9_DOTL_NOFOLLOW	00400000
#define P9_DOTL_NOATIME		01000000
#define P9_DOTL_CLOEXEC		02000000
#define P9_DOTL_SYNC		04000000

/* Tunlinkat flags */
#define P9_DOTL_AT_REMOVEDIR	0x200

/* Tgetattr request mask / Rgetattr valid */
#define P9_GETATTR_BASIC	0x000007ffULL	/* mode .. blocks */
#define P9_GETATTR_BTIME	0x00000800ULL
#define P9_GETATTR_GEN		0x00001000ULL
#define P9_GETATTR_DATA_VERSION	0x00002000ULL

/* Tsetattr valid */
#define P9_ATTR_MODE		0x001
#define P9_ATTR_UID		0x002
#define P9_ATTR_GID		0x004
#define P9_ATTR_SIZE		0x008
#define P9_ATTR_ATIME		0x010
#define P9_ATTR_MTIME		0x020
#define P9_ATTR_CTIME		0x040
#define P9_ATTR_ATIME_SET	0x080
#define P9_ATTR_MTIME_SET	0x100

/* Tlock */
#define P9_LOCK_TYPE_RDLCK	0
#define P9_LOCK_TYPE_WRLCK	1
#define P9_LOCK_TYPE_UNLCK	2
#define P9_LOCK_FLAGS_BLOCK	1
#define P9_LOCK_FLAGS_RECLAIM	2
#define P9_LOCK_SUCCESS		0
#define P9_LOCK_BLOCKED		1
#define P9_LOCK_ERROR		2
#define P9_LOCK_GRACE		3

#endif
