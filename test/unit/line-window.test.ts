/** The line reorder window: per-CPU segments, merged by kernel time under a cutoff. */
import { describe, expect, test } from "bun:test";
import { LineWindow, SEGMENT_BYTES } from "../../src/agent/line-window.ts";
import type { ByteBuf } from "../../src/output/bytebuf.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Renders `text` as a line of `cpu` with kernel time `key`, as the session does (asking room for `need`). */
function add(w: LineWindow, cpu: number, key: number, text: string, need = 0): ByteBuf {
  const out = w.out(cpu, need);
  const start = out.len;
  const bytes = enc.encode(text);
  out.ensure(bytes.length);
  out.buf.set(bytes, out.len);
  out.len += bytes.length;
  w.push(key, start, out.len);
  return out;
}

function released(w: LineWindow, cutoff: number): string[] {
  const got: string[] = [];
  w.release(cutoff, (buf, s, e) => got.push(dec.decode(buf.subarray(s, e))));
  return got;
}

describe("line window", () => {
  test("lines older than the cutoff come out merged across CPUs; the rest wait", () => {
    const w = new LineWindow();
    w.nextDrain();
    add(w, 0, 10, "a10");
    add(w, 0, 30, "a30");
    add(w, 1, 20, "b20");
    add(w, 1, 40, "b40");
    expect(released(w, 35)).toEqual(["a10", "b20", "a30"]);
    w.nextDrain();
    add(w, 0, 50, "a50");
    add(w, 1, 45, "b45");
    expect(released(w, Number.POSITIVE_INFINITY)).toEqual(["b40", "b45", "a50"]);
    expect(released(w, Number.POSITIVE_INFINITY)).toEqual([]);
  });

  test("a drain's segment that holds no line (all filtered) does not block the ones after it", () => {
    const w = new LineWindow();
    w.nextDrain();
    w.out(0); // opened, then the renderer filtered the line
    w.nextDrain();
    add(w, 0, 5, "x");
    expect(released(w, 100)).toEqual(["x"]);
  });

  test("unused(): a segment opened for a line not rendered goes back to the pool; one holding lines stays", () => {
    const w = new LineWindow();
    w.nextDrain();
    const opened = w.out(0);
    w.unused();
    // The pool hands the same buffer to the next segment opened, on any CPU.
    expect(w.out(1)).toBe(opened);
    w.unused();
    add(w, 0, 1, "kept");
    w.out(0);
    w.unused();
    w.nextDrain();
    add(w, 1, 2, "next");
    expect(released(w, Number.POSITIVE_INFINITY)).toEqual(["kept", "next"]);
  });

  test("adoptSpare(): the run's window opens its segments in the warm-up window's released buffers", () => {
    const warm = new LineWindow();
    warm.nextDrain();
    const a = add(warm, 0, 1, "warm-a");
    warm.nextDrain();
    const b = add(warm, 1, 2, "warm-b");
    expect(released(warm, Number.POSITIVE_INFINITY)).toEqual(["warm-a", "warm-b"]);
    const run = new LineWindow();
    run.adoptSpare(warm);
    run.nextDrain();
    const first = add(run, 0, 10, "run-a");
    const second = add(run, 1, 11, "run-b");
    expect([a, b]).toContain(first);
    expect([a, b]).toContain(second);
    expect(first).not.toBe(second);
    // Taken over, not shared: the warm-up window opens fresh buffers now, and the lines are the run's.
    warm.nextDrain();
    const fresh = add(warm, 0, 3, "warm-c");
    expect(fresh).not.toBe(a);
    expect(fresh).not.toBe(b);
    expect(released(run, Number.POSITIVE_INFINITY)).toEqual(["run-a", "run-b"]);
  });

  test("clear() drops what is held; the window works on after it", () => {
    const w = new LineWindow();
    w.nextDrain();
    add(w, 0, 1, "gone");
    w.clear();
    expect(released(w, Number.POSITIVE_INFINITY)).toEqual([]);
    w.nextDrain();
    add(w, 0, 2, "kept");
    expect(released(w, Number.POSITIVE_INFINITY)).toEqual(["kept"]);
  });

  test("random drains: every line once, bytes intact, in time order, none before its cutoff (against a model)", () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const w = new LineWindow();
    const clock = [0, 0, 0, 0];
    const held: Array<{ key: number; text: string }> = [];
    const out: string[] = [];
    for (let d = 0; d < 300; d++) {
      w.nextDrain();
      const n = rnd(40);
      for (let i = 0; i < n; i++) {
        const cpu = rnd(4);
        clock[cpu]! += 1 + rnd(10);
        const key = clock[cpu]! * 4 + cpu; // distinct keys, increasing per CPU
        const text = `${key}:${"z".repeat(rnd(300))}`;
        if (rnd(10) === 0) {
          w.out(cpu); // filtered
          continue;
        }
        add(w, cpu, key, text);
        held.push({ key, text });
      }
      const cutoff = d % 7 === 6 ? Number.POSITIVE_INFINITY : Math.min(...clock) * 4;
      const want = held.filter((l) => l.key < cutoff).sort((a, b) => a.key - b.key);
      const got = released(w, cutoff);
      expect(got).toEqual(want.map((l) => l.text));
      out.push(...got);
      for (const l of want) held.splice(held.indexOf(l), 1);
    }
    out.push(...released(w, Number.POSITIVE_INFINITY));
    const keys = out.map((t) => Number(t.split(":")[0]));
    expect(new Set(keys).size).toBe(keys.length);
  });

  test("a drain larger than a segment goes on in further ones (long lines too): order and bytes kept, no buffer grows", () => {
    const w = new LineWindow();
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const want: string[] = [];
    const bufs = new Set<ByteBuf>();
    let key = 0;
    for (let d = 0; d < 3; d++) {
      w.nextDrain();
      // About 2 MB per drain on one CPU: several 256 KiB segments; some lines past a segment's slack.
      for (let i = 0; i < 200; i++) {
        const text = `${key}:${String.fromCharCode(97 + (key % 26)).repeat(rnd(10) === 0 ? 40_000 + rnd(60_000) : rnd(12_000))}`;
        // What the renderer asks room for: its worst case for the record, far more than the line.
        bufs.add(add(w, 0, key++, text, 6 * text.length + 4096));
        want.push(text);
      }
    }
    const got = released(w, Number.POSITIVE_INFINITY);
    expect(got.length).toBe(want.length);
    expect(got).toEqual(want);
    expect(bufs.size).toBeGreaterThan(10);
    for (const b of bufs) expect(b.buf.length).toBe(SEGMENT_BYTES);
  });
});
