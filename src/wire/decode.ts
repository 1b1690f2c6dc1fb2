/**
 * Decodes one record from the bytes the kernel handed over. Those bytes are
 * untrusted: every length and offset is checked against the sample before it
 * is used, and anything out of range makes the record malformed (counted by the
 * caller), never an exception or a read past the sample.
 *
 * Two steps: decodeRecord() reads any record type generically, from the event
 * table (src/wire/events.ts) and the generated layout: the header, every scalar
 * member, every string; decodeEvent() then shapes an exec-path record into the
 * ExecEvent the renderers and the lab use.
 */
import { isAscii, isUtf8 } from "node:buffer";
import { type EventSpec, nestedStruct, SPEC_BY_TYPE, type StructLayout } from "./events.ts";
import { ds_exec, ds_flags, ds_header, ds_level, ds_wire_const } from "./layout.gen.ts";
import {
  byValue,
  Encoding,
  type EncodingName,
  type EventName,
  Mode,
  type ModeName,
  Transport,
  type TransportName,
} from "./names.ts";

export interface LevelView {
  readonly slot: number | null; // null: no slot (the ring buffer transport's serializer)
  readonly intact: boolean;
  readonly tagExpected: bigint;
  readonly tagObserved: bigint;
  readonly dataExpected: Uint8Array;
  readonly dataObserved: Uint8Array;
}

/** What every event carries, whatever its type. */
export interface EventBase {
  type: EventName;
  ktimeNs: bigint;
  seq: bigint;
  tag: bigint;
  cpu: number;
  size: number;
  encoding: EncodingName;
  mode: ModeName;
  slots: number;
  transport: TransportName;
  guard: boolean;
  pid: number;
  tid: number;
  ppid: number;
  uid: number;
  gid: number;
  cgroupId: bigint;
  /** struct ds_common: effective ids, process group, session, audit ids, namespaces. */
  euid: number;
  egid: number;
  pgid: number;
  sid: number;
  sessionid: number;
  auid: number;
  pidnsId: number;
  mntnsId: number;
  /** "<start_ns>:<pid>:<exec_seq>": this process image (see struct ds_common). */
  execId: string;
  parentExecId: string;
  comm: string;
  nodename: string;
  pidTree: string;
  slot1Intact: boolean;
  corrupt: boolean;
  /**
   * The exact bytes of each string that is not valid UTF-8 (its text has
   * `\xNN` escapes in their place, and `\\` for a backslash); null when every
   * string was valid, which is nearly always.
   */
  raw: Record<string, Uint8Array> | null;
}

/** A process exited (type "exit"). */
export interface ExitEvent extends EventBase {
  type: "exit";
  /** The wait status: exit status << 8 | terminating signal, 0x80 when it dumped core. */
  exitCode: number;
  runtimeNs: bigint;
  /** The executable, absolute; empty before Linux 6.16 (the task has released its memory by the tracepoint). */
  exe: string;
  flags: number;
}

/** The event types whose records are DS_RECORD_HEAD records (bpf/dual_slot.h). */
export type RecordEventName = Exclude<EventName, ExecEvent["type"] | "exit">;

/**
 * A DS_RECORD_HEAD record (fork, setsid, prctl, ptrace, ...): the common
 * fields, the actor's exe, the syscall's result, and the type's own members
 * as the decoder read them (`<type>.<member>`, e.g. `ptrace.request`) with
 * its own strings by name. The schema (src/render/schema.ts) says which are
 * shown and how.
 */
export interface RecordEvent extends EventBase {
  type: RecordEventName;
  exe: string;
  res: bigint;
  syscall: number;
  flags: number;
  fields: Record<string, number | bigint>;
  texts: Record<string, string>;
}

export type AgentEvent = ExecEvent | ExitEvent | RecordEvent;

/** exec, flood and usermode_helper: the records with argv, paths and the heap's levels. */
export function isExecEvent(ev: AgentEvent): ev is ExecEvent {
  return "levels" in ev;
}

export interface ExecEvent extends EventBase {
  type: "exec" | "flood" | "usermode_helper";
  /** 0, or the error of an execve that failed (its filename and args are then those the call gave). */
  res: number;
  /** What the exec ran in (struct ds_exec_extra): terminal, fds 0 and 1, a socket among fds 0-2, environment. */
  tty: string;
  stdin: string;
  stdout: string;
  saFamily: number;
  sip: string;
  sport: number;
  dip: string;
  dport: number;
  ssh: string;
  ldPreload: string;
  exeDev: number;
  exeIno: bigint;
  filename: string;
  filenameTruncated: boolean;
  args: string[];
  argsTotal: number;
  cwd: string;
  exe: string;
  pexe: string;
  flags: number;
  argsTruncated: boolean;
  pathTruncated: boolean;
  clobbered: boolean;
  /** Levels that ran: [business, serializer, enrichment?]. */
  levels: LevelView[];
}

/**
 * Splits the NUL-separated argv area. Every argument ends in a NUL except a
 * last one cut short, so "" is no arguments at all and "\0" is one empty
 * argument: argc 0 and argv [""] must not look alike (CVE-2021-4034).
 */
export function splitArgs(raw: Uint8Array, maxArgs: number): { args: string[]; cut: boolean; invalid: boolean } {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const args: string[] = [];
  if (buf.length === 0) return { args, cut: false, invalid: false };
  // Checked once for the whole area: NUL separators are valid UTF-8.
  const invalid = !isAscii(buf) && !isUtf8(buf);
  const end = buf[buf.length - 1] === 0 ? buf.length - 1 : buf.length;
  let start = 0;
  for (;;) {
    let nul = buf.indexOf(0, start);
    if (nul < 0 || nul > end) nul = end;
    if (args.length === maxArgs) return { args, cut: true, invalid };
    args.push(invalid ? escapeInvalidUtf8(raw.subarray(start, nul)) : utf8(buf, start, nul));
    if (nul >= end) return { args, cut: false, invalid };
    start = nul + 1;
  }
}

/** ASCII, by far the common case, skips the UTF-8 decoder. */
function utf8(buf: Buffer, start: number, end: number): string {
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return buf.toString("utf8", start, end);
  return buf.toString("latin1", start, end);
}

export interface DecodeOptions {
  maxArgs: number;
}

export type Decoded = { ok: true; event: AgentEvent } | { ok: false; reason: string };

/** The header as every record carries it. */
export interface Header {
  tag: bigint;
  ktimeNs: bigint;
  seq: bigint;
  size: number;
  cpu: number;
  encoding: EncodingName;
  mode: ModeName;
  slots: number;
  transport: TransportName;
  guard: boolean;
}

/**
 * One record, read generically. `fields` holds every scalar member of the
 * record's struct by its C name (u64 as bigint), and every scalar of a nested
 * struct member as `<member>.<name>` (`common.euid`; the header is `header`);
 * `strings` every string, as a view into the sample: borrowed, valid only as
 * long as the sample is.
 */
export interface WireRecord {
  spec: EventSpec;
  header: Header;
  fields: Record<string, number | bigint>;
  strings: Record<string, Uint8Array>;
  /** The sample, for members that are not scalars (arrays, nested structs). */
  view: DataView;
  bytes: Uint8Array;
}

export type DecodedRecord = { ok: true; record: WireRecord } | { ok: false; reason: string };

const ENCODING_NAMES = byValue(Encoding);
const MODE_NAMES = byValue(Mode);
const TRANSPORT_NAMES = byValue(Transport);
const H = ds_header.off;

const SCALAR = /^[us](8|16|32|64)$/;

/**
 * Scalar members of each struct, nested structs' flattened with dotted names
 * (`common.euid`, `privilege_escalation.old.uid`; the header aside),
 * computed once per spec: the decoder runs per event.
 */
const scalarCache = new Map<StructLayout, Array<[string, number, string]>>();
function scalars(s: StructLayout): Array<[string, number, string]> {
  let out = scalarCache.get(s);
  if (out === undefined) {
    out = [];
    const walk = (st: StructLayout, prefix: string, base: number) => {
      for (const [name, k] of Object.entries(st.kind)) {
        if (SCALAR.test(k)) out!.push([prefix + name, base + st.off[name]!, k]);
        const inner = prefix === "" && name === "hdr" ? undefined : nestedStruct(st, name);
        if (inner !== undefined) walk(inner, `${prefix}${name}.`, base + st.off[name]!);
      }
    };
    walk(s, "", 0);
    scalarCache.set(s, out);
  }
  return out;
}

function readScalar(dv: DataView, off: number, kind: string): number | bigint {
  switch (kind) {
    case "u8":
      return dv.getUint8(off);
    case "s8":
      return dv.getInt8(off);
    case "u16":
      return dv.getUint16(off, true);
    case "s16":
      return dv.getInt16(off, true);
    case "u32":
      return dv.getUint32(off, true);
    case "s32":
      return dv.getInt32(off, true);
    case "u64":
      return dv.getBigUint64(off, true);
    default:
      return dv.getBigInt64(off, true);
  }
}

/**
 * Where a checked record's strings lie: filled by checkRecord(), reused from
 * record to record (the per-event paths allocate nothing for it).
 */
export interface RecordSpans {
  /** hdr.size: the record's own length (the sample may be longer: perf pads it). */
  size: number;
  /** str[i]'s offset and length; index order of spec.strings. */
  readonly off: Int32Array;
  readonly len: Int32Array;
}

export function newSpans(): RecordSpans {
  return { size: 0, off: new Int32Array(64), len: new Int32Array(64) };
}

const SPANS = newSpans();

/** Little-endian reads straight from the bytes: no DataView per record. */
export function u16At(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

export function u32At(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/**
 * Whether the non-empty strings lie one after another (each starts at or past
 * the end of the one before): then none overlaps. The serializers write them
 * in that order, so one pass settles the common case; any other layout gets
 * the pairwise check.
 */
function inOrder(offs: Int32Array, lens: Int32Array, n: number): boolean {
  let end = 0;
  for (let i = 0; i < n; i++) {
    const len = lens[i]!;
    if (len === 0) continue;
    if (offs[i]! < end) return false;
    end = offs[i]! + len;
  }
  return true;
}

/**
 * Every check decodeRecord() makes, without building anything: the header's
 * version, type and enums, the sizes, each string descriptor against the
 * record (and, fixed, its array; compact, no overlaps). Returns the record's
 * spec with `spans` filled, or why the record is malformed.
 */
export function checkRecord(bytes: Uint8Array, spans: RecordSpans): EventSpec | string {
  if (bytes.length < ds_header.size) return `short sample: ${bytes.length} bytes`;
  const version = bytes[H.version]!;
  if (version !== ds_wire_const.DS_WIRE_VERSION) return `unknown wire version ${version}`;
  const spec = SPEC_BY_TYPE[u16At(bytes, H.type)];
  const encoding = ENCODING_NAMES[bytes[H.encoding]!];
  if (!spec || !encoding || !MODE_NAMES[bytes[H.mode]!] || !TRANSPORT_NAMES[bytes[H.transport]!])
    return "unknown type, encoding, mode or transport";
  const st = spec.struct;
  if (bytes.length < st.size) return `short sample: ${bytes.length} bytes`;
  const size = u32At(bytes, H.size);
  if (size < st.size || size > bytes.length || size > ds_wire_const.DS_SLOT_SIZE)
    return `size ${size} outside sample of ${bytes.length} or slot of ${ds_wire_const.DS_SLOT_SIZE}`;
  const fixed = encoding === "fixed";
  if (fixed && size !== spec.fixed.size) return `fixed event of ${size} bytes`;

  // Descriptors: len << 16 | offset. Check all before reading any.
  const n = spec.strings.length;
  const offs = spans.off;
  const lens = spans.len;
  for (let i = 0; i < n; i++) {
    const d = u32At(bytes, st.off.str! + 4 * i);
    const len = d >>> 16;
    const off = d & 0xffff;
    offs[i] = off;
    lens[i] = len;
    if (len === 0) continue;
    if (off < st.size || off + len > size) return `string ${i} [${off}+${len}] outside event of ${size}`;
    if (fixed) {
      const name = spec.strings[i]!;
      if (off !== spec.fixed.off[name] || len > spec.fixed.bytes[name]!) return `fixed string ${i} not in its array`;
    }
  }
  if (!fixed && !inOrder(offs, lens, n)) {
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        if (lens[i]! > 0 && lens[j]! > 0 && offs[i]! < offs[j]! + lens[j]! && offs[j]! < offs[i]! + lens[i]!) {
          return "overlapping strings";
        }
      }
    }
  }
  spans.size = size;
  return spec;
}

export function decodeRecord(bytes: Uint8Array): DecodedRecord {
  const checked = checkRecord(bytes, SPANS);
  if (typeof checked === "string") return { ok: false, reason: checked };
  const spec = checked;
  const st = spec.struct;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = SPANS.size;
  const n = spec.strings.length;
  const offs = SPANS.off;
  const lens = SPANS.len;
  const strings: Record<string, Uint8Array> = {};
  for (let i = 0; i < n; i++) strings[spec.strings[i]!] = bytes.subarray(offs[i]!, offs[i]! + lens[i]!);
  const fields: Record<string, number | bigint> = {};
  for (const [name, off, kind] of scalars(st)) fields[name] = readScalar(dv, off, kind);
  return {
    ok: true,
    record: {
      spec,
      header: {
        tag: dv.getBigUint64(H.tag, true),
        ktimeNs: dv.getBigUint64(H.ktime_ns, true),
        seq: dv.getBigUint64(H.seq, true),
        size,
        cpu: dv.getUint32(H.cpu, true),
        encoding: ENCODING_NAMES[bytes[H.encoding]!]!,
        mode: MODE_NAMES[bytes[H.mode]!]!,
        slots: dv.getUint8(H.slots),
        transport: TRANSPORT_NAMES[bytes[H.transport]!]!,
        guard: dv.getUint8(H.guard) !== 0,
      },
      fields,
      strings,
      view: dv,
      bytes,
    },
  };
}

const F = ds_flags;
const L = ds_level.off;
const LEVELS = ds_exec.count.level;
const SLOT_NONE = ds_wire_const.DS_SLOT_NONE;

/**
 * A string's text. Bytes that are not valid UTF-8 are not replaced by U+FFFD
 * (that would lose them): they become `\xNN` (and a backslash `\\`, so the
 * escape is unambiguous), and the exact bytes are kept in `raw[name]`.
 */
function text(b: Uint8Array | undefined, name: string, ev: { raw: Record<string, Uint8Array> | null }): string {
  if (b === undefined || b.length === 0) return "";
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (isAscii(buf) || isUtf8(buf)) return utf8(buf, 0, b.length);
  ev.raw ??= {};
  ev.raw[name] = b.slice();
  return escapeInvalidUtf8(b);
}

/** Length of the valid UTF-8 sequence at b[i] (1 for ASCII), or 0 when there is none before `end`. */
export function seqLen(b: Uint8Array, i: number, end = b.length): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const n = c >= 0xf5 ? 0 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (n === 0 || i + n > end) return 0;
  for (let k = 1; k < n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return 0;
  const c1 = b[i + 1]!;
  if (n === 3 && ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f))) return 0; // overlong, surrogate
  if (n === 4 && ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f))) return 0; // overlong, past U+10FFFF
  return n;
}

/** Valid UTF-8 sequences as they are, every other byte as \xNN, a backslash as \\. */
export function escapeInvalidUtf8(b: Uint8Array): string {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  let out = "";
  let run = 0;
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const n = seqLen(b, i);
    if (n > 0 && c !== 0x5c) {
      i += n;
      continue;
    }
    out += buf.toString("utf8", run, i) + (c === 0x5c ? "\\\\" : `\\x${c.toString(16).padStart(2, "0")}`);
    i++;
    run = i;
  }
  return out + buf.toString("utf8", run, b.length);
}

export function decodeEvent(bytes: Uint8Array, opts: DecodeOptions): Decoded {
  const d = decodeRecord(bytes);
  if (!d.ok) return d;
  const r = d.record;
  const st = r.spec.struct;
  const event = r.spec.name === "exit" ? exitEvent(r) : st === ds_exec ? execEvent(r, bytes, opts) : recordEvent(r);
  return { ok: true, event };
}

/** The members every record has, in the shape every event has. */
function base(r: WireRecord, type: EventName): EventBase {
  const { header: h, fields: f } = r;
  const flags = f.flags as number;
  const ev: EventBase = {
    type,
    ktimeNs: h.ktimeNs,
    seq: h.seq,
    tag: h.tag,
    cpu: h.cpu,
    size: h.size,
    encoding: h.encoding,
    mode: h.mode,
    slots: h.slots,
    transport: h.transport,
    guard: h.guard,
    pid: f.pid as number,
    tid: f.tid as number,
    ppid: f.ppid as number,
    uid: f.uid as number,
    gid: f.gid as number,
    cgroupId: f.cgroup_id as bigint,
    euid: f["common.euid"] as number,
    egid: f["common.egid"] as number,
    pgid: f["common.pgid"] as number,
    sid: f["common.sid"] as number,
    sessionid: f["common.sessionid"] as number,
    auid: f["common.auid"] as number,
    pidnsId: f["common.pidns_id"] as number,
    mntnsId: f["common.mntns_id"] as number,
    execId: `${f["common.start_ns"]}:${f.pid}:${f["common.exec_seq"]}`,
    parentExecId: `${f["common.pstart_ns"]}:${f.ppid}:${f["common.pexec_seq"]}`,
    comm: "",
    nodename: "",
    pidTree: "",
    slot1Intact: (flags & F.DS_F_SLOT1_INTACT) !== 0,
    corrupt: (flags & F.DS_F_CORRUPT) !== 0,
    raw: null,
  };
  ev.comm = text(r.strings.comm, "comm", ev);
  ev.nodename = text(r.strings.nodename, "nodename", ev);
  ev.pidTree = text(r.strings.pid_tree, "pid_tree", ev);
  return ev;
}

function exitEvent(r: WireRecord): ExitEvent {
  const b = base(r, "exit");
  // Before the spread below: text() records invalid bytes in b.raw.
  const exe = text(r.strings.exe, "exe", b);
  return {
    ...b,
    type: "exit",
    exitCode: r.fields.exit_code as number,
    runtimeNs: r.fields.runtime_ns as bigint,
    exe,
    flags: r.fields.flags as number,
  };
}

/** The common strings every DS_RECORD_HEAD record has; the rest are the type's own. */
const RECORD_COMMON_STRINGS = new Set(["comm", "nodename", "pid_tree", "exe"]);

function recordEvent(r: WireRecord): RecordEvent {
  const b = base(r, r.spec.name);
  const texts: Record<string, string> = {};
  for (const name of r.spec.strings) if (!RECORD_COMMON_STRINGS.has(name)) texts[name] = text(r.strings[name], name, b);
  // Before the spread below: text() records invalid bytes in b.raw.
  const exe = text(r.strings.exe, "exe", b);
  return {
    ...b,
    type: r.spec.name as RecordEventName,
    exe,
    res: r.fields.res as bigint,
    syscall: r.fields.syscall as number,
    flags: r.fields.flags as number,
    fields: r.fields,
    texts,
  };
}

function execEvent(r: WireRecord, bytes: Uint8Array, opts: DecodeOptions): ExecEvent {
  const { spec, fields: f, strings: s, view: dv } = r;
  const flags = f.flags as number;
  // Level data is copied (the sample is only borrowed), with slice(): touching
  // .buffer of a small typed array makes the engine materialize it, and that
  // was the single most expensive step of decoding.
  const levels: LevelView[] = [];
  for (let i = 0; i < LEVELS; i++) {
    const at = ds_exec.off.level + i * ds_level.size;
    if (bytes[at + L.used] === 0) continue;
    const slot = bytes[at + L.slot]!;
    const de = at + L.data_expected;
    const dob = at + L.data_observed;
    levels.push({
      slot: slot === SLOT_NONE ? null : slot,
      intact: bytes[at + L.intact] !== 0,
      tagExpected: dv.getBigUint64(at + L.tag_expected, true),
      tagObserved: dv.getBigUint64(at + L.tag_observed, true),
      dataExpected: bytes.slice(de, de + 16),
      dataObserved: bytes.slice(dob, dob + 16),
    });
  }
  const b = base(r, spec.name);
  const { args, cut, invalid } = splitArgs(s.args!, opts.maxArgs);
  if (invalid) {
    b.raw ??= {};
    b.raw.args = s.args!.slice();
  }
  // Before the spread below: text() records invalid bytes in b.raw, which may still be null.
  const filename = text(s.filename, "filename", b);
  const cwd = text(s.cwd, "cwd", b);
  const exe = text(s.exe, "exe", b);
  const pexe = text(s.pexe, "pexe", b);
  const tty = text(s.tty, "tty", b);
  const stdin = text(s.stdin, "stdin", b);
  const stdout = text(s.stdout, "stdout", b);
  const sip = text(s.sip, "sip", b);
  const dip = text(s.dip, "dip", b);
  const ssh = text(s.ssh, "ssh", b);
  const ldPreload = text(s.ld_preload, "ld_preload", b);
  return {
    ...b,
    type: spec.name === "flood" || spec.name === "usermode_helper" ? spec.name : "exec",
    res: f.res as number,
    tty,
    stdin,
    stdout,
    saFamily: f.sa_family as number,
    sip,
    sport: f.sport as number,
    dip,
    dport: f.dport as number,
    ssh,
    ldPreload,
    exeDev: f.exe_dev as number,
    exeIno: f.exe_ino as bigint,
    argsTotal: f.args_total as number,
    filename,
    filenameTruncated: (flags & F.DS_F_FILENAME_TRUNCATED) !== 0,
    args,
    cwd,
    exe,
    pexe,
    flags,
    argsTruncated: cut || (flags & F.DS_F_ARGS_TRUNCATED) !== 0,
    pathTruncated: (flags & (F.DS_F_CWD_TRUNCATED | F.DS_F_EXE_TRUNCATED | F.DS_F_PEXE_TRUNCATED)) !== 0,
    clobbered: (flags & F.DS_F_CLOBBERED) !== 0,
    levels,
  };
}
