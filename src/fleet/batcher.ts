/**
 * Rows for the table, collected into batches: by count (--sink-batch), by
 * bytes, and by age (--sink-flush), whichever comes first.
 *
 * A row is the agent's own NDJSON line, not re-rendered (its escaping of
 * hostile kernel strings is the one that is tested), with the sink's fields
 * spliced in: `{"run":R,"seq":N,` + the line's members + `,"ts":S}` (S: `time`
 * in epoch seconds), and for the
 * record types whose nested objects have no column (`rawFor`), `,"raw":"<line>"`
 * before the brace. Not for every type: a copy of each exec line doubled the
 * bytes to escape and compress, the agent's CPU per event with them.
 * `run` and `seq` are the row's identity: a replayed batch carries the same
 * bytes, so ReplacingMergeTree folds it into the rows already there.
 */
import { ByteBuf } from "../output/bytebuf.ts";

export interface Batch {
  /** seq of the first and last row. */
  first: number;
  last: number;
  rows: number;
  /** JSONEachRow, one row per line. */
  body: Buffer;
}

export interface BatcherOptions {
  run: string;
  maxRows: number;
  maxBytes: number;
  maxAgeMs: number;
  /** Event types whose rows carry the line as `raw` (see ddl.ts: those with nested objects). */
  rawFor?: ReadonlySet<string>;
  now?: () => number;
}

const EVENT_KEY = Buffer.from(',"event":"');
const TIME_KEY = Buffer.from(',"time":"');
const TS_KEY = Buffer.from(',"ts":');

/** Days from 1970-01-01 to y-m-d (proleptic Gregorian), Howard Hinnant's days_from_civil. */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const HEX = "0123456789abcdef";

export class Batcher {
  private out = new ByteBuf(1 << 20);
  private rows = 0;
  private first = 1;
  /** The seq the next row gets. */
  private next = 1;
  private openedAt = 0;
  private readonly prefix: Buffer;
  private readonly now: () => number;

  constructor(private readonly o: BatcherOptions) {
    this.prefix = Buffer.from(`{"run":${JSON.stringify(o.run)},"seq":`);
    this.now = o.now ?? (() => performance.now());
  }

  /** Rows handed out so far (the last seq). */
  get assigned(): number {
    return this.next - 1;
  }

  get pendingRows(): number {
    return this.rows;
  }

  /** Appends one NDJSON line (`{...}`, no newline); false when it is not an object. */
  push(src: Buffer, start: number, end: number): boolean {
    if (end - start < 2 || src[start] !== 0x7b || src[end - 1] !== 0x7d) return false;
    const b = this.out;
    // Worst case: the line twice, each byte of the copy escaped to 6.
    b.ensure(this.prefix.length + 24 + (end - start) * 7 + 48);
    if (this.rows === 0) {
      this.first = this.next;
      this.openedAt = this.now();
    }
    let at = b.len;
    const buf = b.buf;
    at += this.prefix.copy(buf, at);
    at += buf.write(String(this.next), at, "latin1");
    buf[at++] = 0x2c; // ,
    const inner = end - start - 2;
    if (inner > 0) src.copy(buf, at, start + 1, end - 1);
    at += inner;
    if (inner === 0) at--; // `{}`: the comma after seq is the one before ts
    at += TS_KEY.copy(buf, at);
    at += buf.write(String(this.epochSeconds(src, start, end)), at, "latin1");
    if (!this.wantsRaw(src, start, end)) {
      buf[at++] = 0x7d;
      buf[at++] = 0x0a;
      b.len = at;
      this.rows++;
      this.next++;
      return true;
    }
    if (inner > 0) buf[at++] = 0x2c;
    at += buf.write('"raw":"', at, "latin1");
    for (let i = start; i < end; i++) {
      const c = src[i]!;
      if (c === QUOTE || c === BACKSLASH) {
        buf[at++] = BACKSLASH;
        buf[at++] = c;
      } else if (c < 0x20) {
        // Not in a rendered line (its strings are escaped), but a raw byte here would end the row.
        at += buf.write(`\\u00${HEX[c >> 4]}${HEX[c & 15]}`, at, "latin1");
      } else buf[at++] = c;
    }
    buf[at++] = QUOTE;
    buf[at++] = 0x7d;
    buf[at++] = 0x0a;
    b.len = at;
    this.rows++;
    this.next++;
    return true;
  }

  /**
   * The line's `time` (RFC 3339 UTC) in whole seconds since the epoch, for the
   * `ts` column: the table's partition and sorting key, sent rather than
   * computed by the server because 18.16's Distributed tables forward
   * MATERIALIZED columns to the shards, which refuse them. 0 without a time.
   */
  private epochSeconds(src: Buffer, start: number, end: number): number {
    const at = src.indexOf(TIME_KEY, start);
    const p = at + TIME_KEY.length;
    if (at < 0 || p + 19 > end) return 0;
    const n = (i: number, len: number) => {
      let v = 0;
      for (let k = 0; k < len; k++) {
        const c = src[p + i + k]! - 48;
        if (c < 0 || c > 9) return Number.NaN;
        v = v * 10 + c;
      }
      return v;
    };
    const secs = daysFromCivil(n(0, 4), n(5, 2), n(8, 2)) * 86400 + n(11, 2) * 3600 + n(14, 2) * 60 + n(17, 2);
    return Number.isFinite(secs) && secs >= 0 ? secs : 0;
  }

  /**
   * Whether the line's type is in rawFor. Its first `,"event":"` is the key:
   * inside a string every quote is escaped, so the sequence cannot occur there.
   */
  private wantsRaw(src: Buffer, start: number, end: number): boolean {
    const raw = this.o.rawFor;
    if (raw === undefined || raw.size === 0) return false;
    const at = src.indexOf(EVENT_KEY, start);
    if (at < 0 || at >= end) return false;
    const from = at + EVENT_KEY.length;
    const close = src.indexOf(QUOTE, from);
    return close > from && close < end && raw.has(src.toString("latin1", from, close));
  }

  pushString(line: string): boolean {
    const bytes = Buffer.from(line);
    return this.push(bytes, 0, bytes.length);
  }

  /** A batch is full, or its oldest row has waited maxAgeMs. */
  due(): boolean {
    if (this.rows === 0) return false;
    return (
      this.rows >= this.o.maxRows || this.out.len >= this.o.maxBytes || this.now() - this.openedAt >= this.o.maxAgeMs
    );
  }

  /** Until the open batch is due by age, in ms (0: due now); Infinity with no rows waiting. */
  msUntilDue(): number {
    if (this.rows === 0) return Number.POSITIVE_INFINITY;
    return Math.max(0, this.o.maxAgeMs - (this.now() - this.openedAt));
  }

  /** The rows so far as one batch (null when there are none); the next batch starts empty. */
  seal(): Batch | null {
    if (this.rows === 0) return null;
    const body = Buffer.from(this.out.buf.subarray(0, this.out.len));
    const batch = { first: this.first, last: this.next - 1, rows: this.rows, body };
    this.out.len = 0;
    this.rows = 0;
    return batch;
  }
}
