/**
 * Renders bytes that may be anything (a corrupted slot, a hostile argv) as one
 * safe line: printable UTF-8 passes through, control characters, invalid UTF-8
 * bidi marks and line separators become \xNN or \u{...}, and the result is cut
 * to a width.
 */

/** Characters that reorder or hide text, or start a new line in some viewers: the bidi marks and overrides, U+2028-2029. */
const BIDI = /[\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

function hex(b: number): string {
  return `\\x${b.toString(16).padStart(2, "0")}`;
}

/** Length of a valid UTF-8 sequence starting at i, or 0. */
function utf8Len(b: Uint8Array, i: number): number {
  const c = b[i]!;
  const need = c >= 0xf5 ? 0 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (need === 0 || i + need > b.length) return 0;
  for (let k = 1; k < need; k++) if ((b[i + k]! & 0xc0) !== 0x80) return 0;
  const cp = need === 3 ? ((c & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) : 0;
  if (need === 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return 0;
  if (need === 4 && ((c === 0xf0 && b[i + 1]! < 0x90) || (c === 0xf4 && b[i + 1]! > 0x8f))) return 0;
  return need;
}

const dec = new TextDecoder();

/**
 * Printable ASCII up to the end (or to trailing NUL padding) and within the
 * width: the string as is. This is nearly every comm and path, and the
 * per-event cost of rendering is dominated by it.
 */
function plainAscii(b: Uint8Array, maxChars: number, cstr: boolean): string | null {
  let end = b.length;
  if (cstr) {
    const z = b.indexOf(0);
    if (z >= 0) {
      for (let k = z; k < b.length; k++) if (b[k] !== 0) return null;
      end = z;
    }
  }
  if (end > maxChars) return null;
  for (let k = 0; k < end; k++) {
    const c = b[k]!;
    if (c < 0x20 || c >= 0x7f || c === 0x5c) return null;
  }
  return end === 0 ? "" : String.fromCharCode.apply(null, b.subarray(0, end) as unknown as number[]);
}

/** Escapes raw bytes; stops at the first NUL when `cstr` (a C string in a fixed array). */
export function escapeBytes(b: Uint8Array, maxChars = 64, cstr = true): string {
  const plain = plainAscii(b, maxChars, cstr);
  if (plain !== null) return plain;
  const out: string[] = [];
  let width = 0;
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    if (c === 0 && cstr) {
      // Trailing NULs are C padding; NULs followed by data are damage worth showing.
      if (b.subarray(i).every((x) => x === 0)) break;
    }
    let piece: string;
    const seq = c >= 0x80 ? utf8Len(b, i) : 0;
    let step = seq > 0 ? seq : 1;
    if (c >= 0x20 && c < 0x7f) piece = c === 0x5c ? "\\\\" : String.fromCharCode(c);
    else if (seq > 0) {
      piece = dec.decode(b.subarray(i, i + step));
      // C1 controls (U+0080-U+009F, e.g. CSI U+009B) act on terminals like ESC does.
      const cp = piece.codePointAt(0)!;
      if (BIDI.test(piece) || cp <= 0x9f) piece = `\\u{${cp.toString(16)}}`;
    } else {
      step = 1;
      piece = hex(c);
    }
    // Keep room for the "…" itself: the result never exceeds maxChars.
    const rest = i + step < b.length && !(cstr && b.subarray(i + step).every((x) => x === 0));
    if (width + piece.length > maxChars - (rest ? 1 : 0)) {
      out.push("…");
      break;
    }
    out.push(piece);
    width += piece.length;
    i += step;
  }
  return out.join("");
}

const enc = new TextEncoder();

const SAFE_TEXT = /^[\x20-\x5b\x5d-\x7e]*$/;

/** The same for a JS string (already decoded, maybe with U+FFFD from invalid bytes). */
export function escapeText(s: string, maxChars = 64): string {
  if (s.length <= maxChars && SAFE_TEXT.test(s)) return s;
  return escapeBytes(enc.encode(s), maxChars, false);
}

/** What a terminal may act on rather than show: C0 controls but line feed and tab, DEL, C1, bidi marks, separators. */
const TERMINAL_UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/**
 * Multi-line text that came from elsewhere (a ClickHouse server's answer,
 * which holds the strings of every host's processes) made safe for a
 * terminal: lines, tabs and everything printable as they are, the rest as
 * \xNN or \u{...}.
 */
export function escapeForTerminal(s: string): string {
  return s.replace(TERMINAL_UNSAFE, (c) => {
    const cp = c.charCodeAt(0);
    return cp < 0x100 ? hex(cp) : `\\u{${cp.toString(16)}}`;
  });
}
