/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The wire format between dual_slot.bpf.c and user space, defined once.
 *
 * build.ts reads these types back from the compiled object's BTF and writes
 * src/wire/layout.gen.ts: every offset, size, array length and enum value the
 * TypeScript side uses comes from here, through the compiler. Everything user
 * space needs is therefore a type or an enum (BTF has no #defines), and is
 * reachable from struct ds_wire_types so that clang emits it.
 *
 * Only fixed-width types: the same bytes must decode on any host.
 */
#ifndef DUAL_SLOT_H
#define DUAL_SLOT_H

/* One slot of the per-CPU heap, as in Elkeid's hids.c. */
#define SD_EVENT_MAX 16384
#define SD_EVENT_MASK (SD_EVENT_MAX - 1)
#define DS_MAX_SLOTS 3
#define DS_LEVELS 3

/* Capacities of the slot-1 buffers the business function fills. Powers of two,
 * because the verifier only accepts lengths it can bound with a mask. */
#define DS_COMM_LEN 16
#define DS_FILENAME_CAP 512
#define DS_ARGS_CAP 8192
#define DS_PATH_CAP 2048
#define DS_NAME_MAX 255
#define DS_PATH_DEPTH 96
#define DS_NODENAME_CAP 128   /* slot-1 buffer; a UTS name is at most 64 bytes */
#define DS_NODENAME_MAX 64
#define DS_PID_TREE_DEPTH 8   /* ancestors in pid_tree, the task itself included */
#define DS_PID_TREE_CAP 256   /* 8 x "pid.comm<" is at most 8 x 27 bytes */
#define DS_PID_TREE_ENTRY 32  /* room one "pid.comm" may take, NUL included */
/* The exec's context strings (struct ds_exec_extra in heap.bpf.h), each its own size. */
#define DS_TTY_CAP 32
#define DS_FD_CAP 256         /* stdin, stdout: "pipe:[ino]", "socket:[ino]", "/dev/pts/N", ... */
#define DS_IP_CAP 48          /* an IPv6 address as text, NUL included */
#define DS_SSH_CAP 96         /* SSH_CONNECTION: "client port server port" */
#define DS_LD_PRELOAD_CAP 128
#define DS_ENV_SCAN 128       /* environment variables looked at, at most */

/* Fixed encoding: each string gets an array of this size on the wire. */
#define DS_FIXED_FILENAME 256
#define DS_FIXED_ARGS 2048
#define DS_FIXED_PATH 512
#define DS_FIXED_NODENAME 72 /* 64 + NUL, rounded up: a fixed struct has no tail padding */
#define DS_FIXED_PID_TREE 256

enum ds_wire_const {
	DS_WIRE_VERSION = 1,
	DS_SLOT_SIZE = SD_EVENT_MAX, /* bytes in one slot of the per-CPU heap: the largest event */
	DS_SLOT_NONE = 0xff, /* where a level's slot lives when it has none (the ring buffer transport) */
	DS_FILTER_MAX = 64, /* entries in each kernel-side filter map (bpf/filter.bpf.h) */
	/* bpf_rdonly_cast's call in the code, until the loader writes the kernel's id there */
	DS_KFUNC_RDONLY_CAST = 0x7d5c0a57,
};

enum ds_event_type {
	DS_EVENT_EXEC = 1,
	DS_EVENT_FLOOD = 2,
	DS_EVENT_EXIT = 3,
	DS_EVENT_FORK = 4,
	DS_EVENT_SETSID = 5,
	DS_EVENT_PRCTL = 6,
	DS_EVENT_PTRACE = 7,
	DS_EVENT_MEMFD_CREATE = 8,
	DS_EVENT_KILL = 9,
	DS_EVENT_PRIVILEGE_ESCALATION = 10,
	DS_EVENT_USERMODE_HELPER = 11,
	DS_EVENT_CONNECT = 12,
	DS_EVENT_ACCEPT = 13,
	DS_EVENT_BIND = 14,
	DS_EVENT_DNS = 15,
	DS_EVENT_CREATE_FILE = 16,
	DS_EVENT_RENAME = 17,
	DS_EVENT_LINK = 18,
	DS_EVENT_UNLINK = 19,
	DS_EVENT_RMDIR = 20,
	DS_EVENT_MOUNT = 21,
	DS_EVENT_LOAD_MODULE = 22,
};

enum ds_mode {
	DS_MODE_DUAL = 0,   /* business in slot 1, serializer in slot 0 */
	DS_MODE_SINGLE = 1, /* both in slot 0: the collision the second slot prevents */
	DS_MODE_NEST3 = 2,  /* a third level inside the serializer takes a slot too */
};

enum ds_transport {
	DS_TRANSPORT_PERF = 0,           /* slot 0 + bpf_perf_event_output */
	DS_TRANSPORT_RINGBUF = 1,        /* bpf_ringbuf_reserve: no slot 0 at all */
	DS_TRANSPORT_RINGBUF_OUTPUT = 2, /* slot 0 + bpf_ringbuf_output (a copy) */
};

enum ds_encoding {
	DS_ENCODING_COMPACT = 0,
	DS_ENCODING_FIXED = 1,
};

/* Index of each string descriptor in ds_exec.str[]. */
enum ds_str {
	DS_STR_COMM = 0,
	DS_STR_FILENAME = 1,
	DS_STR_ARGS = 2, /* NUL-separated, as in the new process's memory */
	DS_STR_CWD = 3,
	DS_STR_EXE = 4,
	DS_STR_PEXE = 5, /* parent's exe, only filled by the nest3 enrichment level */
	DS_STR_NODENAME = 6, /* UTS hostname of the task's namespace */
	DS_STR_PID_TREE = 7, /* "pid.comm<ppid.comm<...", Elkeid's pid_tree */
	DS_STR_TTY = 8,      /* the controlling terminal, e.g. "pts/3" */
	DS_STR_STDIN = 9,    /* what fd 0 is: "pipe:[ino]", "socket:[ino]", "/dev/pts/3", "file:dev:ino", ... */
	DS_STR_STDOUT = 10,  /* fd 1, the same way */
	DS_STR_SIP = 11,     /* the first inet socket among fds 0-2: its local address */
	DS_STR_DIP = 12,     /* and its peer's */
	DS_STR_SSH = 13,     /* SSH_CONNECTION from the new environment */
	DS_STR_LD_PRELOAD = 14, /* LD_PRELOAD from the new environment */
	DS_STR_NR = 15,
};

enum ds_flags {
	DS_F_SLOT1_INTACT = 1 << 0,
	DS_F_CORRUPT = 1 << 1,
	DS_F_CLOBBERED = 1 << 2,
	DS_F_ARGS_TRUNCATED = 1 << 3,
	DS_F_CWD_TRUNCATED = 1 << 4,
	DS_F_EXE_TRUNCATED = 1 << 5,
	DS_F_FILENAME_TRUNCATED = 1 << 6,
	DS_F_PEXE_TRUNCATED = 1 << 7,
	DS_F_EXE_DELETED = 1 << 8,     /* the executable was unlinked (or is a memfd) */
	DS_F_EXE_MEMFD = 1 << 9,       /* the executable is a memfd: no file anywhere */
	DS_F_EXE_UNREACHABLE = 1 << 10, /* exec: the executable is not under the new process's root (chroot) */
	DS_F_STR_TRUNCATED = 1 << 11,  /* a record's own string (a name, a target's exe) was cut */
	DS_F_ENV_TRUNCATED = 1 << 12,  /* the environment was longer than the agent scans (DS_ENV_SCAN) */
	DS_F_MALFORMED = 1 << 13,      /* a packet the agent would not parse (a DNS name compressed, cut or ambiguous) */
	DS_F_PATH_DELETED = 1 << 14,   /* a record's file (created, a module's) had been unlinked */
	DS_F_PATH_UNREACHABLE = 1 << 15, /* a record's file is not under the process's root: its path is the namespace's */
	DS_F_STDIO_TRUNCATED = 1 << 16, /* exec: stdin's or stdout's path was cut (its end kept after a "…") */
	DS_F_STDIO_DELETED = 1 << 17,   /* exec: stdin or stdout is a file that had been unlinked */
	DS_F_READ_AT_EXIT = 1 << 18,    /* a name the call was given was not readable at its entry (not paged in): read at its exit */
};

/*
 * What one nesting level wrote at the start of its slot, and what was still there
 * once the level below it had finished. A difference is the corruption the
 * experiment is about.
 */
struct ds_level {
	__u64 tag_expected;
	__u64 tag_observed;
	__u8 data_expected[16];
	__u8 data_observed[16];
	__u8 slot;   /* slot index, or DS_SLOT_NONE */
	__u8 used;   /* 1 when this level ran for the event */
	__u8 intact; /* tag and data unchanged */
	__u8 pad[5];
};

struct ds_header {
	__u64 tag;   /* per-event tag, also the serializer's own mark */
	__u64 ktime_ns;
	__u64 seq;   /* slot0_seq: per-CPU sequence number */
	__u32 size;  /* bytes in this event, header included */
	__u16 type;  /* enum ds_event_type */
	__u8 version;
	__u8 encoding;
	__u32 cpu;
	__u8 mode;
	__u8 slots;
	__u8 transport;
	__u8 guard;
};

/*
 * What every record carries about its task, beside pid/tid/ppid/uid/gid: filled
 * by common_fill() (bpf/serialize.bpf.h) right after the header. Its strings
 * (nodename, pid_tree) are in each record's string table.
 *
 * exec_id, as user space renders it, is "<start_ns>:<pid>:<exec_seq>": the
 * thread group's start (CLOCK_MONOTONIC ns) and tgid name the process across
 * pid reuse, and the kernel's self_exec_id, which every exec increments, names
 * its image. parent_exec_id is the same for the real parent's thread group.
 */
struct ds_common {
	__u32 euid;
	__u32 egid;
	__u32 pgid;       /* process group leader's tgid, initial pid namespace */
	__u32 sid;        /* session leader's tgid, initial pid namespace */
	__u32 sessionid;  /* audit session; 0xffffffff: unset, or no CONFIG_AUDIT */
	__u32 auid;       /* audit login uid; 0xffffffff: unset, or no CONFIG_AUDIT */
	__u32 pidns_id;   /* the task's own pid namespace (not pid_ns_for_children) */
	__u32 mntns_id;
	__u64 start_ns;   /* thread group's start, CLOCK_MONOTONIC */
	__u64 exec_seq;   /* task->self_exec_id */
	__u64 pstart_ns;  /* the same two for the real parent's thread group */
	__u64 pexec_seq;
};

/*
 * One exec event. Strings follow it: str[i] = len << 16 | offset, offset counted
 * from the start of the event. Compact packs them back to back right after this
 * struct; fixed puts each in its own array (struct ds_exec_fixed).
 */
struct ds_exec {
	struct ds_header hdr;
	struct ds_common common;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 flags;       /* enum ds_flags */
	__u64 cgroup_id;
	__u32 args_total;  /* bytes of argv in the process, before any cut */
	__s32 res;         /* 0, or the error of an exec that failed (argv and filename then from the call) */
	__u32 exe_dev;     /* the executable's device, the kernel's encoding: major << 20 | minor */
	__u32 sa_family;   /* the first inet socket among fds 0-2: AF_INET (2) or AF_INET6 (10); 0: none */
	__u64 exe_ino;     /* the executable's inode number */
	__u32 sport;       /* that socket's local port */
	__u32 dport;       /* and its peer's */
	__u8 mark[16];     /* serializer's level data: "s0:" + comm */
	struct ds_level level[DS_LEVELS];
	__u32 pad;         /* DS_STR_NR is odd: keeps str[] the last bytes of the struct */
	__u32 str[DS_STR_NR];
};

struct ds_exec_fixed {
	struct ds_exec base;
	char comm[DS_COMM_LEN];
	char filename[DS_FIXED_FILENAME];
	char args[DS_FIXED_ARGS];
	char cwd[DS_FIXED_PATH];
	char exe[DS_FIXED_PATH];
	char pexe[DS_FIXED_PATH];
	char nodename[DS_FIXED_NODENAME];
	char pid_tree[DS_FIXED_PID_TREE];
	char tty[DS_TTY_CAP];
	char stdin[DS_FD_CAP];
	char stdout[DS_FD_CAP];
	char sip[DS_IP_CAP];
	char dip[DS_IP_CAP];
	char ssh[DS_SSH_CAP];
	char ld_preload[DS_LD_PRELOAD_CAP];
};

/* Index of each string descriptor in ds_exit.str[]. */
enum ds_exit_str {
	DS_EXIT_STR_COMM = 0,
	DS_EXIT_STR_NODENAME = 1,
	DS_EXIT_STR_PID_TREE = 2,
	DS_EXIT_STR_EXE = 3, /* empty before Linux 6.16: exit_mm() ran before the tracepoint */
	DS_EXIT_STR_NR = 4,
};

/* A process's main thread exited (sched_process_exit). */
struct ds_exit {
	struct ds_header hdr;
	struct ds_common common;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__s32 exit_code;   /* wait status: exit status << 8 | terminating signal (0x80: core dumped) */
	__u64 runtime_ns;  /* from the process's start to its exit */
	__u64 cgroup_id;
	__u32 flags;       /* enum ds_flags (slot1_intact, the exe's) */
	__u32 pad;         /* DS_EXIT_STR_NR is even: keeps str[] the last bytes of the struct */
	__u32 str[DS_EXIT_STR_NR];
};

struct ds_exit_fixed {
	struct ds_exit base;
	char comm[DS_COMM_LEN];
	char nodename[DS_FIXED_NODENAME];
	char pid_tree[DS_FIXED_PID_TREE];
	char exe[DS_FIXED_PATH];
};

/*
 * The records of the syscall and process events after exec and exit: one
 * struct each, all starting with the same head (DS_RECORD_HEAD) so that one
 * serializer (emit_record in bpf/record.bpf.h) writes them all. After the head
 * comes the type's own struct (member named like the event), then the string
 * descriptors; the strings follow in the compact encoding (these records have
 * no fixed variant: the fixed encoding is the exec record's lab comparison).
 */
#define DS_RECORD_HEAD                                                              \
	struct ds_header hdr;                                                       \
	struct ds_common common;                                                    \
	__u32 pid;                                                                  \
	__u32 tid;                                                                  \
	__u32 ppid;                                                                 \
	__u32 uid;                                                                  \
	__u32 gid;                                                                  \
	__u32 flags;      /* enum ds_flags */                                       \
	__u64 cgroup_id;                                                            \
	__s64 res;        /* the syscall's return value (0 where there is none) */ \
	__u32 syscall;    /* the syscall's number on this architecture, or 0 */     \
	__u32 pad0

/* Index of each string descriptor of a DS_RECORD_HEAD record: the common four, then the type's own. */
enum ds_rec_str {
	DS_REC_STR_COMM = 0,
	DS_REC_STR_NODENAME = 1,
	DS_REC_STR_PID_TREE = 2,
	DS_REC_STR_EXE = 3,    /* the acting process's executable */
	DS_REC_STR_A = 4,      /* the type's first string (e.g. a memfd's name) */
	DS_REC_STR_B = 5,      /* its second */
	DS_REC_STR_C = 6,      /* its third, a short one (a mount's fs type) */
	DS_REC_STR_NR = 7,
};

/* The head alone: what emit_record writes for every such record. */
struct ds_record {
	DS_RECORD_HEAD;
};

/* Credentials, before and after (privilege_escalation). */
struct ds_creds {
	__u32 uid;
	__u32 euid;
	__u32 suid;
	__u32 fsuid;
	__u32 gid;
	__u32 egid;
	__u32 sgid;
	__u32 fsgid;
};

/* A new process (sched_process_fork, a new thread group only). */
struct ds_fork_data {
	__u32 child_pid;
	__u32 pad;
	__u64 child_start_ns; /* with child_pid and the parent's exec_seq: the child's exec_id */
};
struct ds_fork {
	DS_RECORD_HEAD;
	struct ds_fork_data fork;
	__u32 str[DS_REC_STR_NR];
};

/* setsid() (res: the new session id). */
struct ds_setsid {
	DS_RECORD_HEAD;
	__u32 str[DS_REC_STR_NR];
};

/* prctl(PR_SET_NAME): strings A = old name, B = new name. */
struct ds_prctl_data {
	__u32 option;
	__u32 pad;
};
struct ds_prctl {
	DS_RECORD_HEAD;
	struct ds_prctl_data prctl;
	__u32 str[DS_REC_STR_NR];
};

/* ptrace(): string A = the target's executable, when the caller traces it. */
struct ds_ptrace_data {
	__s64 request;
	__u64 addr;
	__u64 data;
	__u32 target_pid; /* as the caller named it (its pid namespace) */
	__u32 pad;
};
struct ds_ptrace {
	DS_RECORD_HEAD;
	struct ds_ptrace_data ptrace;
	__u32 str[DS_REC_STR_NR];
};

/* memfd_create(): string A = the name given (res: the fd). */
struct ds_memfd_create_data {
	__u32 mflags;
	__u32 pad;
};
struct ds_memfd_create {
	DS_RECORD_HEAD;
	struct ds_memfd_create_data memfd_create;
	__u32 str[DS_REC_STR_NR];
};

/* kill(), tkill(), tgkill(). */
struct ds_kill_data {
	__s32 target_pid; /* kill's pid (<= 0: a group), tgkill's tgid, tkill's tid */
	__s32 target_tid; /* tgkill's tid, else 0 */
	__s32 sig;
	__u32 pad;
};
struct ds_kill {
	DS_RECORD_HEAD;
	struct ds_kill_data kill;
	__u32 str[DS_REC_STR_NR];
};

/* Which way a task gained privilege. */
enum ds_privesc_how {
	DS_PRIVESC_EXEC = 1,   /* an exec left effective ids differing from real ones, or file capabilities */
	DS_PRIVESC_SETID = 2,  /* a set*id call made a non-root task root */
};

/* Gained privilege: string A = the executable (exec), or empty. */
struct ds_privilege_escalation_data {
	__u32 how;     /* enum ds_privesc_how */
	__u32 pad;
	__u64 cap_effective_old;
	__u64 cap_effective_new;
	struct ds_creds old;
	struct ds_creds new;
};
struct ds_privilege_escalation {
	DS_RECORD_HEAD;
	struct ds_privilege_escalation_data privilege_escalation;
	__u32 str[DS_REC_STR_NR];
};

/*
 * A socket's two ends (connect, accept, bind, dns). Addresses in network
 * order as the kernel keeps them, each read as two little-endian u64 (bytes
 * 0-7, 8-15; an IPv4 address is the low four bytes of the first): the decoder
 * flattens scalars, not arrays.
 */
struct ds_sock_data {
	__u16 family;   /* AF_INET 2, AF_INET6 10 */
	__u16 protocol; /* IPPROTO_TCP 6, IPPROTO_UDP 17 */
	__u16 sport;    /* host order */
	__u16 dport;
	__s32 fd;
	__u32 pad;
	__u64 sip_0;
	__u64 sip_1;
	__u64 dip_0;
	__u64 dip_1;
};

/* connect(): the destination asked for, the source the socket got. */
struct ds_connect {
	DS_RECORD_HEAD;
	struct ds_sock_data connect;
	__u32 str[DS_REC_STR_NR];
};

/* accept(), accept4(): the new connection (res: its fd). */
struct ds_accept {
	DS_RECORD_HEAD;
	struct ds_sock_data accept;
	__u32 str[DS_REC_STR_NR];
};

/* bind(): the local address asked for (sip, sport). */
struct ds_bind {
	DS_RECORD_HEAD;
	struct ds_sock_data bind;
	__u32 str[DS_REC_STR_NR];
};

/* A DNS message over UDP port 53, query or reply: string A = the question's name, dotted. */
struct ds_dns_data {
	struct ds_sock_data sock;
	__u16 id;
	__u16 dflags;  /* the header's flags word: QR, opcode, AA, TC, RD, RA, rcode */
	__u16 qtype;
	__u16 qclass;
	__u8 qr;       /* 0 a query the process sent, 1 a reply it read */
	__u8 rcode;
	__u16 qdcount;
	__u32 pad;
};
struct ds_dns {
	DS_RECORD_HEAD;
	struct ds_dns_data dns;
	__u32 str[DS_REC_STR_NR];
};

/*
 * A file an open created (the kernel set FMODE_CREATED), or mknod: string A =
 * its absolute path. sock: the creating process's first inet socket among its
 * fds 0-15, if any (a download-and-drop shows here).
 */
struct ds_create_file_data {
	__u32 mode;  /* the inode's mode: type and permissions */
	__u32 dev;   /* its device (MAJOR << 20 | MINOR), with ino: its identity */
	__u64 ino;
	__u32 oflags; /* open's flags, or 0 for mknod */
	__u32 pad;
	struct ds_sock_data sock;
};
struct ds_create_file {
	DS_RECORD_HEAD;
	struct ds_create_file_data create_file;
	__u32 str[DS_REC_STR_NR];
};

/* rename(), renameat(), renameat2(): strings A = old path, B = new path. */
struct ds_rename_data {
	__u32 rflags; /* renameat2's flags (RENAME_NOREPLACE 1, RENAME_EXCHANGE 2, RENAME_WHITEOUT 4) */
	__u32 pad;
};
struct ds_rename {
	DS_RECORD_HEAD;
	struct ds_rename_data rename;
	__u32 str[DS_REC_STR_NR];
};

/* Which call made a link. */
enum ds_link_kind {
	DS_LINK_HARD = 1,    /* link, linkat: A = the existing file's path */
	DS_LINK_SYMBOLIC = 2, /* symlink, symlinkat: A = the link's target, as given (not resolved) */
};

/* link(), linkat(), symlink(), symlinkat(): strings A = old (see ds_link_kind), B = the new link's path. */
struct ds_link_data {
	__u32 kind;   /* enum ds_link_kind */
	__u32 lflags; /* linkat's flags */
};
struct ds_link {
	DS_RECORD_HEAD;
	struct ds_link_data link;
	__u32 str[DS_REC_STR_NR];
};

/* unlink(), unlinkat() of a file: string A = the path. */
struct ds_unlink {
	DS_RECORD_HEAD;
	__u32 str[DS_REC_STR_NR];
};

/* rmdir(), unlinkat(AT_REMOVEDIR): string A = the path. */
struct ds_rmdir {
	DS_RECORD_HEAD;
	__u32 str[DS_REC_STR_NR];
};

/* mount(): strings A = the source (device), B = the mount point's path, C = the fs type. */
struct ds_mount_data {
	__u64 mflags; /* MS_* */
};
struct ds_mount {
	DS_RECORD_HEAD;
	struct ds_mount_data mount;
	__u32 str[DS_REC_STR_NR];
};

/* init_module(), finit_module(): string A = the module file's path (finit_module). */
struct ds_load_module_data {
	__s32 fd;     /* finit_module's fd, or -1 for init_module (an image in memory) */
	__u32 mflags; /* finit_module's flags */
};
struct ds_load_module {
	DS_RECORD_HEAD;
	struct ds_load_module_data load_module;
	__u32 str[DS_REC_STR_NR];
};

/* Per-CPU counters, read by `dual-slot stats` and the summary line. */
struct ds_counters {
	__u64 seq;
	__u64 events;
	__u64 output_fail;  /* perf/ring output or reserve failed, or a syscall's stash: a kernel-side drop */
	__u64 corrupt;
	__u64 clobbers;     /* guard detections */
	__u64 lookup_fail;
	__u64 slot_gets[DS_MAX_SLOTS];
	__u64 bytes;
	__u64 filtered_kernel; /* records a kernel-side filter (--uid, --cgroup, --allow-*) dropped */
};

/* Guard state for one slot on one CPU: who holds it, and how often it was taken. */
struct ds_slot_state {
	__u32 owner;
	__u32 gen;
	__u32 clobbered;
	__u32 pad;
};

/*
 * Load-time configuration: the object's only .rodata variable, written through
 * bpf_map__initial_value before load. The verifier sees the values as known and
 * prunes the modes a run does not use.
 */
struct ds_config {
	__u32 mode;      /* enum ds_mode */
	__u32 slots;     /* entries in the slot map */
	__u32 transport; /* enum ds_transport */
	__u32 encoding;  /* enum ds_encoding */
	__u32 guard;
	__u32 inject_clobber;
	__u32 max_arg_bytes;
	__u32 events;    /* 1 << enum ds_event_type, for each selected record type */
	/* Kernel-side filters (bpf/filter.bpf.h): whether each map is in use. */
	__u32 filter_uid;
	__u32 filter_cgroup;
	__u32 filter_exe;
	__u32 filter_argv;
	__u32 argv_seed_lo; /* per-run seed of the argv hash, so nobody can precompute a collision */
	__u32 argv_seed_hi;
	__u32 irq_slots; /* the lab's interrupt-context level: 0 off, 1 Elkeid's shared pair, 2 a pair per context */
	__u32 task_cast; /* 1: the kernel has bpf_rdonly_cast (self(), bpf/heap.bpf.h) */
	/*
	 * The kernel's BTF ids of the types bpf_rdonly_cast casts to (ds_cast),
	 * found by the loader: the CO-RE relocations resolve against a BTF of only
	 * the types the programs read (src/ebpf/core-btf.ts), whose ids are its own.
	 */
	__u32 kid_task_struct;
	__u32 kid_cred;
	__u32 kid_file;
	__u32 kid_dentry;
	__u32 kid_inode;
	__u32 kid_mount;
	__u32 kid_sock;
	__u32 kid_socket;
	/*
	 * The ring buffer transports: ring the bell (ds_bell, transport.bpf.h)
	 * once this many bytes wait in ds_ring. 0: no bell (perf buffers raise
	 * their own signal; kernels before 6.10 send none for either).
	 */
	__u32 bell_at;
};

/* A trusted executable (--allow-exe): its inode, as the kernel numbers its device (MAJOR << 20 | MINOR). */
struct ds_exe_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

/* .bss, written after load: the flood target exists only then. */
struct ds_bss {
	__u32 flood_tgid;
	__u32 flood_nr;
};

/*
 * Everything user space reads, by value, reachable from one global pointer
 * (ds_wire_anchor): clang emits BTF only for types the program uses, and records
 * a struct that a struct member merely points to as a forward declaration.
 * build.ts generates TypeScript from this BTF.
 */
struct ds_wire_types {
	struct ds_exec_fixed exec_fixed;
	struct ds_exit_fixed exit_fixed;
	struct ds_record record;
	struct ds_fork fork;
	struct ds_setsid setsid;
	struct ds_prctl prctl;
	struct ds_ptrace ptrace;
	struct ds_memfd_create memfd_create;
	struct ds_kill kill;
	struct ds_privilege_escalation privilege_escalation;
	struct ds_connect connect;
	struct ds_accept accept;
	struct ds_bind bind;
	struct ds_dns dns;
	struct ds_create_file create_file;
	struct ds_rename rename;
	struct ds_link link;
	struct ds_unlink unlink;
	struct ds_rmdir rmdir;
	struct ds_mount mount;
	struct ds_load_module load_module;
	enum ds_link_kind link_kind;
	enum ds_rec_str rec_str;
	enum ds_privesc_how privesc_how;
	struct ds_slot_state slot_state;
	struct ds_counters counters;
	struct ds_config config;
	struct ds_exe_key exe_key;
	struct ds_bss bss;
	enum ds_wire_const wire_const;
	enum ds_event_type event_type;
	enum ds_mode mode;
	enum ds_transport transport;
	enum ds_encoding encoding;
	enum ds_str str;
	enum ds_exit_str exit_str;
	enum ds_flags flags;
	/* Kernel UAPI structs read through bpf_obj_get_info_by_fd. */
	struct bpf_prog_info prog_info;
	struct bpf_map_info map_info;
	struct bpf_link_info link_info;
};

#endif /* DUAL_SLOT_H */
