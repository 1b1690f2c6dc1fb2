/**
 * Rings laid out as the kernel writes them, holding given records: what the
 * agent's warm-up frames and renders after attach (Session.warmUp), and what
 * the render benchmark reads, without a kernel.
 */
import { PERF_RECORD_SAMPLE, RINGBUF_DISCARD, RINGBUF_HEADER } from "./framing.ts";

/** A ring's data area holding `records` once, from `tail` to `head`. */
export interface SyntheticRing {
  data: Uint8Array;
  head: bigint;
  tail: bigint;
}

/** `bytes` into the ring `data` from `at`, on from its start past its end. */
function putWrapped(data: Uint8Array, at: number, bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i++) data[(at + i) % data.length] = bytes[i]!;
}

function pow2Above(n: number): number {
  let size = 4096;
  while (size < n) size *= 2;
  return size;
}

/**
 * Perf samples as the kernel writes them: header, u32 raw size, the raw bytes
 * padded to 8 with the size word. `wrap`: the first record's bytes run past
 * the ring's end and on from its start, as a real ring's do every lap (the
 * reader's copy of such a record, a path the warm-up must take too).
 */
export function perfRing(records: readonly Uint8Array[], wrap = false): SyntheticRing {
  const sizes = records.map((r) => 8 + Math.ceil((4 + r.length) / 8) * 8);
  const total = sizes.reduce((a, b) => a + b, 0);
  const size = pow2Above(total);
  const data = new Uint8Array(size);
  // The header and the size word before the end, the record's bytes across it.
  const start = wrap && records.length > 0 && records[0]!.length > 4 ? size - 16 : 0;
  let at = start;
  records.forEach((r, i) => {
    const head = new Uint8Array(12);
    const dv = new DataView(head.buffer);
    dv.setUint32(0, PERF_RECORD_SAMPLE, true);
    dv.setUint16(6, sizes[i]!, true);
    dv.setUint32(8, sizes[i]! - 12, true);
    putWrapped(data, at, head);
    at += 12;
    putWrapped(data, at, r);
    at += sizes[i]! - 12;
  });
  return { data, head: BigInt(start + total), tail: BigInt(start) };
}

/**
 * Ring buffer records: u32 length, u32 page offset, the bytes, padded to 8;
 * the area mapped once, as the reader maps it. `wrap`: the first record's
 * bytes run past the ring's end and on from its start (the reader's copy of
 * such a record, a path the warm-up must take too). `discarded`: empty
 * records marked DISCARD after each one, which the reader's loop steps over
 * without handing them out.
 */
export function ringbufRing(records: readonly Uint8Array[], wrap = false, discarded = 0): SyntheticRing {
  const sizes = records.map((r) => Math.ceil((RINGBUF_HEADER + r.length) / 8) * 8 + discarded * RINGBUF_HEADER);
  const total = sizes.reduce((a, b) => a + b, 0);
  const size = pow2Above(total);
  const data = new Uint8Array(size);
  const dv = new DataView(data.buffer);
  // The header 16 bytes before the end, the record's bytes across it.
  const start = wrap && records.length > 0 && records[0]!.length > 8 ? size - 16 : 0;
  let at = start;
  records.forEach((r, i) => {
    dv.setUint32(at % size, r.length, true);
    putWrapped(data, at + RINGBUF_HEADER, r);
    for (let d = 1; d <= discarded; d++)
      dv.setUint32((at + sizes[i]! - d * RINGBUF_HEADER) % size, RINGBUF_DISCARD, true);
    at += sizes[i]!;
  });
  return { data, head: BigInt(start + total), tail: BigInt(start) };
}
