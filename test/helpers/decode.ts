/** Decoding helpers shared by the decoder's unit tests. */
import { expect } from "bun:test";
import { type Decoded, decodeEvent, type ExecEvent, isExecEvent } from "../../src/wire/decode.ts";

export const enc = new TextEncoder();

export function decode(b: Uint8Array, maxArgs = 32): Decoded {
  return decodeEvent(b, { maxArgs });
}

export function ok(b: Uint8Array, maxArgs = 32): ExecEvent {
  const r = decode(b, maxArgs);
  if (!r.ok) throw new Error(`expected ok, got malformed: ${r.reason}`);
  if (!isExecEvent(r.event)) throw new Error(`expected an exec-path event, got ${r.event.type}`);
  return r.event;
}

export function malformed(b: Uint8Array, maxArgs = 32): string {
  let r: Decoded;
  try {
    r = decode(b, maxArgs);
  } catch (e) {
    throw new Error(`decodeEvent threw instead of returning ok:false: ${String(e)}`);
  }
  if (r.ok) {
    const e = r.event;
    throw new Error(`expected malformed, decoded ok: ${e.encoding} event, size ${e.size} of a ${b.length}-byte sample`);
  }
  expect(typeof r.reason).toBe("string");
  expect(r.reason.length).toBeGreaterThan(0);
  return r.reason;
}

export function pad16(s: string): Uint8Array {
  const b = new Uint8Array(16);
  b.set(enc.encode(s).subarray(0, 16));
  return b;
}
