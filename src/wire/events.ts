/**
 * The event table: one entry per record type the BPF program emits. An entry
 * names the record's C struct (its layout generated from the object's BTF), the
 * fixed-encoding variant, and the names of its strings (the record's string
 * enum). The decoder reads every scalar member and every string of a record
 * from this alone, so a new event type is a C struct in bpf/dual_slot.h plus
 * one line here.
 *
 * Record convention (bpf/dual_slot.h): `struct ds_header hdr` first, `__u32
 * str[N]` last; each str[i] is `len << 16 | offset` from the record's start.
 * Compact strings are packed right after the struct; the fixed encoding puts
 * each in a char array of the `_fixed` struct named like the string.
 */
import * as layout from "./layout.gen.ts";
import {
  ds_accept,
  ds_bind,
  ds_connect,
  ds_create_file,
  ds_dns,
  ds_event_type,
  ds_exec,
  ds_exec_fixed,
  ds_exit,
  ds_exit_fixed,
  ds_exit_str,
  ds_fork,
  ds_kill,
  ds_link,
  ds_load_module,
  ds_memfd_create,
  ds_mount,
  ds_prctl,
  ds_privilege_escalation,
  ds_ptrace,
  ds_rec_str,
  ds_rename,
  ds_rmdir,
  ds_setsid,
  ds_str,
  ds_unlink,
} from "./layout.gen.ts";
import type { EventName } from "./names.ts";

/** One struct as the generated layout describes it. */
export interface StructLayout {
  readonly size: number;
  readonly off: Readonly<Record<string, number>>;
  readonly bytes: Readonly<Record<string, number>>;
  readonly count: Readonly<Record<string, number>>;
  readonly kind: Readonly<Record<string, string>>;
}

/**
 * A BPF program an event needs, and where it attaches: its own SEC() name, or
 * (a program shared by several syscalls) each tracepoint given.
 */
export interface ProgramSpec {
  readonly name: string;
  /** "syscalls/sys_exit_kill" ...; absent: the program's SEC() says where. */
  readonly tracepoints?: readonly string[];
  /** A classic tracepoint: attaching it needs tracefs (src/ebpf/tracefs.ts). */
  readonly tracefs?: true;
  /** Loaded for other programs to jump to (bpf_tail_call), never attached. */
  readonly tailCall?: true;
}

/** The syscall records' serializer: their exit programs fill slot 1 and jump to it. */
export const EMITTER: ProgramSpec = { name: "ds_emit", tailCall: true };

/** A program on syscall tracepoints. */
const sys = (name: string, tracepoints?: readonly string[]): ProgramSpec =>
  tracepoints === undefined ? { name, tracefs: true } : { name, tracepoints, tracefs: true };

export interface EventSpec {
  readonly name: EventName;
  readonly type: number;
  /**
   * The BPF programs that emit it: loaded and attached only when an event that
   * needs them is selected (several events may share one).
   */
  readonly programs: readonly ProgramSpec[];
  /** Selected when --events is not given. */
  readonly byDefault: boolean;
  /** One line for --help and doctor: what it reports, from which hook. */
  readonly doc: string;
  readonly struct: StructLayout;
  readonly fixed: StructLayout;
  /** str[i]'s name. */
  readonly strings: readonly string[];
}

/** Every generated struct layout by its C name (a nested member's `kind`). */
const STRUCTS: ReadonlyMap<string, StructLayout> = new Map(
  Object.entries(layout).flatMap(
    ([name, v]): Array<[string, StructLayout]> =>
      typeof v === "object" && v !== null && "off" in v && "kind" in v ? [[name, v as StructLayout]] : [],
  ),
);

/** The layout of a nested struct member's type (e.g. `common`'s ds_common), if it is one. */
export function nestedStruct(s: StructLayout, member: string): StructLayout | undefined {
  const kind = s.kind[member];
  return kind === undefined ? undefined : STRUCTS.get(kind);
}

/**
 * Where a member lies in a record: `pid`, or a nested struct's scalar by its
 * dotted path (`common.euid`, `dns.sock.family`), as the decoder flattens
 * them. Undefined when the struct has no such member.
 */
export function memberAt(s: StructLayout, path: string): { off: number; kind: string } | undefined {
  const dot = path.indexOf(".");
  if (dot < 0) {
    const off = s.off[path];
    return off === undefined ? undefined : { off, kind: s.kind[path]! };
  }
  const outer = path.slice(0, dot);
  const inner = nestedStruct(s, outer);
  const m = inner === undefined ? undefined : memberAt(inner, path.slice(dot + 1));
  return m === undefined ? undefined : { off: s.off[outer]! + m.off, kind: m.kind };
}

/** String names in index order from a `DS_<X>_STR_*` enum (its `_NR` member is the count). */
function stringNames(e: Readonly<Record<string, number>>, prefix: string): string[] {
  const names: string[] = [];
  for (const [k, v] of Object.entries(e)) if (k !== `${prefix}NR`) names[v] = k.slice(prefix.length).toLowerCase();
  return names;
}

const EXEC_STRINGS = stringNames(ds_str, "DS_STR_");
/** A DS_RECORD_HEAD record's strings: the common four, then the type's own (A, B) under its names. */
const recStrings = (...own: string[]): string[] => [
  ...stringNames(ds_rec_str, "DS_REC_STR_").slice(0, ds_rec_str.DS_REC_STR_A),
  ...own,
];

/** Only x86-64 has the old path syscalls (open, creat, rename, ...); arm64 has their *at forms alone. */
const legacy = (names: readonly string[]): string[] => (process.arch === "x64" ? [...names] : []);
const entries = (names: readonly string[]): string[] => names.map((n) => `syscalls/sys_enter_${n}`);
const exits = (names: readonly string[]): string[] => names.map((n) => `syscalls/sys_exit_${n}`);
const entry = (name: string, syscall: string): ProgramSpec => sys(name, entries([syscall]));
/** An entry program for an x86-64-only syscall: none elsewhere. */
const legacyEntry = (name: string, syscall: string): ProgramSpec[] =>
  process.arch === "x64" ? [entry(name, syscall)] : [];
const EXEC_PROGRAM: ProgramSpec = { name: "ds_exec" };
/** Entry of execve and execveat (arguments and creds kept for their exit), and the exit. */
const EXECVE_PROGRAMS: readonly ProgramSpec[] = [
  sys("ds_execve_enter", entries(["execve", "execveat"])),
  sys("ds_execve_exit", exits(["execve", "execveat"])),
];
/**
 * ds_names_enter on these calls' sys_enter tracepoints: the entry that keeps
 * a call's arguments and the names it was given, one program for every such
 * call (it knows them by number: bpf/file_events.bpf.h); each event lists its
 * own calls, and the tracepoints of the selected events are attached.
 */
const namesEntry = (syscalls: readonly string[]): ProgramSpec => sys("ds_names_enter", entries(syscalls));
const DNS_CALLS = ["sendto", "sendmsg", "sendmmsg", "recvfrom", "recvmsg"];
const DNS_ONE_MESSAGE = ["sendto", "sendmsg", "recvfrom", "recvmsg"];
const SETID = ["setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid"];

/** unlink and rmdir share these: the exit program reports whichever the call was, if selected. */
const UNLINK_PROGRAMS: readonly ProgramSpec[] = [
  namesEntry([...legacy(["unlink", "rmdir"]), "unlinkat"]),
  sys("ds_unlink_exit", exits([...legacy(["unlink", "rmdir"]), "unlinkat"])),
  EMITTER,
];

export const EVENTS: readonly EventSpec[] = [
  {
    name: "exec",
    type: ds_event_type.DS_EVENT_EXEC,
    programs: [EXEC_PROGRAM, ...EXECVE_PROGRAMS],
    byDefault: true,
    doc: "a program started (sched_process_exec), or an execve or execveat failed (their syscall tracepoints)",
    struct: ds_exec,
    fixed: ds_exec_fixed,
    strings: EXEC_STRINGS,
  },
  {
    name: "exit",
    type: ds_event_type.DS_EVENT_EXIT,
    programs: [{ name: "ds_exit" }],
    byDefault: false,
    doc: "a process exited (sched_process_exit)",
    struct: ds_exit,
    fixed: ds_exit_fixed,
    strings: stringNames(ds_exit_str, "DS_EXIT_STR_"),
  },
  {
    name: "fork",
    type: ds_event_type.DS_EVENT_FORK,
    programs: [{ name: "ds_fork" }],
    byDefault: false,
    doc: "a new process (sched_process_fork; threads are not reported)",
    struct: ds_fork,
    fixed: ds_fork,
    strings: recStrings(),
  },
  {
    name: "setsid",
    type: ds_event_type.DS_EVENT_SETSID,
    programs: [sys("ds_setsid_exit"), EMITTER],
    byDefault: true,
    doc: "a process started a new session (sys_exit_setsid)",
    struct: ds_setsid,
    fixed: ds_setsid,
    strings: recStrings(),
  },
  {
    name: "prctl",
    type: ds_event_type.DS_EVENT_PRCTL,
    programs: [sys("ds_prctl_enter"), sys("ds_prctl_exit"), EMITTER],
    byDefault: true,
    doc: "a task renamed itself with prctl PR_SET_NAME (sys_enter_prctl, sys_exit_prctl)",
    struct: ds_prctl,
    fixed: ds_prctl,
    strings: recStrings("old_name", "new_name"),
  },
  {
    name: "ptrace",
    type: ds_event_type.DS_EVENT_PTRACE,
    programs: [sys("ds_ptrace_enter"), sys("ds_ptrace_exit"), EMITTER],
    byDefault: true,
    doc: "ptrace attach, seize, poke or set-registers (sys_enter_ptrace, sys_exit_ptrace)",
    struct: ds_ptrace,
    fixed: ds_ptrace,
    strings: recStrings("target_exe"),
  },
  {
    name: "memfd_create",
    type: ds_event_type.DS_EVENT_MEMFD_CREATE,
    programs: [namesEntry(["memfd_create"]), sys("ds_memfd_create_exit"), EMITTER],
    byDefault: true,
    doc: "an anonymous memory file was created (memfd_create's syscall tracepoints)",
    struct: ds_memfd_create,
    fixed: ds_memfd_create,
    strings: recStrings("name"),
  },
  {
    name: "kill",
    type: ds_event_type.DS_EVENT_KILL,
    programs: [
      sys("ds_kill_enter"),
      sys("ds_tkill_enter"),
      sys("ds_tgkill_enter"),
      sys("ds_kill_exit", ["syscalls/sys_exit_kill", "syscalls/sys_exit_tkill", "syscalls/sys_exit_tgkill"]),
      EMITTER,
    ],
    byDefault: false,
    doc: "a signal sent with kill, tkill or tgkill (their syscall tracepoints)",
    struct: ds_kill,
    fixed: ds_kill,
    strings: recStrings(),
  },
  {
    name: "privilege_escalation",
    type: ds_event_type.DS_EVENT_PRIVILEGE_ESCALATION,
    programs: [
      { name: "ds_exec_privesc" },
      ...EXECVE_PROGRAMS,
      sys(
        "ds_setid_enter",
        SETID.map((c) => `syscalls/sys_enter_${c}`),
      ),
      sys(
        "ds_setid_exit",
        SETID.map((c) => `syscalls/sys_exit_${c}`),
      ),
      EMITTER,
    ],
    byDefault: true,
    doc: "an exec that raised effective ids or capabilities (setuid, setgid, file capabilities), or a set*id call that made a non-root task root",
    struct: ds_privilege_escalation,
    fixed: ds_privilege_escalation,
    strings: recStrings(),
  },
  {
    name: "usermode_helper",
    type: ds_event_type.DS_EVENT_USERMODE_HELPER,
    programs: [EXEC_PROGRAM],
    byDefault: true,
    doc: "a program the kernel started itself (call_usermodehelper: core_pattern pipes, modprobe, hotplug), reported instead of its exec",
    struct: ds_exec,
    fixed: ds_exec_fixed,
    strings: EXEC_STRINGS,
  },
  {
    name: "connect",
    type: ds_event_type.DS_EVENT_CONNECT,
    programs: [entry("ds_sockaddr_enter", "connect"), sys("ds_connect_exit"), EMITTER],
    byDefault: true,
    doc: "an inet socket connected, TCP or UDP, IPv4 or IPv6 (connect's syscall tracepoints)",
    struct: ds_connect,
    fixed: ds_connect,
    strings: recStrings(),
  },
  {
    name: "accept",
    type: ds_event_type.DS_EVENT_ACCEPT,
    programs: [sys("ds_accept_exit", ["syscalls/sys_exit_accept", "syscalls/sys_exit_accept4"]), EMITTER],
    byDefault: false,
    doc: "an inet connection accepted (sys_exit_accept, sys_exit_accept4)",
    struct: ds_accept,
    fixed: ds_accept,
    strings: recStrings(),
  },
  {
    name: "bind",
    type: ds_event_type.DS_EVENT_BIND,
    programs: [entry("ds_sockaddr_enter", "bind"), sys("ds_bind_exit"), EMITTER],
    byDefault: true,
    doc: "an inet socket bound to a local address (bind's syscall tracepoints)",
    struct: ds_bind,
    fixed: ds_bind,
    strings: recStrings(),
  },
  {
    name: "dns",
    type: ds_event_type.DS_EVENT_DNS,
    programs: [
      ...DNS_CALLS.map((c) => sys(`ds_${c}_enter`)),
      sys("ds_dns_exit", exits(DNS_ONE_MESSAGE)),
      sys("ds_sendmmsg_exit"),
      EMITTER,
    ],
    byDefault: true,
    doc: "a DNS query sent or reply read over UDP port 53, name parsed in the kernel (sendto, sendmsg, sendmmsg, recvfrom, recvmsg)",
    struct: ds_dns,
    fixed: ds_dns,
    strings: recStrings("name"),
  },
  {
    name: "create_file",
    type: ds_event_type.DS_EVENT_CREATE_FILE,
    programs: [
      ...legacyEntry("ds_open_enter", "open"),
      sys("ds_openat_enter"),
      sys("ds_openat2_enter"),
      namesEntry([...legacy(["creat", "mknod"]), "mknodat"]),
      sys("ds_create_exit", exits([...legacy(["open", "creat", "mknod"]), "openat", "openat2", "mknodat"])),
      EMITTER,
    ],
    byDefault: true,
    doc: "an open that created its file (FMODE_CREATED at sys_exit), or mknod",
    struct: ds_create_file,
    fixed: ds_create_file,
    strings: recStrings("path"),
  },
  {
    name: "rename",
    type: ds_event_type.DS_EVENT_RENAME,
    programs: [
      namesEntry([...legacy(["rename"]), "renameat", "renameat2"]),
      sys("ds_rename_exit", exits([...legacy(["rename"]), "renameat", "renameat2"])),
      EMITTER,
    ],
    byDefault: true,
    doc: "a file renamed or moved (rename, renameat, renameat2)",
    struct: ds_rename,
    fixed: ds_rename,
    strings: recStrings("old_path", "new_path"),
  },
  {
    name: "link",
    type: ds_event_type.DS_EVENT_LINK,
    programs: [
      namesEntry([...legacy(["link", "symlink"]), "linkat", "symlinkat"]),
      sys("ds_link_exit", exits([...legacy(["link", "symlink"]), "linkat", "symlinkat"])),
      EMITTER,
    ],
    byDefault: true,
    doc: "a hard or symbolic link made (link, linkat, symlink, symlinkat)",
    struct: ds_link,
    fixed: ds_link,
    strings: recStrings("old_path", "new_path"),
  },
  {
    name: "unlink",
    type: ds_event_type.DS_EVENT_UNLINK,
    programs: UNLINK_PROGRAMS,
    byDefault: false,
    doc: "a file removed (unlink, unlinkat)",
    struct: ds_unlink,
    fixed: ds_unlink,
    strings: recStrings("path"),
  },
  {
    name: "rmdir",
    type: ds_event_type.DS_EVENT_RMDIR,
    programs: UNLINK_PROGRAMS,
    byDefault: false,
    doc: "a directory removed (rmdir, unlinkat with AT_REMOVEDIR)",
    struct: ds_rmdir,
    fixed: ds_rmdir,
    strings: recStrings("path"),
  },
  {
    name: "mount",
    type: ds_event_type.DS_EVENT_MOUNT,
    programs: [namesEntry(["mount"]), sys("ds_mount_exit"), EMITTER],
    byDefault: true,
    doc: "a file system mounted, bound or remounted (mount's syscall tracepoints)",
    struct: ds_mount,
    fixed: ds_mount,
    strings: recStrings("source", "mount_point", "fs_type"),
  },
  {
    name: "load_module",
    type: ds_event_type.DS_EVENT_LOAD_MODULE,
    programs: [
      sys("ds_init_module_enter"),
      sys("ds_finit_module_enter"),
      sys("ds_load_module_exit", exits(["init_module", "finit_module"])),
      EMITTER,
    ],
    byDefault: true,
    doc: "a kernel module loaded (init_module, finit_module); unavailable where the kernel has no modules",
    struct: ds_load_module,
    fixed: ds_load_module,
    strings: recStrings("path"),
  },
  // The benchmark's syscall flood: its records go through the exec path, so they share its struct.
  {
    name: "flood",
    type: ds_event_type.DS_EVENT_FLOOD,
    programs: [{ name: "ds_flood" }],
    byDefault: false,
    doc: "the benchmark's syscall flood (sys_enter, one process)",
    struct: ds_exec,
    fixed: ds_exec_fixed,
    strings: EXEC_STRINGS,
  },
];

/** The lab's interrupt-context level (bpf/dual_slot.bpf.c irq_level): not an event, only the "irq" experiments. */
export const IRQ_PROGRAMS: readonly ProgramSpec[] = [{ name: "ds_irq_softirq" }, { name: "ds_irq_hardirq" }];

/**
 * The programs a set of events needs, each once. failedExecs false leaves out
 * the execve/execveat tracepoints unless privilege_escalation needs them;
 * irq adds the lab's interrupt-context programs.
 */
export function programsFor(events: readonly EventName[], failedExecs = true, irq = false): ProgramSpec[] {
  const out = new Map<string, ProgramSpec>();
  for (const e of EVENTS) {
    if (!events.includes(e.name)) continue;
    for (const p of e.programs) {
      // A program several events share on different tracepoints (ds_names_enter) goes on all of theirs.
      const had = out.get(p.name);
      const tracepoints =
        had?.tracepoints === undefined || p.tracepoints === undefined
          ? undefined
          : [...new Set([...had.tracepoints, ...p.tracepoints])];
      out.set(p.name, tracepoints === undefined ? p : { ...p, tracepoints });
    }
  }
  if (!failedExecs && !events.includes("privilege_escalation")) for (const p of EXECVE_PROGRAMS) out.delete(p.name);
  if (irq) for (const p of IRQ_PROGRAMS) out.set(p.name, p);
  return [...out.values()];
}

/** Every BPF program of every event. */
export const ALL_PROGRAMS: readonly string[] = programsFor(
  EVENTS.map((e) => e.name),
  true,
  true,
).map((p) => p.name);

/** The ds_config.events mask: bit 1 << type for each selected event. */
export function eventMask(events: readonly EventName[]): number {
  let m = 0;
  for (const e of EVENTS) if (events.includes(e.name)) m |= 1 << e.type;
  return m >>> 0;
}

/** Spec by the header's type value. */
export const SPEC_BY_TYPE: ReadonlyArray<EventSpec | undefined> = (() => {
  const out: Array<EventSpec | undefined> = [];
  for (const s of EVENTS) out[s.type] = s;
  return out;
})();
