/**
 * The NDJSON schema: every field of every event, its one JSON type, what it
 * means, and how it is read from a decoded event. The JSON renderer walks these
 * tables to build each line, and docs/events.md is generated from them, so the
 * reference cannot drift from the output; a test validates emitted events
 * against them.
 *
 * Types never change: 64-bit kernel values (times, ids, sequence numbers) are
 * decimal strings, because a JSON number past 2^53 loses digits in JavaScript,
 * jq and most pipelines, and a field that is sometimes a number and sometimes a
 * string breaks typed stores. 32-bit values are numbers.
 */
import type { AgentEvent, EventBase, ExecEvent, ExitEvent, LevelView } from "../wire/decode.ts";
import { ds_flags } from "../wire/layout.gen.ts";
import { escapeBytes } from "./escape.ts";

/** Bumped whenever a field changes meaning or type, or disappears. */
export const SCHEMA_VERSION = 1;

export type JsonType = "string" | "integer" | "boolean" | "string[]" | "object" | "object[]";

export interface RenderContext {
  /** Wall-clock time of the kernel's monotonic zero. */
  bootWallNs: bigint;
  host: string;
}

/**
 * Where a field's value lies in the record's bytes, for the compiled renderer
 * (fast.ts), which writes the line without decoding the event first. get() is
 * the definition; this is the same value read at its source, and a
 * differential test holds the two byte-identical. Members are named as in the
 * C struct; a `member` or `header` value is a JSON number, a decimal string
 * or a boolean (non-zero) after `shift` and `mask`, as the field's type says.
 */
export type Wire =
  | { from: "const"; value: number | string | boolean }
  | { from: "host" }
  /** The record type's name (exec, flood, exit). */
  | { from: "type" }
  /** rfc3339Nano(bootWallNs + hdr.ktime_ns). */
  | { from: "time" }
  | { from: "header"; member: "ktime_ns" | "seq" | "cpu" | "slots" | "size" }
  | { from: "name"; member: "mode" | "transport" | "encoding" }
  /**
   * `member` is a C member (`pid`) or a nested struct's scalar by its dotted
   * path (`common.euid`, `dns.sock.family`), of any scalar kind: a signed one
   * may be negative; a 64-bit one past 2^53 takes the general path.
   */
  | { from: "member"; member: string; shift?: number; mask?: number }
  /**
   * A member's value (& mask) by name: `names`' entry, else `otherwise`, else
   * the value in decimal. `onlyIf`: "" unless that other member has that value.
   */
  | {
      from: "enum";
      member: string;
      names: ReadonlyMap<number, string>;
      mask?: number;
      otherwise?: string;
      onlyIf?: { member: string; value: number };
    }
  /** A 64-bit member as "0x" and lower-case hex digits (addresses, capability sets). */
  | { from: "hex"; member: string }
  /** (member & mask) in octal, zero-padded to `digits` (permission bits). */
  | { from: "octal"; member: string; mask: number; digits: number }
  /** An end's address of the struct ds_sock_data at `sock`, as ipText() writes it (ip.ts). */
  | { from: "ip"; sock: string; end: "sip" | "dip" }
  /** A JSON object of these fields, in order; `ifNonZero`: absent while that member is 0. */
  | { from: "object"; fields: ReadonlyArray<SubField>; ifNonZero?: string }
  /** A string: the members' decimal values joined by ":" (exec_id). */
  | { from: "join"; members: readonly string[] }
  /** flags & mask is non-zero (or, with orArgsCut, argv was cut by --max-args). */
  | { from: "flags"; mask: number; orArgsCut?: true }
  /** A string as text; `ifPresent`: absent when empty. Not valid UTF-8: the general path. */
  | { from: "string"; name: string; ifPresent?: true }
  /** escapeBytes() of a string's bytes (C string), or of the first level's observed data. */
  | { from: "cstr"; name: string }
  | { from: "level0Observed" }
  | { from: "args" }
  /**
   * Never present on the compiled path: records where get() returns something
   * (invalid UTF-8 twins, damage to show) take the general path. `unlessFlags`
   * and `dualOnly` name those records; invalid text is caught where it is read.
   */
  | { from: "absent"; unlessFlags?: number; dualOnly?: true };

/** A field of a nested object: its key and where its value lies. */
export interface SubField {
  key: string;
  type: JsonType;
  wire: Wire;
}

/**
 * One piece of a table row's summary: literal text, a value read as `wire`
 * says (as text: no quotes), or pieces shown only when a member has a value.
 */
export type SummaryPart = string | Wire | { when: { member: string; value: number }; parts: readonly SummaryPart[] };

export interface Field<E> {
  key: string;
  type: JsonType;
  doc: string;
  /** Present only when get() returns something (the doc says when). */
  optional?: true;
  get: (ev: E, ctx: RenderContext) => unknown;
  wire?: Wire;
}

export interface EventSchema<E> {
  event: string;
  doc: string;
  /** The table's FILE_INFO after slot1_data and slot0_seq: the key data of the type. */
  summary?: (ev: E) => string;
  /** summary's definition, when the schema has one: what the compiled row renders (fast.ts). */
  summaryParts?: readonly SummaryPart[];
  fields: ReadonlyArray<Field<E>>;
  /** Fields inside `heap`: how the dual-slot heap built the event (the lab's view). */
  heap: ReadonlyArray<Field<E>>;
}

let lastSecond = -1n;
let lastPrefix = "";

/** RFC 3339 UTC with nanoseconds, from a wall-clock time in ns. */
export function rfc3339Nano(wallNs: bigint): string {
  const sec = wallNs / 1_000_000_000n;
  // Events come in bursts within the same second: format its date once.
  if (sec !== lastSecond) {
    lastSecond = sec;
    lastPrefix = new Date(Number(sec) * 1000).toISOString().slice(0, 19);
  }
  const frac = (wallNs - sec * 1_000_000_000n).toString().padStart(9, "0");
  return `${lastPrefix}.${frac}Z`;
}

const b64 = (ev: EventBase, name: string): string | undefined => {
  const raw = ev.raw?.[name];
  return raw === undefined ? undefined : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64");
};

/** A string the kernel copied, and its exact bytes when they are not valid UTF-8. */
export function text<E extends EventBase>(key: string, doc: string, get: (ev: E) => string): Array<Field<E>> {
  return [
    {
      key,
      type: "string",
      doc: `${doc} Bytes that are not valid UTF-8 appear as \`\\xNN\` (and a backslash as \`\\\\\`).`,
      get,
      wire: { from: "string", name: key },
    },
    {
      key: `${key}_b64`,
      type: "string",
      doc: `The exact bytes of \`${key}\`, base64; present only when they are not valid UTF-8.`,
      optional: true,
      get: (ev) => b64(ev, key),
      wire: { from: "absent" },
    },
  ];
}

/** A boolean field from bits of the record's `flags` member. */
export function flagField<E extends EventBase & { flags: number }>(key: string, mask: number, doc: string): Field<E> {
  return { key, type: "boolean", doc, get: (ev) => (ev.flags & mask) !== 0, wire: { from: "flags", mask } };
}

/** What an exec's or an exit's `exe` cannot show: unlinked, or a memfd. */
export function exeFlags<E extends EventBase & { flags: number }>(): Array<Field<E>> {
  return [
    flagField<E>(
      "exe_deleted",
      ds_flags.DS_F_EXE_DELETED,
      "The name the executable ran from had been removed (unlinked, even if the file keeps another name): the file at `exe` is not what ran (or is gone).",
    ),
    flagField<E>(
      "exe_memfd",
      ds_flags.DS_F_EXE_MEMFD,
      "The executable is a memfd (`exe` is `/memfd:<name>`): a program that never was a file.",
    ),
  ];
}

export function common<E extends EventBase>(): Array<Field<E>> {
  return [
    {
      key: "schema",
      type: "integer",
      doc: "Schema version of this line.",
      get: () => SCHEMA_VERSION,
      wire: { from: "const", value: SCHEMA_VERSION },
    },
    {
      key: "host",
      type: "string",
      doc: "Host name of the machine (UTS nodename of the agent).",
      get: (_, c) => c.host,
      wire: { from: "host" },
    },
    { key: "event", type: "string", doc: "Event type.", get: (ev) => ev.type, wire: { from: "type" } },
    {
      key: "time",
      type: "string",
      doc: "When the kernel built the event, RFC 3339 UTC with nanoseconds.",
      get: (ev, c) => rfc3339Nano(c.bootWallNs + ev.ktimeNs),
      wire: { from: "time" },
    },
    {
      key: "ktime_ns",
      type: "string",
      doc: "The same instant on the kernel's monotonic clock (ns since boot).",
      get: (ev) => ev.ktimeNs.toString(),
      wire: { from: "header", member: "ktime_ns" },
    },
    {
      key: "cpu",
      type: "integer",
      doc: "CPU the event was built on.",
      get: (ev) => ev.cpu,
      wire: { from: "header", member: "cpu" },
    },
    {
      key: "pid",
      type: "integer",
      doc: "Process id (thread group id).",
      get: (ev) => ev.pid,
      wire: { from: "member", member: "pid" },
    },
    { key: "tid", type: "integer", doc: "Thread id.", get: (ev) => ev.tid, wire: { from: "member", member: "tid" } },
    {
      key: "ppid",
      type: "integer",
      doc: "Parent's process id.",
      get: (ev) => ev.ppid,
      wire: { from: "member", member: "ppid" },
    },
    { key: "uid", type: "integer", doc: "Real user id.", get: (ev) => ev.uid, wire: { from: "member", member: "uid" } },
    {
      key: "gid",
      type: "integer",
      doc: "Real group id.",
      get: (ev) => ev.gid,
      wire: { from: "member", member: "gid" },
    },
    ...text<E>("comm", "Task name (at most 15 bytes, as the kernel keeps it).", (ev) => ev.comm),
    {
      key: "cgroup_id",
      type: "string",
      doc: "cgroup v2 id of the task.",
      get: (ev) => ev.cgroupId.toString(),
      wire: { from: "member", member: "cgroup_id" },
    },
    {
      key: "euid",
      type: "integer",
      doc: "Effective user id.",
      get: (ev) => ev.euid,
      wire: { from: "member", member: "common.euid" },
    },
    {
      key: "egid",
      type: "integer",
      doc: "Effective group id.",
      get: (ev) => ev.egid,
      wire: { from: "member", member: "common.egid" },
    },
    {
      key: "pgid",
      type: "integer",
      doc: "Process group id (its leader's pid, as the initial pid namespace sees it).",
      get: (ev) => ev.pgid,
      wire: { from: "member", member: "common.pgid" },
    },
    {
      key: "sid",
      type: "integer",
      doc: "Session id (its leader's pid, as the initial pid namespace sees it).",
      get: (ev) => ev.sid,
      wire: { from: "member", member: "common.sid" },
    },
    {
      key: "sessionid",
      type: "integer",
      doc: "Audit login session id; 4294967295 when unset (or the kernel has no audit support).",
      get: (ev) => ev.sessionid,
      wire: { from: "member", member: "common.sessionid" },
    },
    {
      key: "auid",
      type: "integer",
      doc: "Audit login user id (loginuid); 4294967295 when unset (or the kernel has no audit support).",
      get: (ev) => ev.auid,
      wire: { from: "member", member: "common.auid" },
    },
    {
      key: "pidns_id",
      type: "integer",
      doc: "The task's pid namespace inode number.",
      get: (ev) => ev.pidnsId,
      wire: { from: "member", member: "common.pidns_id" },
    },
    {
      key: "mntns_id",
      type: "integer",
      doc: "Mount namespace inode number.",
      get: (ev) => ev.mntnsId,
      wire: { from: "member", member: "common.mntns_id" },
    },
    ...text<E>(
      "nodename",
      "UTS host name of the task's namespace (differs from `host` in a container).",
      (ev) => ev.nodename,
    ),
    {
      key: "exec_id",
      type: "string",
      doc: "This process image, unique on this boot: `<start_ns>:<pid>:<exec_seq>`, the thread group's start (ns, monotonic clock), its pid and the kernel's exec count of the task (`self_exec_id`, one more at each exec). Survives pid reuse; changes at each exec.",
      get: (ev) => ev.execId,
      wire: { from: "join", members: ["common.start_ns", "pid", "common.exec_seq"] },
    },
    {
      key: "parent_exec_id",
      type: "string",
      doc: "`exec_id` of the parent (`ppid`) at the time of the event: equal to the `exec_id` of the parent's own exec event when it was seen.",
      get: (ev) => ev.parentExecId,
      wire: { from: "join", members: ["common.pstart_ns", "ppid", "common.pexec_seq"] },
    },
    ...text<E>(
      "pid_tree",
      "The task and its ancestors, Elkeid's format: `pid.comm` each, from the task up its real parents, joined by `<`, at most 8, ending at pid 1 (e.g. `1234.bash<1200.sshd<1.systemd`).",
      (ev) => ev.pidTree,
    ),
  ];
}

export function heapCommon<E extends EventBase>(): Array<Field<E>> {
  return [
    {
      key: "slot0_seq",
      type: "string",
      doc: "Per-CPU sequence number of the record serialized in slot 0.",
      get: (ev) => ev.seq.toString(),
      wire: { from: "header", member: "seq" },
    },
    {
      key: "slot1_intact",
      type: "boolean",
      doc: "Slot 1 still held the business data when the serializer read it.",
      get: (ev) => ev.slot1Intact,
      wire: { from: "flags", mask: ds_flags.DS_F_SLOT1_INTACT },
    },
    {
      key: "mode",
      type: "string",
      doc: "Slot layout: dual, single or nest3.",
      get: (ev) => ev.mode,
      wire: { from: "name", member: "mode" },
    },
    {
      key: "slots",
      type: "integer",
      doc: "Entries in the per-CPU heap map.",
      get: (ev) => ev.slots,
      wire: { from: "header", member: "slots" },
    },
    {
      key: "transport",
      type: "string",
      doc: "perf, ringbuf or ringbuf-output.",
      get: (ev) => ev.transport,
      wire: { from: "name", member: "transport" },
    },
    {
      key: "encoding",
      type: "string",
      doc: "compact or fixed.",
      get: (ev) => ev.encoding,
      wire: { from: "name", member: "encoding" },
    },
    {
      key: "bytes",
      type: "integer",
      doc: "Size of the record on the wire.",
      get: (ev) => ev.size,
      wire: { from: "header", member: "size" },
    },
    {
      key: "corrupt",
      type: "boolean",
      doc: "A level's slot data changed under it.",
      get: (ev) => ev.corrupt,
      wire: { from: "flags", mask: ds_flags.DS_F_CORRUPT },
    },
  ];
}

/** What slot 1 still held when the serializer looked: the business level's observed data. */
export function slot1Data(ev: AgentEvent, maxChars = 32): string {
  if (!("levels" in ev)) return escapeBytes(Buffer.from(ev.raw?.comm ?? ev.comm), maxChars);
  const l = ev.levels[0];
  return l === undefined ? "" : escapeBytes(l.dataObserved, maxChars);
}

function levelJson(l: LevelView) {
  return {
    slot: l.slot,
    intact: l.intact,
    tag_expected: l.tagExpected.toString(16),
    tag_observed: l.tagObserved.toString(16),
    expected: escapeBytes(l.dataExpected, 64),
    observed: escapeBytes(l.dataObserved, 64),
  };
}

export const EXEC_SCHEMA: EventSchema<ExecEvent> = {
  event: "exec",
  doc: "A process image was replaced (sched_process_exec): what ran, with which arguments, from where; or an `execve`/`execveat` failed (`res` < 0). `usermode_helper` records have the same fields.",
  fields: [
    ...common<ExecEvent>(),
    ...text<ExecEvent>("filename", "Path given to execve, as the caller wrote it.", (ev) => ev.filename),
    {
      key: "filename_truncated",
      type: "boolean",
      doc: "`filename` was longer than the agent copies (511 bytes: `exe` has the resolved path, to 2047) and is cut; for a failed exec also when it could not be read (then empty).",
      get: (ev) => ev.filenameTruncated,
      wire: { from: "flags", mask: ds_flags.DS_F_FILENAME_TRUNCATED },
    },
    {
      key: "args",
      type: "string[]",
      doc: "argv, read from the new process's memory; for a failed exec, from the caller's as the call was entered (at `sys_enter`, before another thread could rewrite it), at most 4096 bytes; strings not in memory then are read at the exit (`read_at_exit`).",
      get: (ev) => ev.args,
      wire: { from: "args" },
    },
    {
      key: "args_b64",
      type: "string",
      doc: "The exact argv area (NUL-separated, as in the process), base64; present only when it is not valid UTF-8.",
      optional: true,
      get: (ev) => b64(ev, "args"),
      wire: { from: "absent" },
    },
    {
      key: "args_truncated",
      type: "boolean",
      doc: "Arguments were cut (by --max-arg-bytes or --max-args); for a failed exec also at a string that could not be read even at the exit, or when the kernel had no memory for the copy of its entry (then empty).",
      get: (ev) => ev.argsTruncated,
      wire: { from: "flags", mask: ds_flags.DS_F_ARGS_TRUNCATED, orArgsCut: true },
    },
    flagField<ExecEvent>(
      "read_at_exit",
      ds_flags.DS_F_READ_AT_EXIT,
      "A failed exec's `filename` or `args` could not be read as the call was entered (a page not in memory yet: a fresh mapping of a file, say) and were read at its exit: they may be what another thread of the caller wrote meanwhile.",
    ),
    ...text<ExecEvent>("cwd", "Working directory, absolute.", (ev) => ev.cwd),
    ...text<ExecEvent>("exe", "The executable's absolute path (symlinks resolved).", (ev) => ev.exe),
    {
      key: "res",
      type: "integer",
      doc: "0 for an exec that happened; a negative errno for an `execve`/`execveat` that failed (e.g. -2, no such file), whose `filename` and `args` are those the call gave (read as it was entered) and whose `exe`, `cwd` and `comm` are the caller's.",
      get: (ev) => ev.res,
      wire: { from: "member", member: "res" },
    },
    {
      key: "exe_dev",
      type: "integer",
      doc: "Device of the executable, the kernel's encoding (`major << 20 | minor`); with `exe_ino`, the file's identity whatever its path.",
      get: (ev) => ev.exeDev,
      wire: { from: "member", member: "exe_dev" },
    },
    {
      key: "exe_ino",
      type: "string",
      doc: "Inode number of the executable.",
      get: (ev) => ev.exeIno.toString(),
      wire: { from: "member", member: "exe_ino" },
    },
    ...exeFlags<ExecEvent>(),
    flagField<ExecEvent>(
      "exe_unreachable",
      ds_flags.DS_F_EXE_UNREACHABLE,
      "The executable is not under the new process's root (a chrooted process that ran a file from outside it, e.g. with execveat on an fd opened before the chroot): `exe` is then the mount namespace's view, not a path the process can see. Not set for a memfd (`exe_memfd`); false for a failed exec.",
    ),
    ...text<ExecEvent>(
      "tty",
      "Controlling terminal, as the kernel names it (e.g. `pts3`, `tty1`); empty when there is none.",
      (ev) => ev.tty,
    ),
    ...text<ExecEvent>(
      "stdin",
      "What fd 0 is, as /proc/PID/fd/0 names it: the absolute path (the mount namespace's view) of a file, a directory, a device or a named FIFO; `/dev/pts/N`; `pipe:[ino]` for an anonymous pipe; `socket:[ino]`; `inode:ino` for anything else (an anon_inode); empty when closed. A path longer than 255 bytes keeps its last 252 after a `…` (`stdio_truncated`).",
      (ev) => ev.stdin,
    ),
    ...text<ExecEvent>("stdout", "What fd 1 is, the same way.", (ev) => ev.stdout),
    flagField<ExecEvent>(
      "stdio_truncated",
      ds_flags.DS_F_STDIO_TRUNCATED,
      "`stdin` or `stdout` is a path that was cut: it starts with `…` and ends with the file's own name.",
    ),
    flagField<ExecEvent>(
      "stdio_deleted",
      ds_flags.DS_F_STDIO_DELETED,
      "`stdin` or `stdout` is a file whose name had been removed (its path is the name it had).",
    ),
    {
      key: "sa_family",
      type: "integer",
      doc: "The first inet socket among fds 0-2 (a shell whose stdin or stdout is a TCP connection shows here): 2 (AF_INET) or 10 (AF_INET6); 0 when there is none, and the four fields below are empty or 0.",
      get: (ev) => ev.saFamily,
      wire: { from: "member", member: "sa_family" },
    },
    ...text<ExecEvent>("sip", "That socket's local address.", (ev) => ev.sip),
    {
      key: "sport",
      type: "integer",
      doc: "That socket's local port.",
      get: (ev) => ev.sport,
      wire: { from: "member", member: "sport" },
    },
    ...text<ExecEvent>("dip", "Its peer's address.", (ev) => ev.dip),
    {
      key: "dport",
      type: "integer",
      doc: "Its peer's port.",
      get: (ev) => ev.dport,
      wire: { from: "member", member: "dport" },
    },
    ...text<ExecEvent>(
      "ssh",
      "`SSH_CONNECTION` from the new environment (`client port server port`), up to 95 bytes; empty when unset.",
      (ev) => ev.ssh,
    ),
    ...text<ExecEvent>(
      "ld_preload",
      "`LD_PRELOAD` from the new environment, up to 127 bytes; empty when unset.",
      (ev) => ev.ldPreload,
    ),
    flagField<ExecEvent>(
      "env_truncated",
      ds_flags.DS_F_ENV_TRUNCATED,
      "The environment had more variables than the agent scans (128): `ssh` and `ld_preload` may be missing.",
    ),
    {
      key: "path_truncated",
      type: "boolean",
      doc: "`cwd` or `exe` was deeper than the agent walks; it starts with `…`.",
      get: (ev) => ev.pathTruncated,
      wire: {
        from: "flags",
        mask: ds_flags.DS_F_CWD_TRUNCATED | ds_flags.DS_F_EXE_TRUNCATED | ds_flags.DS_F_PEXE_TRUNCATED,
      },
    },
  ],
  heap: [
    {
      key: "slot1_data",
      type: "string",
      doc: "What slot 1 held when the serializer read it (the business level's mark: comm).",
      get: (ev) => slot1Data(ev, 64),
      wire: { from: "level0Observed" },
    },
    ...heapCommon<ExecEvent>(),
    {
      key: "clobbered",
      type: "boolean",
      doc: "With --guard: another owner took slot 1 while it was held.",
      get: (ev) => ev.clobbered,
      wire: { from: "flags", mask: ds_flags.DS_F_CLOBBERED },
    },
    {
      key: "parent_exe",
      type: "string",
      doc: "The parent's executable, built by the third level (present with --mode nest3).",
      optional: true,
      get: (ev) => (ev.pexe !== "" ? ev.pexe : undefined),
      wire: { from: "string", name: "pexe", ifPresent: true },
    },
    {
      key: "levels",
      type: "object[]",
      doc: "Each nesting level's expected and observed slot data (present when there is damage to show, or the mode is not dual).",
      optional: true,
      get: (ev) => (ev.corrupt || ev.clobbered || ev.mode !== "dual" ? ev.levels.map(levelJson) : undefined),
      wire: { from: "absent", unlessFlags: ds_flags.DS_F_CORRUPT | ds_flags.DS_F_CLOBBERED, dualOnly: true },
    },
  ],
};

export const EXIT_SCHEMA: EventSchema<ExitEvent> = {
  event: "exit",
  doc: "A process ended: its last thread exited (sched_process_exit), whichever thread that was (the main one may leave first); with --events exit.",
  fields: [
    ...common<ExitEvent>(),
    ...text<ExitEvent>(
      "exe",
      "The process's executable, absolute. Empty on kernels before 6.16, which release the process's memory (and with it the executable) before this tracepoint.",
      (ev) => ev.exe,
    ),
    ...exeFlags<ExitEvent>(),
    flagField<ExitEvent>(
      "exe_unreachable",
      ds_flags.DS_F_EXE_UNREACHABLE,
      "The executable is not under the process's root (a chrooted process running a file from outside it): `exe` is the mount namespace's view. Not set for a memfd.",
    ),
    flagField<ExitEvent>(
      "truncated",
      ds_flags.DS_F_EXE_TRUNCATED,
      "`exe` was cut to fit its buffer (a cut path ends in `…`), as a syscall record's `truncated`.",
    ),
    {
      key: "exit_code",
      type: "integer",
      doc: "Exit status (0-255) when the process exited, else 0.",
      get: (ev) => (ev.exitCode >> 8) & 0xff,
      wire: { from: "member", member: "exit_code", shift: 8, mask: 0xff },
    },
    {
      key: "signal",
      type: "integer",
      doc: "Signal that terminated the process, else 0.",
      get: (ev) => ev.exitCode & 0x7f,
      wire: { from: "member", member: "exit_code", mask: 0x7f },
    },
    {
      key: "core_dumped",
      type: "boolean",
      doc: "The terminating signal dumped core.",
      get: (ev) => (ev.exitCode & 0x80) !== 0,
      wire: { from: "member", member: "exit_code", mask: 0x80 },
    },
    {
      key: "runtime_ns",
      type: "string",
      doc: "Time from the process's start to its exit, in ns.",
      get: (ev) => ev.runtimeNs.toString(),
      wire: { from: "member", member: "runtime_ns" },
    },
  ],
  heap: [
    {
      key: "slot1_data",
      type: "string",
      doc: "What slot 1 held when the serializer read it (comm).",
      get: (ev) => slot1Data(ev, 64),
      wire: { from: "cstr", name: "comm" },
    },
    ...heapCommon<ExitEvent>(),
  ],
};

/** The in-band record for events the kernel or the agent could not deliver. */
export interface LostRecord {
  /** The CPU whose events were lost (for the ring buffer: where the reservation failed). */
  cpu: number;
  /** How many events, since the previous lost record for this CPU. */
  lost: number;
  /** Wall-clock time the agent noticed, in ns since the epoch. */
  wallNs: bigint;
}

export const LOST_SCHEMA: EventSchema<LostRecord> = {
  event: "lost",
  doc: "Events went missing here: the kernel could not hand them over (a full buffer). Written where the agent noticed, in order with the events around it.",
  fields: [
    { key: "schema", type: "integer", doc: "Schema version of this line.", get: () => SCHEMA_VERSION },
    { key: "host", type: "string", doc: "Host name of the machine.", get: (_, c) => c.host },
    { key: "event", type: "string", doc: "`lost`.", get: () => "lost" },
    { key: "time", type: "string", doc: "When the agent noticed, RFC 3339 UTC.", get: (r) => rfc3339Nano(r.wallNs) },
    { key: "cpu", type: "integer", doc: "CPU whose events were lost.", get: (r) => r.cpu },
    { key: "lost", type: "integer", doc: "How many, since the previous lost record for this CPU.", get: (r) => r.lost },
  ],
  heap: [],
};

/** Builds the JSON object for one event from its schema (`heap` only when the schema has one). */
export function jsonObject<E>(schema: EventSchema<E>, ev: E, ctx: RenderContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of schema.fields) {
    const v = f.get(ev, ctx);
    if (v !== undefined) out[f.key] = v;
  }
  if (schema.heap.length === 0) return out;
  const heap: Record<string, unknown> = {};
  for (const f of schema.heap) {
    const v = f.get(ev, ctx);
    if (v !== undefined) heap[f.key] = v;
  }
  out.heap = heap;
  return out;
}
