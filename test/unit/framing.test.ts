/**
 * Ring framing on synthetic ring contents: what the readers hand out, count
 * and skip, and where they leave the consumer, for both perf rings and BPF
 * ring buffers, including hostile lengths and positions past 2^32.
 */
import { describe, expect, test } from "bun:test";
import { parseCpuIds } from "../../src/ebpf/host-facts.ts";
import {
  framePerf,
  frameRingbuf,
  PERF_RECORD_LOST,
  PERF_RECORD_SAMPLE,
  RINGBUF_BUSY,
  RINGBUF_DISCARD,
} from "../../src/reader/framing.ts";
import { perfRing, ringbufRing } from "../../src/reader/synthetic-ring.ts";

/** A perf data area that records are written into at 64-bit positions, wrapping like the kernel does. */
class PerfRing {
  readonly data: Uint8Array;
  head: bigint;

  constructor(
    size: number,
    readonly tail: bigint,
  ) {
    this.data = new Uint8Array(size);
    this.head = tail;
  }

  private put(bytes: Uint8Array): void {
    const size = this.data.length;
    const at = Number(this.head % BigInt(size));
    for (let i = 0; i < bytes.length; i++) this.data[(at + i) % size] = bytes[i]!;
    this.head += BigInt(bytes.length);
  }

  /** A record of `size` bytes (header included) whose body is `body`. */
  record(type: number, size: number, body: Uint8Array): this {
    // The header is always there, whatever size it claims.
    const r = new Uint8Array(Math.max(8, size));
    const dv = new DataView(r.buffer);
    dv.setUint32(0, type, true);
    dv.setUint16(6, size, true);
    r.set(body.subarray(0, Math.max(0, size - 8)), 8);
    this.put(r);
    return this;
  }

  /** PERF_RECORD_SAMPLE with a raw payload, padded as the kernel pads it (u32 size + data to 8 bytes). */
  sample(payload: Uint8Array, raw = Math.ceil((payload.length + 4) / 8) * 8 - 4): this {
    const body = new Uint8Array(4 + raw);
    new DataView(body.buffer).setUint32(0, raw, true);
    body.set(payload, 4);
    return this.record(PERF_RECORD_SAMPLE, 8 + body.length, body);
  }

  lost(n: bigint): this {
    const body = new Uint8Array(24);
    const dv = new DataView(body.buffer);
    dv.setBigUint64(0, 7n, true); // id
    dv.setBigUint64(8, n, true);
    return this.record(PERF_RECORD_LOST, 32, body);
  }
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (seed + i) & 0xff);

function collect(): { got: Uint8Array[]; onRecord: (d: Uint8Array) => void } {
  const got: Uint8Array[] = [];
  return { got, onRecord: (d) => got.push(d.slice()) };
}

describe("perf ring framing", () => {
  test("samples back to back come out in order, as views into the ring", () => {
    const ring = new PerfRing(4096, 0n).sample(bytes(20, 1)).sample(bytes(100, 2)).sample(bytes(4, 3));
    const views: Uint8Array[] = [];
    const { got, onRecord } = collect();
    const f = framePerf(ring.data, ring.head, ring.tail, (d) => {
      views.push(d);
      onRecord(d);
    });
    expect(got).toEqual([bytes(20, 1), bytes(100, 2), bytes(4, 3)]);
    for (const v of views) expect(v.buffer).toBe(ring.data.buffer);
    expect(f).toMatchObject({ tail: ring.head, records: 3, bytes: 124, lost: 0, bad: 0 });
  });

  test("a budget stops at the first record boundary at or past it; the next call goes on from there", () => {
    const ring = new PerfRing(256, 256n - 48n);
    for (let i = 0; i < 6; i++) ring.sample(bytes(20, i)); // 32 bytes each, the third across the end
    const { got, onRecord } = collect();
    const first = framePerf(ring.data, ring.head, ring.tail, onRecord, undefined, undefined, 40);
    expect(first).toMatchObject({ tail: ring.tail + 64n, records: 2, consumed: 64 });
    const second = framePerf(ring.data, ring.head, first.tail, onRecord, undefined, undefined, 1);
    expect(second).toMatchObject({ tail: ring.tail + 96n, records: 1 });
    const rest = framePerf(ring.data, ring.head, second.tail, onRecord, undefined, undefined, 1e9);
    expect(rest).toMatchObject({ tail: ring.head, records: 3, bad: 0 });
    expect(got.map((g) => g.subarray(0, 20))).toEqual([0, 1, 2, 3, 4, 5].map((i) => bytes(20, i)));
  });

  test("a sample that wraps past the end is put back together in one piece", () => {
    // Start 40 bytes before the end: the second sample's payload crosses it.
    const ring = new PerfRing(256, 256n * 3n - 40n).sample(bytes(4, 9)).sample(bytes(60, 50));
    const scratch = new Uint8Array(0x10000);
    const views: Uint8Array[] = [];
    const { got, onRecord } = collect();
    const f = framePerf(
      ring.data,
      ring.head,
      ring.tail,
      (d) => {
        views.push(d);
        onRecord(d);
      },
      scratch,
    );
    expect(got[0]).toEqual(bytes(4, 9));
    expect(got[1]!.subarray(0, 60)).toEqual(bytes(60, 50));
    expect(views[0]!.buffer).toBe(ring.data.buffer);
    expect(views[1]!.buffer).toBe(scratch.buffer);
    expect(f).toMatchObject({ tail: ring.head, records: 2, bad: 0 });
  });

  test("the warm-up's synthetic ring (perfRing with wrap) puts its first record across the end, as real laps do", () => {
    const records = [bytes(100, 1), bytes(37, 2), bytes(8, 3)];
    for (const wrap of [false, true]) {
      const ring = perfRing(records, wrap);
      const scratch = new Uint8Array(0x10000);
      const views: Uint8Array[] = [];
      const copied: boolean[] = [];
      const f = framePerf(
        ring.data,
        ring.head,
        ring.tail,
        (d) => {
          views.push(d.slice());
          copied.push(d.buffer === scratch.buffer);
        },
        scratch,
      );
      expect(f).toMatchObject({ tail: ring.head, records: 3, bad: 0 });
      // The raw area is padded to 8 with its size word: each record's own bytes come first.
      expect(views.map((v, i) => [...v.subarray(0, records[i]!.length)])).toEqual(records.map((r) => [...r]));
      // Wrapped, the first record starts 16 bytes before the end and the reader puts it together.
      expect(ring.tail).toBe(wrap ? BigInt(ring.data.length - 16) : 0n);
      expect(copied).toEqual([wrap, false, false]);
    }
  });

  test("a record whose header itself wraps is still framed", () => {
    // 4 bytes before the end: the header's size field is in the ring's first bytes.
    const ring = new PerfRing(256, 252n).sample(bytes(12, 7));
    const { got, onRecord } = collect();
    const f = framePerf(ring.data, ring.head, ring.tail, onRecord);
    expect(got).toEqual([bytes(12, 7)]);
    expect(f).toMatchObject({ tail: ring.head, records: 1, bad: 0 });
  });

  test("a LOST record is counted, not handed out", () => {
    const ring = new PerfRing(4096, 0n)
      .sample(bytes(4, 1))
      .lost(5n)
      .sample(bytes(4, 2))
      .lost(2n ** 33n);
    const { got, onRecord } = collect();
    const f = framePerf(ring.data, ring.head, ring.tail, onRecord);
    expect(got).toEqual([bytes(4, 1), bytes(4, 2)]);
    expect(f).toMatchObject({ tail: ring.head, records: 2, lost: 5 + 2 ** 33, bad: 0 });
  });

  test("a zero-size record is bad and ends the walk at head, without looping", () => {
    const ring = new PerfRing(4096, 0n)
      .sample(bytes(4, 1))
      .record(PERF_RECORD_SAMPLE, 0, new Uint8Array())
      .sample(bytes(4, 2));
    const { got, onRecord } = collect();
    const f = framePerf(ring.data, ring.head, ring.tail, onRecord);
    expect(got).toEqual([bytes(4, 1)]);
    expect(f).toMatchObject({ tail: ring.head, records: 1, bad: 1 });
  });

  test("a record larger than what the kernel published, or than the ring, is bad", () => {
    const big = new PerfRing(256, 0n).record(PERF_RECORD_SAMPLE, 16, new Uint8Array(8));
    new DataView(big.data.buffer).setUint16(6, 0xfff8, true);
    const { got, onRecord } = collect();
    expect(framePerf(big.data, big.head, big.tail, onRecord)).toMatchObject({ tail: big.head, records: 0, bad: 1 });
    expect(got).toEqual([]);
  });

  test("a raw size past the record's end is bad, and the next record still comes out", () => {
    // A 16-byte record claiming 4000 raw bytes.
    const body = new Uint8Array(8);
    new DataView(body.buffer).setUint32(0, 4000, true);
    const ring = new PerfRing(4096, 0n).record(PERF_RECORD_SAMPLE, 16, body).sample(bytes(4, 2));
    const { got, onRecord } = collect();
    const f = framePerf(ring.data, ring.head, ring.tail, onRecord);
    expect(got).toEqual([bytes(4, 2)]);
    expect(f).toMatchObject({ tail: ring.head, records: 1, bad: 1 });
  });

  test("positions no ring can have are bad; tail moves to head", () => {
    const ring = new PerfRing(256, 1000n);
    expect(framePerf(ring.data, 2000n, 1000n, () => {})).toMatchObject({ tail: 2000n, bad: 1, records: 0 });
    expect(framePerf(ring.data, 500n, 1000n, () => {})).toMatchObject({ tail: 500n, bad: 1, records: 0 });
  });

  test("positions beyond 2^32 (and 2^53) frame like small ones", () => {
    for (const start of [2n ** 32n - 24n, 2n ** 40n + 4096n - 16n, 2n ** 60n - 8n]) {
      const ring = new PerfRing(4096, start).sample(bytes(30, 1)).lost(3n).sample(bytes(200, 2));
      const { got, onRecord } = collect();
      const f = framePerf(ring.data, ring.head, ring.tail, onRecord);
      expect(got.map((d) => d.length)).toEqual([36, 204]);
      expect(got[0]!.subarray(0, 30)).toEqual(bytes(30, 1));
      expect(got[1]!.subarray(0, 200)).toEqual(bytes(200, 2));
      expect(f).toMatchObject({ tail: ring.head, records: 2, lost: 3, bad: 0 });
    }
  });

  test("a handler that throws leaves the progress up to and including its record", () => {
    const ring = new PerfRing(4096, 0n).sample(bytes(4, 1)).sample(bytes(4, 2)).sample(bytes(4, 3));
    const f = { tail: 0n, consumed: 0, records: 0, bytes: 0, lost: 0, bad: 0 };
    let n = 0;
    expect(() =>
      framePerf(
        ring.data,
        ring.head,
        ring.tail,
        () => {
          if (++n === 2) throw new Error("sink");
        },
        undefined,
        f,
      ),
    ).toThrow("sink");
    expect(f.consumed).toBe(32);
  });
});

/** A ring buffer data area of `size` bytes, kept mapped twice in a row as the kernel maps it. */
class RingBuf {
  readonly data: Uint8Array;
  producer: bigint;

  constructor(
    readonly size: number,
    readonly consumer: bigint,
  ) {
    this.data = new Uint8Array(size);
    this.producer = consumer;
  }

  record(payload: Uint8Array, flags = 0): this {
    const at = Number(this.producer % BigInt(this.size));
    const rec = new Uint8Array(Math.ceil((8 + payload.length) / 8) * 8);
    const dv = new DataView(rec.buffer);
    dv.setUint32(0, (payload.length | flags) >>> 0, true);
    dv.setUint32(4, 0, true);
    rec.set(payload, 8);
    for (let i = 0; i < rec.length; i++) this.data[(at + i) % this.size] = rec[i]!;
    this.producer += BigInt(rec.length);
    return this;
  }
}

describe("BPF ring buffer framing", () => {
  test("records back to back come out in order, as views, up to the end without a copy", () => {
    // The first one's 24 bytes end exactly at the end; the next starts over at 0.
    const rb = new RingBuf(4096, 4096n - 24n).record(bytes(10, 1)).record(bytes(300, 2)).record(bytes(0, 0));
    const views: Uint8Array[] = [];
    const { got, onRecord } = collect();
    const f = frameRingbuf(rb.data, rb.producer, rb.consumer, (d) => {
      views.push(d);
      onRecord(d);
    });
    expect(got).toEqual([bytes(10, 1), bytes(300, 2), new Uint8Array()]);
    for (const v of views) expect(v.buffer).toBe(rb.data.buffer);
    expect(f).toMatchObject({ tail: rb.producer, records: 3, bytes: 310, bad: 0 });
  });

  test("a record whose bytes run past the end comes out whole, put together in the scratch", () => {
    // The header 16 bytes before the end, its 300 bytes across it; then one after it.
    const rb = new RingBuf(4096, 3n * 4096n - 16n).record(bytes(300, 7)).record(bytes(20, 8));
    const scratch = new Uint8Array(1024);
    const views: Uint8Array[] = [];
    const { got, onRecord } = collect();
    const f = frameRingbuf(
      rb.data,
      rb.producer,
      rb.consumer,
      (d) => {
        views.push(d);
        onRecord(d);
      },
      scratch,
    );
    expect(got).toEqual([bytes(300, 7), bytes(20, 8)]);
    expect(views[0]!.buffer).toBe(scratch.buffer);
    expect(views[1]!.buffer).toBe(rb.data.buffer);
    expect(f).toMatchObject({ tail: rb.producer, records: 2, bytes: 320, bad: 0 });
  });

  test("a wrapping record larger than the scratch is bad, and the walk goes on after it", () => {
    const rb = new RingBuf(4096, 4096n - 24n).record(bytes(100, 1)).record(bytes(10, 2));
    const { got, onRecord } = collect();
    const f = frameRingbuf(rb.data, rb.producer, rb.consumer, onRecord, new Uint8Array(64));
    expect(got).toEqual([bytes(10, 2)]);
    expect(f).toMatchObject({ tail: rb.producer, records: 1, bad: 1 });
  });

  test("the warm-up's synthetic ring (wrapping, with discarded records between) frames back the records it was given", () => {
    const records = [bytes(50, 1), bytes(9, 2), bytes(200, 3)];
    for (const wrap of [false, true])
      for (const discarded of [0, 8]) {
        const ring = ringbufRing(records, wrap, discarded);
        const { got, onRecord } = collect();
        const f = frameRingbuf(ring.data, ring.head, ring.tail, onRecord);
        expect(got).toEqual(records);
        expect(f).toMatchObject({ tail: ring.head, records: 3, bad: 0 });
        // Each discarded record is a header alone, stepped over.
        expect(f.consumed).toBe(64 + 24 + 208 + 3 * discarded * 8);
        if (wrap) expect(Number(ring.tail) + 16).toBe(ring.data.length); // the first record's bytes cross the end
      }
  });

  test("a BUSY record stops the walk; the consumer stays on it", () => {
    const rb = new RingBuf(4096, 0n).record(bytes(10, 1));
    const busyAt = rb.producer;
    rb.record(bytes(10, 2), RINGBUF_BUSY).record(bytes(10, 3));
    const { got, onRecord } = collect();
    const f = frameRingbuf(rb.data, rb.producer, rb.consumer, onRecord);
    expect(got).toEqual([bytes(10, 1)]);
    expect(f).toMatchObject({ tail: busyAt, records: 1, bad: 0 });
  });

  test("a DISCARDed record is skipped", () => {
    const rb = new RingBuf(4096, 0n).record(bytes(10, 1)).record(bytes(10, 2), RINGBUF_DISCARD).record(bytes(10, 3));
    const { got, onRecord } = collect();
    const f = frameRingbuf(rb.data, rb.producer, rb.consumer, onRecord);
    expect(got).toEqual([bytes(10, 1), bytes(10, 3)]);
    expect(f).toMatchObject({ tail: rb.producer, records: 2, bytes: 20, bad: 0 });
  });

  test("a length past the producer is bad and ends the walk there", () => {
    const rb = new RingBuf(4096, 0n).record(bytes(10, 1)).record(bytes(10, 2));
    new DataView(rb.data.buffer).setUint32(24, 0x3fffffff, true);
    const { got, onRecord } = collect();
    const f = frameRingbuf(rb.data, rb.producer, rb.consumer, onRecord);
    expect(got).toEqual([bytes(10, 1)]);
    expect(f).toMatchObject({ tail: rb.producer, records: 1, bad: 1 });
  });

  test("positions no ring can have are bad; the consumer moves to the producer", () => {
    const rb = new RingBuf(4096, 0n);
    expect(frameRingbuf(rb.data, 8192n, 0n, () => {})).toMatchObject({ tail: 8192n, bad: 1 });
    expect(frameRingbuf(rb.data, 8n, 16n, () => {})).toMatchObject({ tail: 8n, bad: 1 });
    expect(frameRingbuf(rb.data, 12n, 4n, () => {})).toMatchObject({ tail: 12n, bad: 1 });
  });

  test("positions beyond 2^32 frame like small ones", () => {
    for (const start of [2n ** 32n - 16n, 2n ** 33n + 4096n - 8n, 2n ** 62n - 32n]) {
      const rb = new RingBuf(4096, start).record(bytes(40, 1)).record(bytes(5, 2));
      const { got, onRecord } = collect();
      const f = frameRingbuf(rb.data, rb.producer, rb.consumer, onRecord);
      expect(got).toEqual([bytes(40, 1), bytes(5, 2)]);
      expect(f).toMatchObject({ tail: rb.producer, records: 2, bad: 0 });
    }
  });
});

describe("perf reader's CPU list", () => {
  // Buffer i is that of the i-th CPU named here, so a gap (an offline CPU) must survive parsing.
  test("ranges and gaps come out as CPU numbers, in order", () => {
    expect(parseCpuIds("0-1\n")).toEqual([0, 1]);
    expect(parseCpuIds("0,2-3,7")).toEqual([0, 2, 3, 7]);
    expect(parseCpuIds("5")).toEqual([5]);
  });

  test("anything else is an error, not a guess", () => {
    for (const bad of ["a", "3-1", "0-", "-1", "0-99999999"]) expect(() => parseCpuIds(bad)).toThrow();
  });
});
