/**
 * The compiled renderers: a checked record's bytes straight to its NDJSON line
 * or table row, in a reusable byte buffer, with no event object, no BigInt and
 * no string per event. The NDJSON renderer is the schema's compiled form
 * (compile.ts): the same field tables jsonObject() walks, constant keys and
 * values folded into byte runs, each field read where its `wire` says. The
 * table row follows tableRow() (event.ts); a DS_RECORD_HEAD record's summary
 * is compiled from the parts its schema defines the summary with.
 *
 * Anything uncommon (text that needs more than JSON's escapes, invalid UTF-8,
 * damage to show, non-dual modes, 64-bit values past 2^53, a row that must be
 * cut) bails out, and the record goes through the general decoder and
 * renderer instead. A differential test holds the two byte-identical.
 */
import { hostname } from "node:os";
import type { ByteBuf } from "../output/bytebuf.ts";
import { decodeEvent, escapeInvalidUtf8, type RecordSpans, seqLen, u16At, u32At } from "../wire/decode.ts";
import { EVENTS, type EventSpec } from "../wire/events.ts";
import { ds_exec, ds_flags, ds_header, ds_level } from "../wire/layout.gen.ts";
import { Mode } from "../wire/names.ts";
import { type Compiled, compile, compileSummary, Op, type Step, s64At, scalarAt, u64At } from "./compile.ts";
import { jsonLine, tableRow, tableWidth } from "./event.ts";
import { schemaFor } from "./record-schema.ts";

const enc = new TextEncoder();
const H = ds_header.off;
const L = ds_level.off;
const F = ds_flags;

/** Thrown nowhere: a renderer step returns BAIL and the record takes the general path. */
const BAIL = -1;

/**
 * Digits of n (an integer, 0 <= n < 2^53) at `p`; returns the end. In int32
 * pieces: `%` and `/` on values past 2^31 are floating-point in the engine,
 * and cost more than the rest of a line put together.
 */
function writeDec(b: Uint8Array, p: number, n: number): number {
  if (n < 2147483648) return writeInt(b, p, n | 0);
  let hi = Math.floor(n / 1e8);
  let lo = n - hi * 1e8;
  if (lo < 0) {
    hi--;
    lo += 1e8;
  } else if (lo >= 1e8) {
    hi++;
    lo -= 1e8;
  }
  p = writeDec(b, p, hi);
  let v = lo | 0;
  for (let k = 6; k >= 0; k -= 2) {
    const q = (v / 100) | 0;
    const r = 2 * (v - q * 100);
    b[p + k] = PAIRS[r]!;
    b[p + k + 1] = PAIRS[r + 1]!;
    v = q;
  }
  return p + 8;
}

/** "00".."99" as byte pairs: one division per two digits. */
const PAIRS = new Uint8Array(200);
for (let i = 0; i < 100; i++) {
  PAIRS[2 * i] = 48 + ((i / 10) | 0);
  PAIRS[2 * i + 1] = 48 + (i % 10);
}

/** How many digits an int32 v >= 0 has, by comparisons (a division loop costs more). */
function digitCount(v: number): number {
  if (v < 100000) return v < 100 ? (v < 10 ? 1 : 2) : v < 1000 ? 3 : v < 10000 ? 4 : 5;
  return v < 10000000 ? (v < 1000000 ? 6 : 7) : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
}

/** Digits of an int32 v >= 0. */
function writeInt(b: Uint8Array, p: number, v: number): number {
  const end = p + digitCount(v);
  let q = end;
  while (v >= 100) {
    const d = (v / 100) | 0;
    const r = 2 * (v - d * 100);
    b[--q] = PAIRS[r + 1]!;
    b[--q] = PAIRS[r]!;
    v = d;
  }
  if (v >= 10) {
    b[--q] = PAIRS[2 * v + 1]!;
    b[--q] = PAIRS[2 * v]!;
  } else b[--q] = 48 + v;
  return end;
}

/** Copies a short constant: a byte loop beats a native set() call for a few dozen bytes. */
function put(out: Uint8Array, p: number, src: Uint8Array): number {
  const n = src.length;
  for (let i = 0; i < n; i++) out[p + i] = src[i]!;
  return p + n;
}

/** A safe integer with its sign. */
function writeNum(b: Uint8Array, p: number, v: number): number {
  if (v >= 0) return writeDec(b, p, v);
  b[p++] = 0x2d;
  return writeDec(b, p, -v);
}

/** A u32 in lower-case hex, at least `min` digits (zero-padded). */
function writeHex(b: Uint8Array, p: number, v: number, min: number): number {
  let n = 1;
  while (n < 8 && v >>> (4 * n) !== 0) n++;
  if (n < min) n = min;
  for (let k = n - 1; k >= 0; k--) {
    const d = v & 15;
    b[p + k] = d < 10 ? 48 + d : 87 + d;
    v >>>= 4;
  }
  return p + n;
}

/** A u32 in octal, zero-padded to `min` digits, as toString(8).padStart(min, "0"). */
function writeOctal(b: Uint8Array, p: number, v: number, min: number): number {
  let n = 1;
  while (n < 11 && v >>> (3 * n) !== 0) n++;
  if (n < min) n = min;
  for (let k = n - 1; k >= 0; k--) {
    b[p + k] = 48 + (v & 7);
    v >>>= 3;
  }
  return p + n;
}

function dotted(src: Uint8Array, at: number, out: Uint8Array, p: number): number {
  for (let k = 0; k < 4; k++) {
    if (k > 0) out[p++] = 0x2e;
    p = writeInt(out, p, src[at + k]!);
  }
  return p;
}

const GROUPS = new Int32Array(8);

/**
 * ipText() (ip.ts) of the 16 address bytes at `at`: dotted for AF_INET, RFC
 * 5952 for AF_INET6 (the first longest run of two or more zero groups as
 * "::", an IPv4-mapped address with its dotted quad), nothing otherwise.
 */
function writeIp(src: Uint8Array, family: number, at: number, out: Uint8Array, p: number): number {
  if (family === 2) return dotted(src, at, out, p);
  if (family !== 10) return p;
  for (let k = 0; k < 8; k++) GROUPS[k] = (src[at + 2 * k]! << 8) | src[at + 2 * k + 1]!;
  if ((GROUPS[0]! | GROUPS[1]! | GROUPS[2]! | GROUPS[3]! | GROUPS[4]!) === 0 && GROUPS[5] === 0xffff)
    return dotted(src, at + 12, out, put(out, p, MAPPED));
  let best = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    let j = k;
    while (j < 8 && GROUPS[j] === 0) j++;
    if (j - k > bestLen) {
      best = k;
      bestLen = j - k;
    }
    k = j === k ? k + 1 : j;
  }
  for (let k = 0; k < 8; ) {
    if (k === best) {
      out[p++] = 0x3a;
      out[p++] = 0x3a;
      k += bestLen;
      continue;
    }
    if (k > 0 && k !== best + bestLen) out[p++] = 0x3a;
    p = writeHex(out, p, GROUPS[k]!, 1);
    k++;
  }
  return p;
}

const MAPPED = enc.encode("::ffff:");

/** A summary's string as escapeText() leaves it: printable ASCII but a backslash, else BAIL. */
function plainText(src: Uint8Array, s: number, e: number, out: Uint8Array, p: number): number {
  for (let i = s; i < e; i++) {
    const c = src[i]!;
    if (c < 0x20 || c >= 0x7f || c === 0x5c) return BAIL;
    out[p++] = c;
  }
  return p;
}

/** Bytes of a JSON string's body for [s, e) of `src`, as JSON.stringify writes valid UTF-8; BAIL when it is not. */
function jsonText(src: Uint8Array, s: number, e: number, out: Uint8Array, p: number): number {
  for (let i = s; i < e; ) {
    const c = src[i]!;
    if (c >= 0x20 && c < 0x80) {
      if (c === 0x22 || c === 0x5c) out[p++] = 0x5c;
      out[p++] = c;
      i++;
    } else if (c >= 0x80) {
      const n = seqLen(src, i, e);
      if (n === 0) return BAIL;
      for (let k = 0; k < n; k++) out[p++] = src[i + k]!;
      i += n;
    } else {
      out[p++] = 0x5c;
      const short = c === 8 ? 98 : c === 9 ? 116 : c === 10 ? 110 : c === 12 ? 102 : c === 13 ? 114 : 0;
      if (short !== 0) out[p++] = short;
      else {
        out[p++] = 117; // \u00XX, lower-case hex as JSON.stringify writes it
        out[p++] = 48;
        out[p++] = 48;
        out[p++] = 48 + (c >> 4);
        const lo = c & 15;
        out[p++] = lo < 10 ? 48 + lo : 87 + lo;
      }
      i++;
    }
  }
  return p;
}

/**
 * escapeBytes()'s plain case for a C string in [s, e): printable ASCII (no
 * backslash) up to trailing NULs, at most maxChars. Returns its end, or BAIL.
 */
function plainEnd(b: Uint8Array, s: number, e: number, maxChars: number): number {
  let end = e;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c === 0) {
      for (let k = i + 1; k < e; k++) if (b[k] !== 0) return BAIL;
      end = i;
      break;
    }
    if (c < 0x20 || c >= 0x7f || c === 0x5c) return BAIL;
  }
  return end - s > maxChars ? BAIL : end;
}

/** JSON body of printable ASCII (checked by plainEnd): only '"' needs escaping. */
function copyPlainJson(src: Uint8Array, s: number, e: number, out: Uint8Array, p: number): number {
  for (let i = s; i < e; i++) {
    const c = src[i]!;
    if (c === 0x22) out[p++] = 0x5c;
    out[p++] = c;
  }
  return p;
}

/** Whether the whole argv area is valid UTF-8 (splitArgs decides escaping for the whole area). */
function validUtf8(b: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; ) {
    if (b[i]! < 0x80) {
      i++;
      continue;
    }
    const n = seqLen(b, i, e);
    if (n === 0) return false;
    i += n;
  }
  return true;
}

/** What the last argv walk found: arguments kept, and whether --max-args cut it. */
interface ArgWalk {
  count: number;
  cut: boolean;
}

export interface LineOptions {
  json: boolean;
  /** Wall-clock time of the kernel's monotonic zero. */
  bootWallNs: bigint;
  maxArgs: number;
  host?: string;
  /** Table width; default: tableWidth() at each row. */
  width?: number;
  /** Only events whose pid or ppid is this. */
  pid?: number;
  /** Only events whose comm is this. */
  comm?: string;
}

const TRUNCATED = enc.encode(" …[truncated]");
const SHELL_SAFE = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-")
  SHELL_SAFE[c.charCodeAt(0)] = 1;
/** tableRow's fixed columns before FILE_INFO. */
const PREFIX = 8 + 1 + 8 + 1 + 8 + 1 + 16 + 1;
/** Bytes a rendered line may take per byte of record, at most (\u00XX), plus what is not from the record. */
const WORST_PER_BYTE = 6;
const WORST_FIXED = 4096;

/**
 * Renders checked records (checkRecord) as lines: the compiled path when it
 * can, the general one otherwise, and applies --pid/--comm on the raw bytes.
 */
export class LineRenderer {
  /** Records --pid/--comm left out. */
  filtered = 0;
  /** Lines by path, for tests and the benchmark. */
  fastLines = 0;
  generalLines = 0;
  /** By record type: the NDJSON line, the table row's summary, the row's TYPE. */
  private readonly lines: Array<Compiled | undefined> = [];
  private readonly summaries: Array<Compiled | undefined> = [];
  private readonly words: Array<Uint8Array | undefined> = [];
  private readonly bootSec: number;
  private readonly bootFrac: number;
  private readonly commBytes: Uint8Array | null;
  private readonly host: string;
  private lastSec = -1;
  private readonly datePrefix = new Uint8Array(19);
  private readonly walk: ArgWalk = { count: 0, cut: false };

  constructor(readonly opts: LineOptions) {
    this.host = opts.host ?? hostname();
    this.bootSec = Number(opts.bootWallNs / 1_000_000_000n);
    this.bootFrac = Number(opts.bootWallNs % 1_000_000_000n);
    this.commBytes = opts.comm === undefined ? null : enc.encode(opts.comm);
    // Every field of every schema has a wire source: a schema that lacks one throws here, in every test.
    for (const spec of EVENTS) {
      const schema = schemaFor(spec.name);
      this.lines[spec.type] = compile<never>(schema, spec, this.host);
      if (schema.summaryParts !== undefined) this.summaries[spec.type] = compileSummary(schema.summaryParts, spec);
      this.words[spec.type] = enc.encode(spec.name.toUpperCase());
    }
  }

  /**
   * Appends one record's line (no newline) to `out`; false when the filters
   * leave it out. `spans` are checkRecord()'s for these bytes.
   */
  render(bytes: Uint8Array, spec: EventSpec, spans: RecordSpans, out: ByteBuf): boolean {
    if (!this.keep(bytes, spec, spans)) {
      this.filtered++;
      return false;
    }
    out.ensure(WORST_PER_BYTE * spans.size + WORST_FIXED + this.host.length * 6);
    const end = this.renderFast(bytes, spec, spans, out.buf, out.len);
    if (end !== BAIL) {
      out.len = end;
      this.fastLines++;
      return true;
    }
    const line = this.renderGeneral(bytes);
    if (line === null) return false;
    const n = Buffer.byteLength(line);
    out.ensure(n);
    out.len += out.buf.write(line, out.len, n, "utf8");
    this.generalLines++;
    return true;
  }

  /** The general path's line (decodeEvent + jsonLine/tableRow); null for a record it refuses. */
  renderGeneral(bytes: Uint8Array): string | null {
    const d = decodeEvent(bytes, { maxArgs: this.opts.maxArgs });
    if (!d.ok) return null;
    return this.opts.json
      ? jsonLine(d.event, this.opts.bootWallNs, this.host)
      : tableRow(d.event, this.opts.width ?? tableWidth());
  }

  /** The compiled path alone: the end of the line written at `p`, or -1 when the record needs the general path. */
  renderFast(bytes: Uint8Array, spec: EventSpec, spans: RecordSpans, out: Uint8Array, p: number): number {
    if (!this.opts.json) {
      if (spec.struct === ds_exec) return this.row(bytes, spec, spans, out, p);
      const summary = this.summaries[spec.type];
      return summary === undefined ? BAIL : this.recordRow(bytes, spec, spans, summary, out, p);
    }
    const c = this.lines[spec.type]!;
    p = this.run(c.steps, bytes, spec, spans, out, p);
    return p === BAIL ? BAIL : put(out, p, c.tail);
  }

  /** --pid and --comm, as the run command applied them to decoded events. */
  private keep(bytes: Uint8Array, spec: EventSpec, spans: RecordSpans): boolean {
    const o = this.opts;
    if (o.pid !== undefined) {
      const off = spec.struct.off;
      if (u32At(bytes, off.pid!) !== o.pid && u32At(bytes, off.ppid!) !== o.pid) return false;
    }
    const want = this.commBytes;
    if (want !== null) {
      const i = spec.strings.indexOf("comm");
      const s = spans.off[i]!;
      const n = spans.len[i]!;
      let same = n === want.length;
      for (let k = 0; same && k < n; k++) same = bytes[s + k] === want[k];
      if (same) return true;
      // Text that is not valid UTF-8 compares as the decoder shows it (\xNN).
      if (validUtf8(bytes, s, s + n)) return false;
      return escapeInvalidUtf8(bytes.subarray(s, s + n)) === o.comm;
    }
    return true;
  }

  /** A compiled line's steps at `p`: the end, or BAIL. */
  private run(
    steps: readonly Step[],
    bytes: Uint8Array,
    spec: EventSpec,
    spans: RecordSpans,
    out: Uint8Array,
    p: number,
  ): number {
    const flags = u32At(bytes, spec.struct.off.flags!);
    let argsCut = false;
    const n = steps.length;
    for (let i = 0; i < n; i++) {
      const st = steps[i]!;
      p = put(out, p, st.pre);
      switch (st.op) {
        case Op.HeaderInt: {
          const w = st.width;
          const v = w === 4 ? u32At(bytes, st.at) : w === 2 ? u16At(bytes, st.at) : bytes[st.at]!;
          p = writeDec(out, p, v);
          break;
        }
        case Op.Dec64: {
          const v = u64At(bytes, st.at);
          if (v < 0) return BAIL;
          if (st.quoted) out[p++] = 0x22;
          p = writeDec(out, p, v);
          if (st.quoted) out[p++] = 0x22;
          break;
        }
        case Op.S64: {
          const v = s64At(bytes, st.at);
          if (Number.isNaN(v)) return BAIL;
          if (st.quoted) out[p++] = 0x22;
          p = writeNum(out, p, v);
          if (st.quoted) out[p++] = 0x22;
          break;
        }
        case Op.Small: {
          const w = st.width;
          const raw = w === 4 ? u32At(bytes, st.at) : w === 2 ? u16At(bytes, st.at) : bytes[st.at]!;
          const v = st.signed ? raw | 0 : ((raw >>> st.shift) & st.mask) >>> 0;
          if (st.bool) p = writeBool(out, p, v !== 0);
          else {
            if (st.quoted) out[p++] = 0x22;
            p = writeNum(out, p, v);
            if (st.quoted) out[p++] = 0x22;
          }
          break;
        }
        case Op.Name: {
          const name = st.names[bytes[st.at]!];
          if (name === undefined) return BAIL;
          p = put(out, p, name);
          break;
        }
        case Op.Flags:
          p = writeBool(out, p, (flags & st.mask) !== 0 || (st.argsCut && argsCut));
          break;
        case Op.Str: {
          const s = spans.off[st.at]!;
          const len = spans.len[st.at]!;
          if (st.text) {
            p = plainText(bytes, s, s + len, out, p);
            if (p === BAIL) return BAIL;
            break;
          }
          if (st.optional) {
            if (len === 0) break;
            p = put(out, p, st.names[0]!);
          }
          out[p++] = 0x22;
          p = jsonText(bytes, s, s + len, out, p);
          if (p === BAIL) return BAIL;
          out[p++] = 0x22;
          break;
        }
        case Op.Cstr: {
          const s = spans.off[st.at]!;
          const e = plainEnd(bytes, s, s + spans.len[st.at]!, 64);
          if (e === BAIL) return BAIL;
          out[p++] = 0x22;
          p = copyPlainJson(bytes, s, e, out, p);
          out[p++] = 0x22;
          break;
        }
        case Op.Level0: {
          // slot1Data(): the first level that ran; here only when that is level 0.
          if (bytes[st.at + L.used] === 0) return BAIL;
          const s = st.at + L.data_observed;
          const e = plainEnd(bytes, s, s + ds_level.bytes.data_observed, 64);
          if (e === BAIL) return BAIL;
          out[p++] = 0x22;
          p = copyPlainJson(bytes, s, e, out, p);
          out[p++] = 0x22;
          break;
        }
        case Op.Args: {
          p = this.jsonArgs(bytes, spans.off[st.at]!, spans.len[st.at]!, out, p);
          if (p === BAIL) return BAIL;
          argsCut = this.walk.cut;
          break;
        }
        case Op.Absent:
          if ((flags & st.mask) !== 0) return BAIL;
          if (st.dualOnly && bytes[H.mode] !== Mode.dual) return BAIL;
          break;
        case Op.Time:
          p = this.time(bytes, out, p);
          if (p === BAIL) return BAIL;
          break;
        case Op.Join: {
          if (st.quoted) out[p++] = 0x22;
          const parts = st.parts;
          for (let k = 0; k < parts.length; k++) {
            const [off, width] = parts[k]!;
            const v = width === 8 ? u64At(bytes, off) : u32At(bytes, off);
            if (v < 0) return BAIL;
            if (k > 0) out[p++] = 0x3a;
            p = writeDec(out, p, v);
          }
          if (st.quoted) out[p++] = 0x22;
          break;
        }
        case Op.Enum: {
          if (st.condAt >= 0 && scalarAt(bytes, st.condAt, st.condKind) !== st.condValue) {
            if (st.quoted) {
              out[p++] = 0x22;
              out[p++] = 0x22;
            }
            break;
          }
          let v = scalarAt(bytes, st.at, st.kind);
          if (Number.isNaN(v)) return BAIL;
          if (st.mask !== 0xffffffff) v &= st.mask;
          const name = st.table!.get(v) ?? st.other;
          if (name !== null) p = put(out, p, name);
          else {
            if (st.quoted) out[p++] = 0x22;
            p = writeNum(out, p, v);
            if (st.quoted) out[p++] = 0x22;
          }
          break;
        }
        case Op.Hex: {
          if (st.quoted) out[p++] = 0x22;
          out[p++] = 0x30;
          out[p++] = 0x78;
          const hi = u32At(bytes, st.at + 4);
          const lo = u32At(bytes, st.at);
          if (hi !== 0) p = writeHex(out, writeHex(out, p, hi, 1), lo, 8);
          else p = writeHex(out, p, lo, 1);
          if (st.quoted) out[p++] = 0x22;
          break;
        }
        case Op.Octal: {
          const v = scalarAt(bytes, st.at, st.kind);
          if (Number.isNaN(v)) return BAIL;
          if (st.quoted) out[p++] = 0x22;
          p = writeOctal(out, p, (v & st.mask) >>> 0, st.width);
          if (st.quoted) out[p++] = 0x22;
          break;
        }
        case Op.Ip:
          if (st.quoted) out[p++] = 0x22;
          p = writeIp(bytes, u16At(bytes, st.condAt), st.at, out, p);
          if (st.quoted) out[p++] = 0x22;
          break;
        case Op.Object:
          if (scalarAt(bytes, st.condAt, st.condKind) === 0) i += st.skip;
          else p = put(out, p, st.names[0]!);
          break;
        case Op.Const:
          break;
        case Op.When:
          if (scalarAt(bytes, st.condAt, st.condKind) !== st.condValue) i += st.skip;
          break;
      }
    }
    return p;
  }

  /** `"YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"`, as rfc3339Nano(bootWallNs + ktime). */
  private time(bytes: Uint8Array, out: Uint8Array, p: number): number {
    const kt = u64At(bytes, H.ktime_ns);
    if (kt < 0 || this.bootFrac < 0) return BAIL;
    const ktFrac = kt % 1e9;
    let sec = this.bootSec + (kt - ktFrac) / 1e9;
    let frac = this.bootFrac + ktFrac;
    if (frac >= 1e9) {
      frac -= 1e9;
      sec++;
    }
    if (sec !== this.lastSec) {
      if (!Number.isSafeInteger(sec * 1000)) return BAIL;
      this.lastSec = sec;
      enc.encodeInto(new Date(sec * 1000).toISOString().slice(0, 19), this.datePrefix);
    }
    out[p++] = 0x22;
    out.set(this.datePrefix, p);
    p += 19;
    out[p++] = 0x2e;
    let f = frac | 0;
    for (let k = 8; k >= 0; k--) {
      const q = (f / 10) | 0;
      out[p + k] = 48 + f - q * 10;
      f = q;
    }
    p += 9;
    out[p++] = 0x5a;
    out[p++] = 0x22;
    return p;
  }

  /** The argv area as splitArgs() cuts it, as a JSON array. */
  private jsonArgs(b: Uint8Array, s: number, n: number, out: Uint8Array, p: number): number {
    const walk = this.walk;
    walk.count = 0;
    walk.cut = false;
    out[p++] = 0x5b;
    if (n > 0) {
      const end = b[s + n - 1] === 0 ? s + n - 1 : s + n;
      let start = s;
      for (;;) {
        let nul = b.indexOf(0, start);
        if (nul < 0 || nul > end) nul = end;
        if (walk.count === this.opts.maxArgs) {
          walk.cut = true;
          // splitArgs decides escaping on the whole area, the part cut off included.
          if (!validUtf8(b, start, s + n)) return BAIL;
          break;
        }
        if (walk.count > 0) out[p++] = 0x2c;
        out[p++] = 0x22;
        p = jsonText(b, start, nul, out, p);
        if (p === BAIL) return BAIL;
        out[p++] = 0x22;
        walk.count++;
        if (nul >= end) break;
        start = nul + 1;
      }
    }
    out[p++] = 0x5d;
    return p;
  }

  /** tableRow()'s columns before FILE_INFO, for a record that is not corrupt: the end, or BAIL. */
  private head(bytes: Uint8Array, spec: EventSpec, spans: RecordSpans, out: Uint8Array, p: number): number {
    const off = spec.struct.off;
    if ((u32At(bytes, off.flags!) & F.DS_F_CORRUPT) !== 0) return BAIL;
    p = padded(out, p, this.words[spec.type]!, 8);
    p = pad(out, writeDec(out, p, u32At(bytes, off.pid!)), p + 8);
    p = pad(out, writeDec(out, p, u32At(bytes, off.ppid!)), p + 8);
    // comm: escapeText(comm, 16) is the text itself when it is safe and fits.
    const ci = spec.strings.indexOf("comm");
    const cs = spans.off[ci]!;
    const cn = spans.len[ci]!;
    if (cn > 16) return BAIL;
    const commAt = p;
    for (let i = cs; i < cs + cn; i++) {
      const c = bytes[i]!;
      if (c < 0x20 || c >= 0x7f || c === 0x5c) return BAIL;
      out[p++] = c;
    }
    return pad(out, p, commAt + 16);
  }

  /** tableRow() for a DS_RECORD_HEAD record whose summary needs no escaping or cut. */
  private recordRow(
    bytes: Uint8Array,
    spec: EventSpec,
    spans: RecordSpans,
    summary: Compiled,
    out: Uint8Array,
    p: number,
  ): number {
    p = this.head(bytes, spec, spans, out, p);
    if (p === BAIL) return BAIL;
    const info = p;
    p = put(out, p, SLOT1);
    // slot1Data(): comm as escapeBytes(comm, 32) shows it.
    const ci = spec.strings.indexOf("comm");
    const cs = spans.off[ci]!;
    const ce = plainEnd(bytes, cs, cs + spans.len[ci]!, 32);
    if (ce === BAIL) return BAIL;
    for (let i = cs; i < ce; i++) out[p++] = bytes[i]!;
    p = put(out, p, SEQ);
    const seq = u64At(bytes, H.seq);
    if (seq < 0) return BAIL;
    p = writeDec(out, p, seq);
    const width = Math.max(16, (this.opts.width ?? tableWidth()) - PREFIX - (p - info) - 1);
    out[p++] = 0x20;
    const start = p;
    p = this.run(summary.steps, bytes, spec, spans, out, p);
    if (p === BAIL) return BAIL;
    p = put(out, p, summary.tail);
    // escapeText() cuts a summary longer than the row has room for: the general path's.
    return p - start > width ? BAIL : p;
  }

  /** tableRow() for an exec-path record (exec, flood, usermode_helper) that is not corrupt and needs no escaping or cut. */
  private row(bytes: Uint8Array, spec: EventSpec, spans: RecordSpans, out: Uint8Array, p: number): number {
    if (this.opts.maxArgs < 1) return BAIL;
    const off = spec.struct.off;
    const flags = u32At(bytes, off.flags!);
    // A failed exec (res != 0) is rare: its row takes the general path.
    if (u32At(bytes, off.res!) !== 0) return BAIL;
    p = this.head(bytes, spec, spans, out, p);
    if (p === BAIL) return BAIL;
    const info = p;
    p = put(out, p, SLOT1);
    const lv = off.level!;
    if (bytes[lv + L.used] === 0) return BAIL;
    const ds = lv + L.data_observed;
    const de = plainEnd(bytes, ds, ds + ds_level.bytes.data_observed, 32);
    if (de === BAIL) return BAIL;
    for (let i = ds; i < de; i++) out[p++] = bytes[i]!;
    p = put(out, p, SEQ);
    const seq = u64At(bytes, H.seq);
    if (seq < 0) return BAIL;
    p = writeDec(out, p, seq);
    if ((flags & F.DS_F_CLOBBERED) !== 0) {
      p = put(out, p, CLOBBERED);
    }
    const ai = spec.strings.indexOf("args");
    const as = spans.off[ai]!;
    const an = spans.len[ai]!;
    if (an === 0) return p;
    if (!validUtf8(bytes, as, as + an)) return BAIL;
    const width = Math.max(16, (this.opts.width ?? tableWidth()) - PREFIX - (p - info) - 5);
    p = put(out, p, CMD);
    const words = p;
    const end = bytes[as + an - 1] === 0 ? as + an - 1 : as + an;
    let s = as;
    let count = 0;
    let cut = false;
    for (;;) {
      let nul = bytes.indexOf(0, s);
      if (nul < 0 || nul > end) nul = end;
      if (count === this.opts.maxArgs) {
        cut = true;
        break;
      }
      if (count > 0) out[p++] = 0x20;
      p = shellWord(bytes, s, nul, out, p);
      if (p === BAIL) return BAIL;
      count++;
      if (nul >= end) break;
      s = nul + 1;
    }
    if (p - words > width) return BAIL;
    if (cut || (flags & F.DS_F_ARGS_TRUNCATED) !== 0) {
      p = put(out, p, TRUNCATED);
    }
    return p;
  }
}

const SLOT1 = enc.encode("slot1_data=[");
const SEQ = enc.encode("] slot0_seq=");
const CLOBBERED = enc.encode(" CLOBBERED");
const CMD = enc.encode(" cmd=");

function writeBool(out: Uint8Array, p: number, v: boolean): number {
  return put(out, p, v ? TRUE : FALSE);
}

const TRUE = enc.encode("true");
const FALSE = enc.encode("false");

function padded(out: Uint8Array, p: number, word: Uint8Array, width: number): number {
  return pad(out, put(out, p, word), p + width);
}

/** Spaces up to `to`, then the column separator. */
function pad(out: Uint8Array, p: number, to: number): number {
  while (p < to) out[p++] = 0x20;
  out[p++] = 0x20;
  return p;
}

/**
 * shellWord() of printable ASCII without a backslash (else BAIL: escapeText
 * would change the line): as is, in '...', or in "..." when it holds a quote.
 */
function shellWord(b: Uint8Array, s: number, e: number, out: Uint8Array, p: number): number {
  let safe = e > s;
  let quote = false;
  let special = false;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c < 0x20 || c >= 0x7f || c === 0x5c) return BAIL;
    if (SHELL_SAFE[c] === 0) safe = false;
    if (c === 0x27) quote = true;
    else if (c === 0x22 || c === 0x24 || c === 0x60) special = true;
  }
  if (quote && special) return BAIL;
  const q = safe ? 0 : quote ? 0x22 : 0x27;
  if (q !== 0) out[p++] = q;
  for (let i = s; i < e; i++) out[p++] = b[i]!;
  if (q !== 0) out[p++] = q;
  return p;
}
