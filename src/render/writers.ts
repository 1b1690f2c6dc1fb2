/**
 * The byte writers the compiled renderers are made of: integers, hex, octal,
 * IP addresses and string bodies written at an offset of a byte buffer, each
 * returning the new end, or BAIL when the value needs the general renderer
 * (escaping beyond JSON's, invalid UTF-8, text longer than its column).
 */
import { seqLen } from "../wire/decode.ts";

const enc = new TextEncoder();

/** Thrown nowhere: a renderer step returns BAIL and the record takes the general path. */
export const BAIL = -1;

/**
 * Digits of n (an integer, 0 <= n < 2^53) at `p`; returns the end. In int32
 * pieces: `%` and `/` on values past 2^31 are floating-point in the engine,
 * and cost more than the rest of a line put together.
 */
export function writeDec(b: Uint8Array, p: number, n: number): number {
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
  // hi < 2^53 / 1e8 < 2^31: no recursion, so the JIT can inline this into every caller.
  p = writeInt(b, p, hi);
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
export function digitCount(v: number): number {
  if (v < 100000) return v < 100 ? (v < 10 ? 1 : 2) : v < 1000 ? 3 : v < 10000 ? 4 : 5;
  return v < 10000000 ? (v < 1000000 ? 6 : 7) : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
}

/** Digits of an int32 v >= 0. */
export function writeInt(b: Uint8Array, p: number, v: number): number {
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
export function put(out: Uint8Array, p: number, src: Uint8Array): number {
  const n = src.length;
  for (let i = 0; i < n; i++) out[p + i] = src[i]!;
  return p + n;
}

/** A safe integer with its sign. */
export function writeNum(b: Uint8Array, p: number, v: number): number {
  if (v >= 0) return writeDec(b, p, v);
  b[p++] = 0x2d;
  return writeDec(b, p, -v);
}

/** A u32 in lower-case hex, at least `min` digits (zero-padded). */
export function writeHex(b: Uint8Array, p: number, v: number, min: number): number {
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
export function writeOctal(b: Uint8Array, p: number, v: number, min: number): number {
  let n = 1;
  while (n < 11 && v >>> (3 * n) !== 0) n++;
  if (n < min) n = min;
  for (let k = n - 1; k >= 0; k--) {
    b[p + k] = 48 + (v & 7);
    v >>>= 3;
  }
  return p + n;
}

export function dotted(src: Uint8Array, at: number, out: Uint8Array, p: number): number {
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
export function writeIp(src: Uint8Array, family: number, at: number, out: Uint8Array, p: number): number {
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
export function plainText(src: Uint8Array, s: number, e: number, out: Uint8Array, p: number): number {
  for (let i = s; i < e; i++) {
    const c = src[i]!;
    if (c < 0x20 || c >= 0x7f || c === 0x5c) return BAIL;
    out[p++] = c;
  }
  return p;
}

/**
 * The code point of the valid UTF-8 sequence of `n` bytes at `i` when it is
 * one that jsonEscapeHidden() escapes, else 0: C1 controls (U+0080-U+009F: a
 * terminal may take U+009B as CSI), the bidi marks and overrides, and the line
 * and paragraph separators (which start a new line in some viewers).
 */
function hiddenCodePoint(src: Uint8Array, i: number, n: number): number {
  const c = src[i]!;
  if (n === 2) {
    const b1 = src[i + 1]!;
    if (c === 0xc2) return b1 <= 0x9f ? b1 : 0;
    return c === 0xd8 && b1 === 0x9c ? 0x061c : 0;
  }
  if (n !== 3 || c !== 0xe2) return 0;
  const b1 = src[i + 1]!;
  const b2 = src[i + 2]!;
  if (b1 === 0x80) return (b2 >= 0x8e && b2 <= 0x8f) || (b2 >= 0xa8 && b2 <= 0xae) ? 0x2000 | (b2 & 0x3f) : 0;
  return b1 === 0x81 && b2 >= 0xa6 && b2 <= 0xa9 ? 0x2040 | (b2 & 0x3f) : 0;
}

/** What JSON.stringify leaves as is but a line of ours escapes (see hiddenCodePoint); only ever inside strings. */
const HIDDEN = /[\u0080-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

const HAS_HIDDEN = new RegExp(HIDDEN.source);

/** Whether a string holds one of hiddenCodePoint()'s characters. */
export function hasHidden(s: string): boolean {
  return HAS_HIDDEN.test(s);
}

/** JSON.stringify's output with hiddenCodePoint()'s characters as \uXXXX: the same JSON, safe to look at. */
export function jsonEscapeHidden(json: string): string {
  if (!HAS_HIDDEN.test(json)) return json;
  return json.replace(HIDDEN, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** \uXXXX, lower-case hex as JSON.stringify writes it. */
function writeEscape(out: Uint8Array, p: number, cp: number): number {
  out[p++] = 0x5c;
  out[p++] = 117;
  for (let k = 12; k >= 0; k -= 4) {
    const d = (cp >> k) & 15;
    out[p++] = d < 10 ? 48 + d : 87 + d;
  }
  return p;
}

/**
 * Whether the four bytes of x (little-endian) go into a JSON string as they
 * are: each in 0x20..0x7f and none a '"' or a '\\'. Each test sets a byte's
 * top bit for a byte that fails it (the carries of the subtractions can only
 * flag a byte above one that already failed, so any flag means a failure).
 */
function plain4(x: number): boolean {
  const q = x ^ 0x22222222;
  const bs = x ^ 0x5c5c5c5c;
  return ((((x - 0x20202020) & ~x) | x | ((q - 0x01010101) & ~q) | ((bs - 0x01010101) & ~bs)) & 0x80808080) === 0;
}

/**
 * Bytes of a JSON string's body for [s, e) of `src`, as JSON.stringify writes
 * valid UTF-8 (and jsonEscapeHidden() after it); BAIL when it is not valid.
 */
export function jsonText(src: Uint8Array, s: number, e: number, out: Uint8Array, p: number): number {
  for (let i = s; i < e; ) {
    // Most of a path or a name is plain ASCII: four bytes at a time, one test for all four (1.7x in a
    // hot loop over exec lines' strings), then byte by byte from the first that needs a look.
    while (i + 4 <= e) {
      const a = src[i]!;
      const b = src[i + 1]!;
      const c = src[i + 2]!;
      const d = src[i + 3]!;
      if (!plain4(a | (b << 8) | (c << 16) | (d << 24))) break;
      out[p] = a;
      out[p + 1] = b;
      out[p + 2] = c;
      out[p + 3] = d;
      p += 4;
      i += 4;
    }
    if (i >= e) break;
    const c = src[i]!;
    if (c >= 0x20 && c < 0x80) {
      if (c === 0x22 || c === 0x5c) out[p++] = 0x5c;
      out[p++] = c;
      i++;
    } else if (c >= 0x80) {
      const n = seqLen(src, i, e);
      if (n === 0) return BAIL;
      const hidden = n <= 3 ? hiddenCodePoint(src, i, n) : 0;
      if (hidden !== 0) p = writeEscape(out, p, hidden);
      else for (let k = 0; k < n; k++) out[p++] = src[i + k]!;
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
export function plainEnd(b: Uint8Array, s: number, e: number, maxChars: number): number {
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
export function copyPlainJson(src: Uint8Array, s: number, e: number, out: Uint8Array, p: number): number {
  for (let i = s; i < e; i++) {
    const c = src[i]!;
    if (c === 0x22) out[p++] = 0x5c;
    out[p++] = c;
  }
  return p;
}

/** Whether the whole argv area is valid UTF-8 (splitArgs decides escaping for the whole area). */
export function validUtf8(b: Uint8Array, s: number, e: number): boolean {
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

const TRUE = enc.encode("true");
const FALSE = enc.encode("false");

export function writeBool(out: Uint8Array, p: number, v: boolean): number {
  return put(out, p, v ? TRUE : FALSE);
}
