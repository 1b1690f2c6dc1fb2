/** jsonText, the renderers' JSON string body writer, against JSON.stringify on the same text. */
import { expect, test } from "bun:test";
import { BAIL, jsonEscapeHidden, jsonText } from "../../src/render/writers.ts";

const strict = new TextDecoder("utf-8", { fatal: true });

/** What jsonText must write for bytes b: JSON.stringify's body (hidden characters escaped), or BAIL. */
function reference(b: Uint8Array): string | typeof BAIL {
  let text: string;
  try {
    text = strict.decode(b);
  } catch {
    return BAIL;
  }
  return jsonEscapeHidden(JSON.stringify(text)).slice(1, -1);
}

/** Bytes a path or a name holds, and what it must not be mistaken for: every class the writer tells apart. */
const POOL = [
  ..."abcdefghijklmnopqrstuvwxyz/._-0123456789ABC ",
  '"',
  "\\",
  "\x00",
  "\x01",
  "\t",
  "\n",
  "\x1f",
  "\x7f",
  "é",
  "€",
  "😀",
  "\u200b",
  "\u2028",
].map((s) => new TextEncoder().encode(s));
const BROKEN = [[0x80], [0xc3], [0xe2, 0x82], [0xff], [0xed, 0xa0, 0x80]].map((a) => new Uint8Array(a));

test("jsonText writes what JSON.stringify writes, at every offset and length, on 50,000 generated strings", () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const src = new Uint8Array(512);
  const out = new Uint8Array(4096);
  const dec = new TextDecoder();
  let bails = 0;
  for (let t = 0; t < 50_000; t++) {
    const parts: Uint8Array[] = [];
    const n = rnd(40);
    const plainish = rnd(4) !== 0; // most strings are mostly plain ASCII, as paths are
    for (let k = 0; k < n; k++) {
      if (rnd(200) === 0) parts.push(BROKEN[rnd(BROKEN.length)]!);
      else parts.push(POOL[plainish && rnd(10) !== 0 ? rnd(44) : rnd(POOL.length)]!);
    }
    const len = parts.reduce((a, p) => a + p.length, 0);
    const at = rnd(src.length - len);
    let o = at;
    for (const p of parts) {
      src.set(p, o);
      o += p.length;
    }
    const b = src.subarray(at, o);
    const want = reference(b);
    const p0 = rnd(8);
    const got = jsonText(src, at, o, out, p0);
    if (want === BAIL) {
      expect(got).toBe(BAIL);
      bails++;
    } else {
      expect(got).not.toBe(BAIL);
      expect(dec.decode(out.subarray(p0, got))).toBe(want);
    }
  }
  expect(bails).toBeGreaterThan(100);
});
