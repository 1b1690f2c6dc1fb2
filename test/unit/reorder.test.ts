/**
 * The perf transport's reorder window (src/agent/reorder.ts): per-CPU queues
 * merged by kernel time, released only below the previous drain's start, with
 * per-CPU order kept and nothing retained once released.
 */
import { describe, expect, test } from "bun:test";
import { Reorder } from "../../src/agent/reorder.ts";
import { mulberry32 } from "../helpers/synth.ts";

interface Ev {
  cpu: number;
  t: number;
  /** Position in its CPU's stream: per-CPU order must survive the merge. */
  seq: number;
}

const ev = (cpu: number, t: number, seq = 0): Ev => ({ cpu, t, seq });
const window = () => new Reorder<Ev>((e) => e.t);
const times = (es: Ev[]) => es.map((e) => e.t);

describe("release: the cutoff is the previous drain's start", () => {
  test("the first drain releases nothing, whatever it holds", () => {
    const r = window();
    r.push(0, ev(0, 1));
    r.push(1, ev(1, 2));
    expect(r.release(1_000)).toEqual([]);
    expect(times(r.release(2_000))).toEqual([1, 2]);
  });

  test("only events stamped before the previous drain's start come out; later ones wait a drain", () => {
    const r = window();
    expect(r.release(100)).toEqual([]);
    for (const t of [50, 99, 100, 150, 199]) r.push(0, ev(0, t));
    // Cutoff 100, not 200: an event stamped at 150 may still have a sibling
    // stamped at 120 on a CPU this drain read before it was written.
    expect(times(r.release(200))).toEqual([50, 99]);
    r.push(1, ev(1, 120));
    expect(times(r.release(300))).toEqual([100, 120, 150, 199]);
    expect(r.release(400)).toEqual([]);
  });

  test("an event stamped exactly at the cutoff is held (the bound is strict)", () => {
    const r = window();
    r.release(100);
    r.push(3, ev(3, 100));
    expect(r.release(200)).toEqual([]);
    expect(times(r.release(300))).toEqual([100]);
  });

  test("flush releases everything still held, merged, and leaves the window empty", () => {
    const r = window();
    r.release(10);
    r.push(0, ev(0, 5));
    r.push(0, ev(0, 500));
    r.push(1, ev(1, 300));
    r.push(2, ev(2, 1e12));
    expect(times(r.release(20))).toEqual([5]);
    expect(times(r.flush())).toEqual([300, 500, 1e12]);
    expect(r.flush()).toEqual([]);
    expect(r.release(2e12)).toEqual([]);
  });

  test("flush before any drain releases everything", () => {
    const r = window();
    r.push(1, ev(1, 7));
    r.push(0, ev(0, 3));
    expect(times(r.flush())).toEqual([3, 7]);
  });
});

describe("merge across CPUs", () => {
  test("interleaved per-CPU streams come out in kernel-time order", () => {
    const r = window();
    r.release(0);
    const streams: Record<number, number[]> = { 0: [1, 4, 9, 10], 1: [2, 3, 11], 5: [0, 5, 6, 7, 8] };
    for (const [cpu, ts] of Object.entries(streams)) for (const t of ts) r.push(Number(cpu), ev(Number(cpu), t));
    expect(times(r.release(1))).toEqual([]);
    expect(times(r.flush())).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  test("equal stamps on one CPU keep their push order", () => {
    const r = window();
    r.release(0);
    for (let seq = 0; seq < 5; seq++) {
      r.push(0, ev(0, 42, seq));
      r.push(1, ev(1, 42, seq));
    }
    r.push(2, ev(2, 41, -1));
    const out = r.flush();
    expect(out[0]).toEqual(ev(2, 41, -1));
    for (const cpu of [0, 1])
      expect(out.filter((e) => e.cpu === cpu && e.t === 42).map((e) => e.seq)).toEqual([0, 1, 2, 3, 4]);
  });

  test("equal stamps split across a release keep their per-CPU order", () => {
    const r = window();
    r.release(0);
    r.push(0, ev(0, 10, 0));
    r.push(0, ev(0, 10, 1));
    r.release(11); // cutoff 0: nothing out yet
    r.push(0, ev(0, 10, 2));
    const out = r.release(20); // cutoff 11
    expect(out.map((e) => e.seq)).toEqual([0, 1, 2]);
  });

  /*
   * A simulated host: per-CPU streams with random stamps; each event becomes
   * readable a random gap after its stamp (shorter than a drain interval, the
   * window's stated bound), in stamp order per CPU as a perf buffer delivers;
   * drains at random intervals read whatever is readable. Every release must
   * be sorted, below its cutoff and complete below it; the whole output must be
   * the input, sorted, with per-CPU order intact.
   */
  test("randomized drains: output is the input in time order, per-CPU order kept, each release complete", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = mulberry32(seed);
      const cpus = 1 + Math.floor(rnd() * 8);
      const minInterval = 5_000;
      const perCpu: Array<{ e: Ev; visible: number }[]> = [];
      let total = 0;
      for (let cpu = 0; cpu < cpus; cpu++) {
        const q: { e: Ev; visible: number }[] = [];
        let t = Math.floor(rnd() * 1000);
        let visible = 0;
        const n = Math.floor(rnd() * 200);
        for (let seq = 0; seq < n; seq++) {
          t += rnd() < 0.2 ? 0 : Math.floor(rnd() * 3_000); // equal stamps happen
          visible = Math.max(visible, t + Math.floor(rnd() * minInterval));
          q.push({ e: ev(cpu, t, seq), visible });
        }
        perCpu.push(q);
        total += n;
      }

      const r = window();
      const out: Ev[] = [];
      const pushed: Ev[] = [];
      const heads = perCpu.map(() => 0);
      let prevDrain: number | null = null;
      for (let drain = 0; ; ) {
        drain += minInterval + Math.floor(rnd() * 20_000);
        // A drain reads each CPU's buffer in turn; the order of CPUs varies.
        const order = perCpu.map((_, i) => i).sort(() => rnd() - 0.5);
        for (const cpu of order) {
          const q = perCpu[cpu]!;
          while (heads[cpu]! < q.length && q[heads[cpu]!]!.visible <= drain) {
            const { e } = q[heads[cpu]!++]!;
            r.push(cpu, e);
            pushed.push(e);
          }
        }
        const got = r.release(drain);
        if (prevDrain === null) expect(got).toEqual([]);
        else {
          const cutoff = prevDrain;
          for (const e of got) expect(e.t).toBeLessThan(cutoff);
          // Complete: nothing read so far and below the cutoff stays behind.
          const released = new Set([...out, ...got]);
          for (const e of pushed) if (e.t < cutoff) expect(released.has(e)).toBe(true);
        }
        out.push(...got);
        prevDrain = drain;
        if (heads.every((h, cpu) => h === perCpu[cpu]!.length)) break;
      }
      out.push(...r.flush());

      expect(out.length).toBe(total);
      expect(new Set(out).size).toBe(total);
      for (let i = 1; i < out.length; i++) expect(out[i]!.t).toBeGreaterThanOrEqual(out[i - 1]!.t);
      for (let cpu = 0; cpu < cpus; cpu++) {
        const seqs = out.filter((e) => e.cpu === cpu).map((e) => e.seq);
        expect(seqs).toEqual(seqs.map((_, i) => i));
      }
    }
  });
});

describe("memory", () => {
  /** Pushes `n` events on 4 CPUs and returns weak references to them: nothing else holds them. */
  function fill(r: Reorder<Ev>, n: number): WeakRef<Ev>[] {
    const refs: WeakRef<Ev>[] = [];
    for (let i = 0; i < n; i++) {
      const e = ev(i % 4, i, i);
      r.push(e.cpu, e);
      refs.push(new WeakRef(e));
    }
    return refs;
  }

  const alive = (refs: WeakRef<Ev>[]) => refs.filter((w) => w.deref() !== undefined).length;

  test("released events are no longer referenced by the window", async () => {
    const r = window();
    r.release(0);
    const refs = fill(r, 2_000);
    // WeakRef targets stay alive until the current job ends.
    await Bun.sleep(0);
    Bun.gc(true);
    expect(alive(refs)).toBe(2_000); // held: nothing released yet

    const n = r.release(1_000).length; // cutoff 0
    expect(n).toBe(0);
    const first = r.release(2_000); // cutoff 1000: events 0..999
    expect(first.length).toBe(1_000);
    first.length = 0;
    await Bun.sleep(0);
    Bun.gc(true);
    // The 1000 still held survive; of the 1000 released, the collector frees
    // (nearly) all: a few may be kept by conservative stack scanning.
    expect(alive(refs.slice(1_000))).toBe(1_000);
    expect(alive(refs.slice(0, 1_000))).toBeLessThan(50);

    expect(r.flush().length).toBe(1_000);
    await Bun.sleep(0);
    Bun.gc(true);
    expect(alive(refs)).toBeLessThan(100);
  });
});
