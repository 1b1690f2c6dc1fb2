/**
 * Framing of the two kernel rings, as pure functions over their bytes: given
 * the data area and the producer/consumer positions, hand out each record and
 * say where the consumer stands afterwards. The readers do the mapping and the
 * memory ordering around these; tests feed them synthetic rings.
 *
 * Everything in the ring is treated as hostile: a length that cannot be framed
 * is counted as bad and ends the walk at the producer (there is no way to find
 * the next record), never an exception and never a read outside `data`.
 */

/** Gets one record's bytes: a view valid only until the handler returns. */
export type RecordHandler = (data: Uint8Array) => void;

export interface Framed {
  /** The new consumer position (data_tail / consumer_pos) to store. */
  tail: bigint;
  /** Bytes of ring consumed so far; kept current before each hand-out, so a throwing handler loses no progress. */
  consumed: number;
  /** Records handed to the handler. */
  records: number;
  /** Payload bytes handed to the handler. */
  bytes: number;
  /** Records the kernel reported dropped (perf's PERF_RECORD_LOST). */
  lost: number;
  /** Records that could not be framed. */
  bad: number;
}

export const PERF_RECORD_LOST = 2;
export const PERF_RECORD_SAMPLE = 9;
/** perf_event_header: u32 type, u16 misc, u16 size. */
const PERF_HEADER = 8;
/** A sample with PERF_SAMPLE_RAW only: the header, then u32 raw size. */
const PERF_SAMPLE_HEADER = 12;
/** A lost record: the header, u64 id, u64 lost. */
const PERF_LOST_MIN = 24;
/** perf_event_header.size is a u16, so no record (nor its payload) is larger. */
export const PERF_RECORD_MAX = 0xffff;

export const RINGBUF_BUSY = 0x80000000;
export const RINGBUF_DISCARD = 0x40000000;
/** Record header: u32 len (with the two flag bits), u32 page offset. */
export const RINGBUF_HEADER = 8;

/**
 * A word of our own memory for fences. JSC compiles Atomics.load on an
 * Int32Array to a locked read-modify-write on x86, which faults on the ring
 * buffer's read-only pages (measured: a SIGSEGV once the loop is JIT-compiled),
 * so ring memory is read with plain loads and ordered by this fence.
 */
const fenceWord = new Int32Array(1);

/**
 * Makes the plain loads before it acquire loads: nothing after it is read
 * before them. An atomic read-modify-write is a full barrier on every
 * architecture, and JSC's compilers treat an Atomics call as touching all
 * memory, so they move no typed-array load across it.
 */
export function acquireFence(): void {
  Atomics.add(fenceWord, 0, 0);
}

function emptyResult(tail: bigint): Framed {
  return { tail, consumed: 0, records: 0, bytes: 0, lost: 0, bad: 0 };
}

function reset(out: Framed, tail: bigint): void {
  out.tail = tail;
  out.consumed = 0;
  out.records = 0;
  out.bytes = 0;
  out.lost = 0;
  out.bad = 0;
}

/** Bytes available between the positions, or -1 when they cannot be those of a ring of `size` bytes. */
function span(head: bigint, tail: bigint, size: number): number {
  const n = head - tail;
  return n < 0n || n > BigInt(size) ? -1 : Number(n);
}

function isPow2(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 8 && 2 ** Math.round(Math.log2(n)) === n;
}

/** Little-endian read of `n` (<= 4) bytes at `at`, wrapping at the end of the ring. */
function wrappedUint(data: Uint8Array, at: number, n: number): number {
  const size = data.length;
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + data[(at + i) % size]!;
  return v;
}

/**
 * `len` bytes from `from` in a ring (data's length is its size): a view of
 * the ring, or, when they run past its end, a copy put together in
 * `scratch`; null when the scratch cannot hold them.
 */
function ringBytes(data: Uint8Array, from: number, len: number, scratch: Uint8Array): Uint8Array | null {
  const size = data.length;
  if (from + len <= size) return data.subarray(from, from + len);
  if (len > scratch.length) return null;
  const first = size - from;
  scratch.set(data.subarray(from, size), 0);
  scratch.set(data.subarray(0, len - first), first);
  return scratch.subarray(0, len);
}

/**
 * Walks a perf ring's data area (its length, a power of two, is the ring
 * size) from `tail` to `head`. Samples that wrap past the end are copied into
 * `scratch` (one copy); all others are handed out as views of `data`. With a
 * `budget`, stops at the first record boundary at or past that many bytes
 * (out.tail says where; the rest is read by the next call).
 */
export function framePerf(
  data: Uint8Array,
  head: bigint,
  tail: bigint,
  onRecord: RecordHandler,
  scratch: Uint8Array = new Uint8Array(PERF_RECORD_MAX),
  out: Framed = emptyResult(tail),
  budget = Number.POSITIVE_INFINITY,
): Framed {
  const size = data.length;
  if (!isPow2(size)) throw new RangeError(`perf ring of ${size} bytes is not a power of two`);
  reset(out, tail);
  const avail = span(head, tail, size);
  if (avail < 0) {
    // Positions no ring can have: nothing between them is trustworthy.
    out.bad = 1;
    out.tail = head;
    return out;
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const start = Number(tail % BigInt(size));
  const u32 = (at: number) => (at + 4 <= size ? dv.getUint32(at, true) : wrappedUint(data, at, 4));
  let done = 0;
  while (done < avail && done < budget) {
    const rest = avail - done;
    const at = (start + done) % size;
    const recSize =
      rest < PERF_HEADER ? 0 : at + PERF_HEADER <= size ? dv.getUint16(at + 6, true) : wrappedUint(data, at + 6, 2);
    if (recSize < PERF_HEADER || recSize > rest) {
      // Size 0, or past what the kernel published: the framing is lost.
      out.bad++;
      done = avail;
      break;
    }
    const type = u32(at);
    done += recSize;
    out.consumed = done;
    if (type === PERF_RECORD_SAMPLE) {
      const raw = recSize < PERF_SAMPLE_HEADER ? -1 : u32((at + 8) % size);
      if (raw < 0 || raw > recSize - PERF_SAMPLE_HEADER) {
        out.bad++;
        continue;
      }
      const view = ringBytes(data, (at + PERF_SAMPLE_HEADER) % size, raw, scratch);
      if (view === null) {
        // Only with a caller's undersized scratch: the readers' holds any record.
        out.bad++;
        continue;
      }
      out.records++;
      out.bytes += raw;
      onRecord(view);
    } else if (type === PERF_RECORD_LOST) {
      if (recSize < PERF_LOST_MIN) {
        out.bad++;
        continue;
      }
      const lo = u32((at + 16) % size);
      const hi = u32((at + 20) % size);
      out.lost += hi * 2 ** 32 + lo;
    }
    // Other record types (none enabled by our attr) are framed and skipped.
  }
  out.consumed = done;
  out.tail = tail + BigInt(done);
  return out;
}

/**
 * Walks a BPF ring buffer's data area from `consumer` to `producer`. `data`
 * is the area mapped once (its length, a power of two, is the ring size),
 * not twice in a row as the kernel offers it: the second copy's pages were
 * counted again in the agent's RSS (8 MiB at the default size). So a record
 * whose bytes run past the end is copied into `scratch` (one copy, once a
 * lap at most); all others are handed out as views of `data`. A header
 * never wraps: records start 8-aligned and the size is a multiple of 8.
 * Each header's length word is read with acquire semantics: the kernel
 * commits a record by clearing BUSY with a release.
 *
 * Stops at a record still BUSY (being written); skips DISCARDed ones.
 */
export function frameRingbuf(
  data: Uint8Array,
  producer: bigint,
  consumer: bigint,
  onRecord: RecordHandler,
  scratch: Uint8Array = new Uint8Array(PERF_RECORD_MAX),
  out: Framed = emptyResult(consumer),
): Framed {
  const size = data.length;
  if (!isPow2(size)) throw new RangeError(`ring buffer of ${size} bytes is not a power of two`);
  reset(out, consumer);
  const avail = span(producer, consumer, size);
  if (avail < 0) {
    out.bad = 1;
    out.tail = producer;
    return out;
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const start = Number(consumer % BigInt(size));
  let done = 0;
  while (done < avail) {
    const rest = avail - done;
    const at = (start + done) % size;
    if (rest < RINGBUF_HEADER || at % 8 !== 0) {
      // Positions move in whole 8-byte records; anything else is not ours to frame.
      out.bad++;
      done = avail;
      break;
    }
    const word = dv.getUint32(at, true);
    acquireFence();
    if (word & RINGBUF_BUSY) break;
    const len = word & ~(RINGBUF_BUSY | RINGBUF_DISCARD);
    const total = Math.ceil((len + RINGBUF_HEADER) / 8) * 8;
    if (total > rest) {
      out.bad++;
      done = avail;
      break;
    }
    done += total;
    out.consumed = done;
    if (word & RINGBUF_DISCARD) continue;
    const view = ringBytes(data, (at + RINGBUF_HEADER) % size, len, scratch);
    if (view === null) {
      // Only with a caller's undersized scratch: the reader's holds any record.
      out.bad++;
      continue;
    }
    out.records++;
    out.bytes += len;
    onRecord(view);
  }
  out.consumed = done;
  out.tail = consumer + BigInt(done);
  return out;
}
