/**
 * Synthetic ds_exec / ds_exec_fixed events, written byte by byte at the offsets
 * of the generated layout (src/wire/layout.gen.ts, from the BTF of
 * bpf/dual_slot.h, through test/helpers/layout.ts). Defaults mimic what
 * serialize_event() in bpf/serialize.bpf.h produces for an intact dual-slot
 * perf event; every field, string, descriptor, flag and level can be
 * overridden, including to values the kernel would never write.
 */
import {
  Common,
  Encoding,
  EventType,
  Exec,
  ExecFixed,
  Flags,
  Header,
  LEVELS,
  Level,
  Mode,
  SLOT_NONE,
  STR_NR,
  Str,
  Transport,
  WIRE_VERSION,
} from "./layout.ts";

export type StrName = keyof typeof Str;
export const STR_NAMES = Object.keys(Str) as StrName[];

export type Bytes = string | Uint8Array | number[];

export interface LevelSpec {
  /** Slot index, or SLOT_NONE (0xff) for "no slot". */
  slot?: number;
  /** Raw `used` byte; a level with used=0 is skipped by the decoder. Default 1. */
  used?: number;
  /** Raw `intact` byte. Default 1. */
  intact?: number;
  tagExpected?: bigint;
  tagObserved?: bigint;
  /** Up to 16 bytes (zero padded, longer input is cut). */
  dataExpected?: Bytes;
  dataObserved?: Bytes;
}

export interface SynthOptions {
  encoding?: "compact" | "fixed";
  /** struct ds_exec_extra's strings; empty by default. */
  tty?: Bytes;
  stdin?: Bytes;
  stdout?: Bytes;
  sip?: Bytes;
  dip?: Bytes;
  ssh?: Bytes;
  ldPreload?: Bytes;
  /** Raw header fields; defaults are the valid values for the chosen encoding. hdr.tag defaults to BUSINESS_TAG + 1. */
  tag?: bigint;
  ktimeNs?: bigint;
  seq?: bigint;
  /** Raw hdr.size; default: the real size of the built event. */
  size?: number;
  type?: number;
  version?: number;
  /** Raw hdr.encoding byte (default follows `encoding`). */
  encodingByte?: number;
  cpu?: number;
  mode?: number;
  slots?: number;
  transport?: number;
  guard?: number;

  pid?: number;
  tid?: number;
  ppid?: number;
  uid?: number;
  gid?: number;
  flags?: number;
  cgroupId?: bigint;
  mntnsId?: number;
  /** struct ds_common. */
  euid?: number;
  egid?: number;
  pgid?: number;
  sid?: number;
  sessionid?: number;
  auid?: number;
  pidnsId?: number;
  startNs?: bigint;
  execSeq?: bigint;
  pstartNs?: bigint;
  pexecSeq?: bigint;
  argsTotal?: number;
  /** The exec's result and context scalars (struct ds_exec): 0 by default. */
  res?: number;
  exeDev?: number;
  exeIno?: bigint;
  saFamily?: number;
  sport?: number;
  dport?: number;
  mark?: Bytes;

  /** Up to LEVELS levels; missing ones are zeroed (used=0). Default: business + serializer. */
  levels?: LevelSpec[];

  comm?: Bytes;
  filename?: Bytes;
  /** argv as a list: joined with NUL, with a trailing NUL (as in process memory). */
  args?: string[];
  /** argv area raw bytes; wins over `args`. */
  argsRaw?: Bytes;
  cwd?: Bytes;
  exe?: Bytes;
  pexe?: Bytes;
  nodename?: Bytes;
  pidTree?: Bytes;

  /** Raw descriptor overrides (len << 16 | offset), applied after layout. */
  desc?: Partial<Record<StrName, number>>;
  /** Sample bytes past the event (perf pads samples); filled with `padByte`. */
  trailing?: number;
  padByte?: number;
  /** Total sample length override: the buffer is cut or zero-extended to it after building. */
  sampleLength?: number;
}

const enc = new TextEncoder();

/** The business level's tag in default events; the serializer's is this + 1. */
export const BUSINESS_TAG = 0x1122334455667788n;

export function bytesOf(b: Bytes | undefined): Uint8Array {
  if (b === undefined) return new Uint8Array(0);
  if (typeof b === "string") return enc.encode(b);
  return b instanceof Uint8Array ? b : Uint8Array.from(b);
}

export function desc(len: number, off: number): number {
  return ((len << 16) | (off & 0xffff)) >>> 0;
}

export function argsBytes(args: readonly string[]): Uint8Array {
  return args.length === 0 ? new Uint8Array(0) : enc.encode(args.map((a) => `${a}\0`).join(""));
}

function pad16(b: Bytes | undefined): Uint8Array {
  const out = new Uint8Array(16);
  const src = bytesOf(b);
  out.set(src.subarray(0, 16));
  return out;
}

/** The serializer's mark as the kernel builds it: "s0:" + the first 13 bytes of comm. */
export function markFor(comm: Uint8Array): Uint8Array {
  const m = new Uint8Array(16);
  m.set(enc.encode("s0:"));
  m.set(comm.subarray(0, 13), 3);
  return m;
}

export function defaultLevels(comm: Uint8Array, tag: bigint, transport: number): LevelSpec[] {
  const c = pad16(comm);
  const mark = markFor(comm);
  return [
    { slot: 1, used: 1, intact: 1, tagExpected: tag, tagObserved: tag, dataExpected: c, dataObserved: c },
    {
      slot: transport === Transport.ringbuf ? SLOT_NONE : 0,
      used: 1,
      intact: 1,
      tagExpected: tag + 1n,
      tagObserved: tag + 1n,
      dataExpected: mark,
      dataObserved: mark,
    },
  ];
}

/** The string bytes each descriptor index gets, in Str order. */
export function stringsOf(o: SynthOptions): Uint8Array[] {
  const comm = bytesOf(o.comm ?? "ls");
  const args = o.argsRaw !== undefined ? bytesOf(o.argsRaw) : argsBytes(o.args ?? ["ls", "-la"]);
  const out: Uint8Array[] = new Array(STR_NR);
  out[Str.comm] = comm;
  out[Str.filename] = bytesOf(o.filename ?? "/usr/bin/ls");
  out[Str.args] = args;
  out[Str.cwd] = bytesOf(o.cwd ?? "/home/user");
  out[Str.exe] = bytesOf(o.exe ?? "/usr/bin/ls");
  out[Str.pexe] = bytesOf(o.pexe);
  // Empty by default, as pexe: tests that count bytes name them when they want them.
  out[Str.nodename] = bytesOf(o.nodename);
  out[Str.pid_tree] = bytesOf(o.pidTree);
  out[Str.tty] = bytesOf(o.tty);
  out[Str.stdin] = bytesOf(o.stdin);
  out[Str.stdout] = bytesOf(o.stdout);
  out[Str.sip] = bytesOf(o.sip);
  out[Str.dip] = bytesOf(o.dip);
  out[Str.ssh] = bytesOf(o.ssh);
  out[Str.ld_preload] = bytesOf(o.ldPreload);
  return out;
}

/** Builds one event. Strings that do not fit are an error of the test, not silently cut. */
export function synthEvent(o: SynthOptions = {}): Uint8Array {
  const fixed = o.encoding === "fixed";
  const strs = stringsOf(o);
  const fixedSlots = STR_NAMES.map((n) => ExecFixed[n]);
  let size: number;
  const descs: number[] = [];
  if (fixed) {
    size = ExecFixed.size;
    strs.forEach((s, i) => {
      const [off, cap] = fixedSlots[i]!;
      if (s.length > cap)
        throw new Error(`synth: fixed string ${i} of ${s.length} bytes exceeds its ${cap}-byte array`);
      descs.push(desc(s.length, off));
    });
  } else {
    let pos = Exec.size;
    for (const s of strs) {
      if (s.length > 0xffff) throw new Error(`synth: string of ${s.length} bytes does not fit a 16-bit length`);
      descs.push(desc(s.length, pos));
      pos += s.length;
    }
    size = pos;
  }
  const realSize = size;
  const trailing = o.trailing ?? 0;
  let buf = new Uint8Array(realSize + trailing);
  if (trailing > 0) buf.fill(o.padByte ?? 0, realSize);
  const dv = new DataView(buf.buffer);

  const transport = o.transport ?? Transport.perf;
  // The kernel writes the serializer's own tag (business tag + 1) into the header.
  dv.setBigUint64(Header.tag, o.tag ?? BUSINESS_TAG + 1n, true);
  dv.setBigUint64(Header.ktime_ns, o.ktimeNs ?? 123_456_789_000n, true);
  dv.setBigUint64(Header.seq, o.seq ?? 42n, true);
  dv.setUint32(Header.size_, o.size ?? realSize, true);
  dv.setUint16(Header.type, o.type ?? EventType.exec, true);
  dv.setUint8(Header.version, o.version ?? WIRE_VERSION);
  dv.setUint8(Header.encoding, o.encodingByte ?? (fixed ? Encoding.fixed : Encoding.compact));
  dv.setUint32(Header.cpu, o.cpu ?? 3, true);
  dv.setUint8(Header.mode, o.mode ?? Mode.dual);
  dv.setUint8(Header.slots, o.slots ?? 2);
  dv.setUint8(Header.transport, transport);
  dv.setUint8(Header.guard, o.guard ?? 0);

  dv.setUint32(Exec.pid, o.pid ?? 18201, true);
  dv.setUint32(Exec.tid, o.tid ?? o.pid ?? 18201, true);
  dv.setUint32(Exec.ppid, o.ppid ?? 18100, true);
  dv.setUint32(Exec.uid, o.uid ?? 1000, true);
  dv.setUint32(Exec.gid, o.gid ?? 1000, true);
  dv.setUint32(Exec.flags, o.flags ?? Flags.slot1Intact, true);
  dv.setBigUint64(Exec.cgroup_id, o.cgroupId ?? 4242n, true);
  dv.setUint32(Common.mntns_id, o.mntnsId ?? 4026531841, true);
  dv.setUint32(Common.euid, o.euid ?? o.uid ?? 1000, true);
  dv.setUint32(Common.egid, o.egid ?? o.gid ?? 1000, true);
  dv.setUint32(Common.pgid, o.pgid ?? o.pid ?? 18201, true);
  dv.setUint32(Common.sid, o.sid ?? 18000, true);
  dv.setUint32(Common.sessionid, o.sessionid ?? 3, true);
  dv.setUint32(Common.auid, o.auid ?? o.uid ?? 1000, true);
  dv.setUint32(Common.pidns_id, o.pidnsId ?? 4026531836, true);
  dv.setBigUint64(Common.start_ns, o.startNs ?? 123_000_000_000n, true);
  dv.setBigUint64(Common.exec_seq, o.execSeq ?? 7n, true);
  dv.setBigUint64(Common.pstart_ns, o.pstartNs ?? 100_000_000_000n, true);
  dv.setBigUint64(Common.pexec_seq, o.pexecSeq ?? 6n, true);
  dv.setUint32(Exec.args_total, o.argsTotal ?? strs[Str.args]!.length, true);
  dv.setInt32(Exec.res, o.res ?? 0, true);
  dv.setUint32(Exec.exe_dev, o.exeDev ?? 0, true);
  dv.setBigUint64(Exec.exe_ino, o.exeIno ?? 0n, true);
  dv.setUint32(Exec.sa_family, o.saFamily ?? 0, true);
  dv.setUint32(Exec.sport, o.sport ?? 0, true);
  dv.setUint32(Exec.dport, o.dport ?? 0, true);
  buf.set(o.mark !== undefined ? pad16(o.mark) : markFor(strs[Str.comm]!), Exec.mark);

  const levels = o.levels ?? defaultLevels(strs[Str.comm]!, BUSINESS_TAG, transport);
  if (levels.length > LEVELS) throw new Error(`synth: ${levels.length} levels, at most ${LEVELS}`);
  levels.forEach((l, i) => {
    const base = Exec.level + i * Level.size;
    dv.setBigUint64(base + Level.tag_expected, l.tagExpected ?? 0n, true);
    dv.setBigUint64(base + Level.tag_observed, l.tagObserved ?? l.tagExpected ?? 0n, true);
    buf.set(pad16(l.dataExpected), base + Level.data_expected);
    buf.set(pad16(l.dataObserved ?? l.dataExpected), base + Level.data_observed);
    dv.setUint8(base + Level.slot, l.slot ?? i);
    dv.setUint8(base + Level.used, l.used ?? 1);
    dv.setUint8(base + Level.intact, l.intact ?? 1);
  });

  strs.forEach((s, i) => {
    const d = descs[i]!;
    if (s.length > 0) buf.set(s, d & 0xffff);
  });
  for (const name of STR_NAMES) {
    const i = Str[name];
    const d = o.desc?.[name] ?? descs[i]!;
    dv.setUint32(Exec.str + 4 * i, d >>> 0, true);
  }

  if (o.sampleLength !== undefined) {
    if (o.sampleLength <= buf.length) buf = buf.slice(0, o.sampleLength);
    else {
      const b = new Uint8Array(o.sampleLength);
      b.set(buf);
      buf = b;
    }
  }
  return buf;
}

/* Raw accessors for tests that patch an already built event. */

export function getU32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
}

export function setU32(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(off, v >>> 0, true);
}

export function setU8(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
}

export function setU16(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint16(off, v & 0xffff, true);
}

export function getDesc(b: Uint8Array, name: StrName): { len: number; off: number } {
  const d = getU32(b, Exec.str + 4 * Str[name]);
  return { len: d >>> 16, off: d & 0xffff };
}

export function setDesc(b: Uint8Array, name: StrName, len: number, off: number): void {
  setU32(b, Exec.str + 4 * Str[name], desc(len, off));
}

export function setHdrSize(b: Uint8Array, size: number): void {
  setU32(b, Header.size_, size);
}

/** Small deterministic PRNG (mulberry32) for fuzzing. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
