/**
 * The compiled renderers: a checked record's bytes straight to its NDJSON line
 * or table row, in a reusable byte buffer, with no event object, no BigInt and
 * no string per event. The NDJSON line is the schema's compiled form: the
 * same field tables jsonObject() walks, compiled to steps (compile.ts) and
 * generated at build time into one function per record type (lines.gen.ts,
 * scripts/render-gen.ts). The table row follows tableRow() (event.ts); a
 * DS_RECORD_HEAD record's summary is generated from the parts its schema
 * defines the summary with.
 *
 * Anything uncommon (text that needs more than JSON's escapes, invalid UTF-8,
 * damage to show, non-dual modes, 64-bit values past 2^53, a row that must be
 * cut) bails out, and the record goes through the general decoder and
 * renderer instead. A differential test holds the two byte-identical.
 */
import { hostname } from "node:os";
import type { ByteBuf } from "../output/bytebuf.ts";
import { decodeEvent, escapeInvalidUtf8, type RecordSpans, u32At } from "../wire/decode.ts";
import { EVENTS, type EventSpec } from "../wire/events.ts";
import { ds_exec, ds_flags, ds_header, ds_level } from "../wire/layout.gen.ts";
import { u64At } from "./compile.ts";
import type { Generated, RenderContext } from "./context.ts";
import { jsonLine, TABLE_PREFIX, TYPE_WIDTH, tableRow, tableType, tableWidth } from "./event.ts";
import { LINES, RUN_BANKS, SUMMARIES } from "./lines.gen.ts";
import { RunMemo } from "./memo.ts";
import { BAIL, jsonEscapeHidden, jsonText, plainEnd, put, validUtf8, writeDec } from "./writers.ts";

const enc = new TextEncoder();
const H = ds_header.off;
const L = ds_level.off;
const F = ds_flags;

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
  /** Look every kept run up, even one that keeps missing (memo.ts; for tests that check each key). */
  memoEveryRecord?: boolean;
}

const TRUNCATED = enc.encode(" …[truncated]");
const SHELL_SAFE = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-")
  SHELL_SAFE[c.charCodeAt(0)] = 1;
/** Bytes a rendered line may take per byte of record, at most (\u00XX), plus what is not from the record. */
const WORST_PER_BYTE = 6;
const WORST_FIXED = 4096;

/**
 * Renders checked records (checkRecord) as lines: the compiled path when it
 * can, the general one otherwise, and applies --pid/--comm on the raw bytes.
 */
export class LineRenderer implements RenderContext {
  /** Records --pid/--comm left out. */
  filtered = 0;
  /** Lines by path, for tests and the benchmark. */
  fastLines = 0;
  generalLines = 0;
  /** By record type: the row's TYPE. */
  private readonly words: Array<Uint8Array | undefined> = [];
  readonly hostJson: Uint8Array;
  private readonly bootSec: number;
  private readonly bootFrac: number;
  private readonly commBytes: Uint8Array | null;
  private readonly host: string;
  private lastSec = -1;
  private readonly datePrefix = new Uint8Array(19);
  private readonly walk: ArgWalk = { count: 0, cut: false };
  readonly memo: RunMemo;

  constructor(readonly opts: LineOptions) {
    this.host = opts.host ?? hostname();
    this.memo = new RunMemo(RUN_BANKS, opts.memoEveryRecord !== true);
    this.bootSec = Number(opts.bootWallNs / 1_000_000_000n);
    this.bootFrac = Number(opts.bootWallNs % 1_000_000_000n);
    this.commBytes = opts.comm === undefined ? null : enc.encode(opts.comm);
    this.hostJson = enc.encode(jsonEscapeHidden(JSON.stringify(this.host)));
    for (const spec of EVENTS) this.words[spec.type] = enc.encode(tableType(spec.name));
  }

  /**
   * Appends one record's line (no newline) to `out`; false when the filters
   * leave it out. `spans` are checkRecord()'s for these bytes.
   */
  render(bytes: Uint8Array, spec: EventSpec, spans: RecordSpans, out: ByteBuf): boolean {
    return this.wants(bytes, spec, spans) && this.renderWanted(bytes, spec, spans, out);
  }

  /** Whether --pid/--comm keep this record (counted in `filtered` when not). */
  wants(bytes: Uint8Array, spec: EventSpec, spans: RecordSpans): boolean {
    if (this.keep(bytes, spec, spans)) return true;
    this.filtered++;
    return false;
  }

  /**
   * render() for a record wants() kept: false only when the general path
   * refuses it. The session asks wants() before taking room in its window, so
   * a filtered record never leaves an empty segment behind (a path the
   * warm-up's records rarely take, and an exit from optimized code each time
   * a storm took it).
   */
  renderWanted(bytes: Uint8Array, spec: EventSpec, spans: RecordSpans, out: ByteBuf): boolean {
    out.ensure(this.room(spans));
    const end = this.renderFast(bytes, spec, spans, out.buf, out.view, out.len);
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

  /** The most bytes render() may write for a record of these spans (what it makes room for first). */
  room(spans: RecordSpans): number {
    return WORST_PER_BYTE * spans.size + WORST_FIXED + this.host.length * 6;
  }

  /** The general path's line (decodeEvent + jsonLine/tableRow); null for a record it refuses. */
  renderGeneral(bytes: Uint8Array): string | null {
    const d = decodeEvent(bytes, { maxArgs: this.opts.maxArgs });
    if (!d.ok) return null;
    return this.opts.json
      ? jsonLine(d.event, this.opts.bootWallNs, this.host)
      : tableRow(d.event, this.opts.width ?? tableWidth());
  }

  /**
   * The compiled path alone: the end of the line written at `p` of `out`
   * (`view`: a DataView of its bytes), or BAIL when the record needs the
   * general path. Constant text goes in 4-byte stores, so it may write up to
   * 3 bytes past the end it returns, within the room render() ensures.
   */
  renderFast(
    bytes: Uint8Array,
    spec: EventSpec,
    spans: RecordSpans,
    out: Uint8Array,
    view: DataView,
    p: number,
  ): number {
    if (!this.opts.json) {
      if (spec.struct === ds_exec) return this.row(bytes, spec, spans, out, p);
      const summary = SUMMARIES[spec.type];
      return summary === undefined ? BAIL : this.recordRow(bytes, spec, spans, summary, out, view, p);
    }
    const line = LINES[spec.type];
    return line === undefined ? BAIL : line(bytes, spans.off, spans.len, out, view, p, this);
  }

  get argsCut(): boolean {
    return this.walk.cut;
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

  /** `"YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"`, as rfc3339Nano(bootWallNs + ktime). */
  time(bytes: Uint8Array, out: Uint8Array, p: number): number {
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
  args(b: Uint8Array, s: number, n: number, out: Uint8Array, p: number): number {
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
    p = padded(out, p, this.words[spec.type]!, TYPE_WIDTH);
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
    summary: Generated,
    out: Uint8Array,
    view: DataView,
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
    const width = Math.max(16, (this.opts.width ?? tableWidth()) - TABLE_PREFIX - (p - info) - 1);
    out[p++] = 0x20;
    const start = p;
    p = summary(bytes, spans.off, spans.len, out, view, p, this);
    if (p === BAIL) return BAIL;
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
    const width = Math.max(16, (this.opts.width ?? tableWidth()) - TABLE_PREFIX - (p - info) - 5);
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
