import { describe, expect, test } from "bun:test";
import { escapeBytes, escapeForTerminal, escapeText } from "../../src/render/escape.ts";
import { mulberry32 } from "../helpers/synth.ts";

const B = (...xs: Array<number | string>): Uint8Array =>
  Uint8Array.from(xs.flatMap((x) => (typeof x === "string" ? [...new TextEncoder().encode(x)] : [x])));

/** C0 controls, DEL and ESC: never allowed raw in the output. */
const RAW_C0 = /[\x00-\x1f\x7f]/;
/** C1 controls (U+0080..U+009F): U+009B is CSI for 8-bit terminals, U+0085 is NEL. */
const RAW_C1 = /[\u0080-\u009f]/;
/** Bidi marks and overrides, and the line and paragraph separators (a new line in some viewers). */
const RAW_BIDI = /[\u061c\u202a-\u202e\u2066-\u2069\u200e\u200f\u2028\u2029]/;

function assertSafe(out: string): void {
  expect(RAW_C0.test(out)).toBe(false);
  expect(RAW_BIDI.test(out)).toBe(false);
}

/** Display width in code points (what a terminal column count is closest to for these tests). */
const width = (s: string) => [...s].length;

describe("control characters", () => {
  test("every C0 control and DEL becomes \\xNN", () => {
    for (let c = 1; c < 0x20; c++) {
      const out = escapeBytes(B("a", c, "b"));
      expect(out).toBe(`a\\x${c.toString(16).padStart(2, "0")}b`);
    }
    expect(escapeBytes(B(0x7f))).toBe("\\x7f");
    expect(escapeBytes(B("x", 0x7f, "y"))).toBe("x\\x7fy");
  });

  test("newline, carriage return and tab cannot break a line", () => {
    expect(escapeBytes(B("a\nb\rc\td"))).toBe("a\\x0ab\\x0dc\\x09d");
    expect(escapeText("evil\n2026-01-01 EXEC 1 1 fake")).toBe("evil\\x0a2026-01-01 EXEC 1 1 fake");
  });

  test("ESC sequences are neutralised", () => {
    expect(escapeBytes(B("\x1b[31mred\x1b[0m"))).toBe("\\x1b[31mred\\x1b[0m");
    expect(escapeText("\x1b]0;owned\x07")).toBe("\\x1b]0;owned\\x07");
    expect(escapeText("\x1b[2J\x1b[H")).toBe("\\x1b[2J\\x1b[H");
    assertSafe(escapeText("\x1bP+q\x1b\\"));
  });

  test("every byte value on its own gives a safe output", () => {
    for (let c = 0; c < 256; c++) {
      for (const cstr of [true, false]) {
        const out = escapeBytes(B(c, "z"), 64, cstr);
        assertSafe(out);
        expect(out.endsWith("z")).toBe(true);
      }
    }
  });

  // BUG (src/output/escape.ts utf8Len): C2 80..C2 9F is well-formed UTF-8 for the
  // C1 controls U+0080..U+009F, so they pass through raw. U+009B is a one-character
  // CSI for terminals that honour 8-bit controls, U+0085 is NEL (a line break in
  // some viewers). They are control characters (Unicode Cc) like \x1b.
  test("C1 controls (U+0080..U+009F) are escaped too", () => {
    for (let c = 0x80; c <= 0x9f; c++) {
      const out = escapeBytes(B("a", 0xc2, c, "b"));
      expect(RAW_C1.test(out)).toBe(false);
      expect(out.startsWith("a\\")).toBe(true);
    }
    expect(RAW_C1.test(escapeText("\u009b31mred"))).toBe(false);
  });
});

describe("invalid UTF-8 is escaped byte by byte", () => {
  const cases: Array<[string, Uint8Array, string]> = [
    ["lone continuation", B("a", 0x80, "b"), "a\\x80b"],
    ["several continuations", B(0xbf, 0x80), "\\xbf\\x80"],
    ["overlong 2-byte '/'", B(0xc0, 0xaf), "\\xc0\\xaf"],
    ["overlong 2-byte NUL", B(0xc1, 0x80), "\\xc1\\x80"],
    ["overlong 3-byte", B(0xe0, 0x80, 0xaf), "\\xe0\\x80\\xaf"],
    ["overlong 4-byte", B(0xf0, 0x80, 0x80, 0xaf), "\\xf0\\x80\\x80\\xaf"],
    ["surrogate ED A0 80", B(0xed, 0xa0, 0x80), "\\xed\\xa0\\x80"],
    ["surrogate ED BF BF", B(0xed, 0xbf, 0xbf), "\\xed\\xbf\\xbf"],
    ["above U+10FFFF", B(0xf4, 0x90, 0x80, 0x80), "\\xf4\\x90\\x80\\x80"],
    ["truncated 2-byte at end", B("a", 0xc3), "a\\xc3"],
    ["truncated 3-byte at end", B("a", 0xe2, 0x82), "a\\xe2\\x82"],
    ["truncated 4-byte at end", B("a", 0xf0, 0x9f, 0x98), "a\\xf0\\x9f\\x98"],
    ["lead byte followed by ASCII", B(0xe2, "ab"), "\\xe2ab"],
    ["FE FF", B(0xfe, 0xff), "\\xfe\\xff"],
  ];
  for (const [label, input, want] of cases) {
    test(label, () => {
      expect(escapeBytes(input)).toBe(want);
    });
  }

  // BUG (src/output/escape.ts utf8Len): `c >= 0xe0 ? 3` also takes the never-valid
  // lead bytes F5..FF (and F8..FF five/six-byte forms) as 3-byte sequences, so
  // F8 88 80 passes "validation" and TextDecoder turns it into U+FFFD instead of
  // the \xf8\x88\x80 the module promises for invalid UTF-8.
  test("lead bytes F5..FF are never valid UTF-8", () => {
    expect(escapeBytes(B(0xf5, 0x80, 0x80, 0x80))).toBe("\\xf5\\x80\\x80\\x80");
    expect(escapeBytes(B(0xf8, 0x88, 0x80, 0x80, 0x80))).toBe("\\xf8\\x88\\x80\\x80\\x80");
    expect(escapeBytes(B(0xff, 0x80, 0x80))).toBe("\\xff\\x80\\x80");
  });

  test("valid multibyte text passes through unchanged", () => {
    for (const s of ["héllo", "日本語", "😀 ok", "Ünïcödé/路径", "\u00a0nbsp", "\u0800\uffff\u{10ffff}"]) {
      expect(escapeBytes(B(s), 200)).toBe(s);
      expect(escapeText(s, 200)).toBe(s);
    }
  });

  test("escapeText of a string with U+FFFD (from invalid bytes) is safe", () => {
    const s = new TextDecoder().decode(B("a", 0xff, 0xc0, 0x80, "b"));
    const out = escapeText(s);
    assertSafe(out);
    expect(out.startsWith("a")).toBe(true);
    expect(out.endsWith("b")).toBe(true);
  });

  test("escapeText of a lone UTF-16 surrogate does not throw", () => {
    expect(() => escapeText("a\ud800b")).not.toThrow();
    assertSafe(escapeText("a\ud800b"));
  });
});

describe("bidi and backslashes", () => {
  test("RLO U+202E becomes \\u{202e}", () => {
    expect(escapeText("evil\u202Egnp.exe")).toBe("evil\\u{202e}gnp.exe");
    expect(escapeBytes(B("a", 0xe2, 0x80, 0xae, "b"))).toBe("a\\u{202e}b");
  });

  test("every bidi control, and the line and paragraph separators, are escaped", () => {
    const marks = [0x061c, 0x200e, 0x200f, 0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e];
    for (const cp of [...marks, 0x2066, 0x2067, 0x2068, 0x2069]) {
      const out = escapeText(`x${String.fromCodePoint(cp)}y`);
      expect(out).toBe(`x\\u{${cp.toString(16)}}y`);
    }
  });

  test("backslashes are doubled, so an escape in the input cannot pass for one in the output", () => {
    expect(escapeBytes(B("a\\b"))).toBe("a\\\\b");
    expect(escapeText("\\x1b")).toBe("\\\\x1b");
    expect(escapeText("\\x1b")).not.toBe(escapeText("\x1b"));
    expect(escapeText("\\u{202e}")).not.toBe(escapeText("\u202e"));
  });
});

describe("NULs", () => {
  test("trailing NUL padding of a C string is dropped", () => {
    const b = new Uint8Array(16);
    b.set(B("ls"));
    expect(escapeBytes(b)).toBe("ls");
    expect(escapeBytes(new Uint8Array(16))).toBe("");
    expect(escapeBytes(B("ab", 0))).toBe("ab");
  });

  test("NULs followed by data are damage and are shown", () => {
    expect(escapeBytes(B("ab", 0, "cd"))).toBe("ab\\x00cd");
    expect(escapeBytes(B("ab", 0, 0, "c", 0, 0))).toBe("ab\\x00\\x00c");
    expect(escapeBytes(B(0, "x"))).toBe("\\x00x");
  });

  test("cstr=false shows every NUL, trailing ones included", () => {
    expect(escapeBytes(B("ab", 0, 0), 64, false)).toBe("ab\\x00\\x00");
    expect(escapeText("a\0b\0")).toBe("a\\x00b\\x00");
  });
});

describe("width limit", () => {
  test("long input is cut with … and never exceeds maxChars", () => {
    // BUG (src/output/escape.ts escapeBytes): the "…" is pushed after maxChars
    // characters were already emitted, so the result is maxChars + 1 wide; with
    // maxChars 16 that shifts every column after comm in the table.
    for (const max of [1, 2, 5, 16, 32, 64, 120]) {
      const out = escapeText("a".repeat(1000), max);
      expect(out.endsWith("…")).toBe(true);
      expect(width(out)).toBeLessThanOrEqual(max);
    }
  });

  test("long input is cut with …, and the kept part is a prefix of the full escape", () => {
    const full = escapeText("a".repeat(1000), 10_000);
    const out = escapeText("a".repeat(1000), 64);
    expect(out.endsWith("…")).toBe(true);
    expect(full.startsWith(out.slice(0, -1))).toBe(true);
    expect(width(out)).toBeLessThanOrEqual(65); // at most one over (see the test above)
  });

  test("input of exactly maxChars is not cut", () => {
    expect(escapeText("a".repeat(64), 64)).toBe("a".repeat(64));
    expect(escapeText("é".repeat(64), 64)).toBe("é".repeat(64));
  });

  test("an escape sequence is never split by the cut", () => {
    for (let max = 1; max < 40; max++) {
      const out = escapeBytes(new Uint8Array(100).fill(0x1b), max, false);
      const body = out.endsWith("…") ? out.slice(0, -1) : out;
      expect(body).toMatch(/^(\\x1b)*$/);
      assertSafe(out);
    }
  });

  test("hostile long input stays within bounds and safe", () => {
    const s = "\x1b[31m\u202e\\".repeat(500);
    for (const max of [16, 64, 120]) {
      const out = escapeText(s, max);
      assertSafe(out);
      expect(width(out)).toBeLessThanOrEqual(max + 1);
    }
  });
});

describe("random bytes", () => {
  test("20,000 random inputs: no raw C0 control, ESC or bidi; never throws; bounded width", () => {
    const r = mulberry32(0xe5c);
    for (let i = 0; i < 20_000; i++) {
      const n = Math.floor(r() * 80);
      const b = new Uint8Array(n);
      for (let k = 0; k < n; k++)
        b[k] = r() < 0.3 ? [0, 0x1b, 0x5c, 0xe2, 0x80, 0xae, 0xc2, 0x9b][Math.floor(r() * 8)]! : Math.floor(r() * 256);
      const max = 1 + Math.floor(r() * 80);
      const out = escapeBytes(b, max, r() < 0.5);
      assertSafe(out);
      expect(width(out)).toBeLessThanOrEqual(max + 1);
    }
  });
});

describe("escapeForTerminal (text from a server)", () => {
  test("keeps lines, tabs, backslashes and printable text; escapes what a terminal acts on", () => {
    const table = "┌─comm─┬─n─┐\n│ a\\b │ 1 │\t\n└──────┴───┘\n";
    expect(escapeForTerminal(table)).toBe(table);
    expect(escapeForTerminal("\x1b]0;x\x07\r\u009b\u202e\u2028ü")).toBe("\\x1b]0;x\\x07\\x0d\\x9b\\u{202e}\\u{2028}ü");
    for (let c = 0; c < 0xa0; c++) {
      if (c === 0x0a || c === 0x09 || (c >= 0x20 && c < 0x7f)) continue;
      const out = escapeForTerminal(String.fromCharCode(c));
      expect(RAW_C0.test(out) || RAW_C1.test(out)).toBe(false);
    }
  });
});
