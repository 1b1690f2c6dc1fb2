/**
 * Decodes one event from the bytes the kernel handed over. Those bytes are
 * untrusted: every length and offset is checked against the sample before it
 * is used, and anything out of range makes the event malformed (counted by the
 * caller), never an exception or a read past the sample.
 */
import {
  Encoding,
  type EncodingName,
  EventType,
  Exec,
  ExecFixed,
  Flags,
  Header,
  LEVELS,
  Level,
  Mode,
  type ModeName,
  SD_EVENT_MAX,
  SLOT_NONE,
  STR_NR,
  Str,
  Transport,
  type TransportName,
  WIRE_VERSION,
} from "./layout.ts";

export interface LevelView {
  readonly slot: number | null; // null: no slot (the ring buffer transport's serializer)
  readonly intact: boolean;
  readonly tagExpected: bigint;
  readonly tagObserved: bigint;
  readonly dataExpected: Uint8Array;
  readonly dataObserved: Uint8Array;
}

export interface ExecEvent {
  type: "exec" | "flood";
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
  mntnsId: number;
  comm: string;
  filename: string;
  args: string[];
  argsTotal: number;
  cwd: string;
  exe: string;
  pexe: string;
  flags: number;
  argsTruncated: boolean;
  pathTruncated: boolean;
  slot1Intact: boolean;
  corrupt: boolean;
  clobbered: boolean;
  /** Levels that ran: [business, serializer, enrichment?]. */
  levels: LevelView[];
}

// Scratch for descriptor checks: decodeEvent runs to completion before it is reused.
const SPAN_OFF = new Int32Array(STR_NR);
const SPAN_LEN = new Int32Array(STR_NR);

export type Decoded = { ok: true; event: ExecEvent } | { ok: false; reason: string };

/** Value -> name, built once: the decoder runs per event. */
function names<T extends Record<string, number>>(table: T): Array<keyof T | undefined> {
  const out: Array<keyof T | undefined> = [];
  for (const k in table) out[table[k]!] = k;
  return out;
}
const TYPE_NAMES = names(EventType);
const ENCODING_NAMES = names(Encoding);
const MODE_NAMES = names(Mode);
const TRANSPORT_NAMES = names(Transport);

const FIXED_SLOTS: ReadonlyArray<readonly [number, number]> = [
  ExecFixed.comm,
  ExecFixed.filename,
  ExecFixed.args,
  ExecFixed.cwd,
  ExecFixed.exe,
  ExecFixed.pexe,
];

/**
 * Splits the NUL-separated argv area. Every argument ends in a NUL except a
 * last one cut short, so "" is no arguments at all and "\0" is one empty
 * argument: argc 0 and argv [""] must not look alike (CVE-2021-4034).
 */
export function splitArgs(raw: Uint8Array, maxArgs: number): { args: string[]; cut: boolean } {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const args: string[] = [];
  if (buf.length === 0) return { args, cut: false };
  const end = buf[buf.length - 1] === 0 ? buf.length - 1 : buf.length;
  let start = 0;
  for (;;) {
    let nul = buf.indexOf(0, start);
    if (nul < 0 || nul > end) nul = end;
    if (args.length === maxArgs) return { args, cut: true };
    args.push(utf8(buf, start, nul));
    if (nul >= end) return { args, cut: false };
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

export function decodeEvent(bytes: Uint8Array, opts: DecodeOptions): Decoded {
  if (bytes.length < Exec.size) return { ok: false, reason: `short sample: ${bytes.length} bytes` };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint8(Header.version);
  if (version !== WIRE_VERSION) return { ok: false, reason: `unknown wire version ${version}` };
  const size = dv.getUint32(Header.size_, true);
  if (size < Exec.size || size > bytes.length || size > SD_EVENT_MAX) {
    return { ok: false, reason: `size ${size} outside sample of ${bytes.length} or slot of ${SD_EVENT_MAX}` };
  }
  const type = TYPE_NAMES[dv.getUint16(Header.type, true)];
  const encoding = ENCODING_NAMES[dv.getUint8(Header.encoding)];
  const mode = MODE_NAMES[dv.getUint8(Header.mode)];
  const transport = TRANSPORT_NAMES[dv.getUint8(Header.transport)];
  if (!type || !encoding || !mode || !transport)
    return { ok: false, reason: "unknown type, encoding, mode or transport" };
  if (encoding === "fixed" && size !== ExecFixed.size) return { ok: false, reason: `fixed event of ${size} bytes` };

  // Descriptors: len << 16 | offset. Check all before reading any.
  const offs = SPAN_OFF;
  const lens = SPAN_LEN;
  for (let i = 0; i < STR_NR; i++) {
    const d = dv.getUint32(Exec.str + 4 * i, true);
    const len = d >>> 16;
    const off = d & 0xffff;
    offs[i] = off;
    lens[i] = len;
    if (len === 0) continue;
    if (off < Exec.size || off + len > size)
      return { ok: false, reason: `string ${i} [${off}+${len}] outside event of ${size}` };
    if (encoding === "fixed") {
      const [fo, fs] = FIXED_SLOTS[i]!;
      if (off !== fo || len > fs) return { ok: false, reason: `fixed string ${i} not in its array` };
    }
  }
  if (encoding === "compact") {
    for (let i = 0; i < STR_NR; i++) {
      for (let j = i + 1; j < STR_NR; j++) {
        if (lens[i]! > 0 && lens[j]! > 0 && offs[i]! < offs[j]! + lens[j]! && offs[j]! < offs[i]! + lens[i]!) {
          return { ok: false, reason: "overlapping strings" };
        }
      }
    }
  }
  // Invalid UTF-8 becomes U+FFFD here; the raw bytes never reach a terminal.
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = (i: number): string => (lens[i] === 0 ? "" : utf8(buf, offs[i]!, offs[i]! + lens[i]!));

  const flags = dv.getUint32(Exec.flags, true);
  // Level data is copied (the sample is only borrowed), with slice(): touching
  // .buffer of a small typed array makes the engine materialize it, and that
  // was the single most expensive step of decoding.
  const levels: LevelView[] = [];
  for (let i = 0; i < LEVELS; i++) {
    const base = Exec.level + i * Level.size;
    if (bytes[base + Level.used] === 0) continue;
    const slot = bytes[base + Level.slot]!;
    const de = base + Level.data_expected;
    const dob = base + Level.data_observed;
    levels.push({
      slot: slot === SLOT_NONE ? null : slot,
      intact: bytes[base + Level.intact] !== 0,
      tagExpected: dv.getBigUint64(base + Level.tag_expected, true),
      tagObserved: dv.getBigUint64(base + Level.tag_observed, true),
      dataExpected: bytes.slice(de, de + 16),
      dataObserved: bytes.slice(dob, dob + 16),
    });
  }

  const { args, cut } = splitArgs(bytes.subarray(offs[Str.args]!, offs[Str.args]! + lens[Str.args]!), opts.maxArgs);
  return {
    ok: true,
    event: {
      type,
      ktimeNs: dv.getBigUint64(Header.ktime_ns, true),
      seq: dv.getBigUint64(Header.seq, true),
      tag: dv.getBigUint64(Header.tag, true),
      cpu: dv.getUint32(Header.cpu, true),
      size,
      encoding,
      mode,
      slots: dv.getUint8(Header.slots),
      transport,
      guard: dv.getUint8(Header.guard) !== 0,
      pid: dv.getUint32(Exec.pid, true),
      tid: dv.getUint32(Exec.tid, true),
      ppid: dv.getUint32(Exec.ppid, true),
      uid: dv.getUint32(Exec.uid, true),
      gid: dv.getUint32(Exec.gid, true),
      cgroupId: dv.getBigUint64(Exec.cgroup_id, true),
      mntnsId: dv.getUint32(Exec.mntns_id, true),
      argsTotal: dv.getUint32(Exec.args_total, true),
      comm: text(Str.comm),
      filename: text(Str.filename),
      args,
      cwd: text(Str.cwd),
      exe: text(Str.exe),
      pexe: text(Str.pexe),
      flags,
      argsTruncated: cut || (flags & Flags.argsTruncated) !== 0,
      pathTruncated: (flags & (Flags.cwdTruncated | Flags.exeTruncated | Flags.pexeTruncated)) !== 0,
      slot1Intact: (flags & Flags.slot1Intact) !== 0,
      corrupt: (flags & Flags.corrupt) !== 0,
      clobbered: (flags & Flags.clobbered) !== 0,
      levels,
    },
  };
}
