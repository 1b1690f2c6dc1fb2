/**
 * The compiled renderer (src/render/fast.ts) against the general path
 * (decodeEvent + jsonLine/tableRow): byte-identical lines, NDJSON and table,
 * on synthetic records of every type shaped like the common case, fuzzed ones
 * (random strings, flags, levels, modes, 64-bit values, mutated bytes) and the
 * golden captures. Records the compiled path declines must still come out
 * right (through the general path), and the compiled path must be the one
 * ordinary records take, or the comparison means little.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { ByteBuf } from "../../src/output/bytebuf.ts";
import { LineRenderer } from "../../src/render/fast.ts";
import { LINES, SUMMARIES } from "../../src/render/lines.gen.ts";
import { schemaFor } from "../../src/render/record-schema.ts";
import { warmUpRecords } from "../../src/render/warm-up.ts";
import { checkRecord, newSpans, u32At } from "../../src/wire/decode.ts";
import { EVENTS } from "../../src/wire/events.ts";
import { ds_exit, ds_exit_str, ds_header } from "../../src/wire/layout.gen.ts";
import type { EventName } from "../../src/wire/names.ts";
import { EventType, Flags, Mode, Transport } from "../helpers/layout.ts";
import { mulberry32, type SynthOptions, synthEvent } from "../helpers/synth.ts";
import { sampleRecord } from "../helpers/synth-record.ts";

const SEED = Number(process.env.DS_FUZZ_SEED ?? 0xfa57);
const SAMPLES = Number(process.env.DS_FAST_SAMPLES ?? 100_000);
// 2,000 per record type (18): with the exec samples above, 136,000 records compared in all; DS_FAST_RECORD_SAMPLES for more.
const RECORD_SAMPLES = Number(process.env.DS_FAST_RECORD_SAMPLES ?? 36_000);
const BOOT = 1_733_000_000_123_456_789n;

type Rng = () => number;
const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const u32 = (r: Rng) => (int(r, 0x10000) * 0x10000 + int(r, 0x10000)) >>> 0;

const WORDS = [
  "ls",
  "-la",
  "/usr/bin/env",
  "a b",
  "it's",
  'say "hi"',
  "$HOME",
  "",
  "x=1",
  "ünï",
  "tab\there",
  "\\",
  "`id`",
  "a'b\"c",
];
const PRINTABLE = Array.from({ length: 95 }, (_, i) => 0x20 + i);
const HOSTILE = [
  ...PRINTABLE,
  0,
  0x1b,
  0x0a,
  0x08,
  0x7f,
  0x80,
  0xbf,
  0xc3,
  0xa9,
  0xe2,
  0x80,
  0xa6,
  0xed,
  0xa0,
  0xf0,
  0x9f,
  0xff,
];

/**
 * What JSON.stringify leaves raw but a line must escape (C1 controls, bidi
 * marks and overrides, U+2028-2029), beside their neighbours, which stay as they are.
 */
const HIDDEN_CHARS = "\u0080\u0085\u009b\u009f\u061c\u200e\u200f\u2028\u2029\u202a\u202e\u2066\u2069";
const NEIGHBOURS = "\u00a0\u061b\u061d\u200d\u2010\u2027\u202f\u2065\u206a";
const HIDDEN_TEXT = ["/tmp/\u202egnp.exe", "a\u009b31mb", "x\u2028y\u061cz"];

function bytes(r: Rng, n: number, alphabet: readonly number[]): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = pick(r, alphabet);
  return b;
}

function str(r: Rng, max: number): Uint8Array | string {
  const k = r();
  if (k < 0.6)
    return pick(r, ["/usr/bin/true", "/home/user", "/tmp/x y", "/opt/ünï", 'a"b', "c\\d", "", ...HIDDEN_TEXT]);
  return bytes(r, int(r, max + 1), k < 0.85 ? PRINTABLE : HOSTILE);
}

function u64(r: Rng): bigint {
  const k = r();
  if (k < 0.7) return BigInt(int(r, 2 ** 40)) * 1000n + BigInt(int(r, 1000));
  if (k < 0.9) return (BigInt(int(r, 0x200000)) << 32n) | BigInt(u32(r)); // just below 2^53
  return (BigInt(u32(r)) << 32n) | BigInt(u32(r));
}

function execSample(r: Rng, common: boolean): Uint8Array {
  const o: SynthOptions = {
    encoding: r() < 0.1 ? "fixed" : "compact",
    ktimeNs: u64(r),
    seq: u64(r),
    cpu: int(r, 4),
    pid: common ? int(r, 4_000_000) : u32(r),
    ppid: common ? int(r, 4_000_000) : u32(r),
    uid: pick(r, [0, 1000, u32(r)]),
    gid: pick(r, [0, 1000, u32(r)]),
    cgroupId: u64(r),
    mntnsId: u32(r),
    euid: pick(r, [0, 65534, u32(r)]),
    egid: u32(r),
    pgid: int(r, 4_000_000),
    sid: int(r, 4_000_000),
    sessionid: pick(r, [0xffffffff, 1, u32(r)]),
    auid: pick(r, [0xffffffff, 1000, u32(r)]),
    pidnsId: u32(r),
    startNs: u64(r),
    execSeq: pick(r, [0n, 7n, u64(r)]),
    pstartNs: u64(r),
    pexecSeq: pick(r, [0n, 6n, u64(r)]),
    nodename: common ? pick(r, ["", "vm", "web-1.example"]) : str(r, 64),
    pidTree: common ? pick(r, ["", "12.sh<1.init", '7.q"x<1.systemd']) : str(r, 200),
    transport: pick(r, [Transport.perf, Transport.ringbuf, Transport["ringbuf-output"]]),
    type: pick(r, [
      ...Array<number>(17).fill(EventType.exec),
      EventType.flood,
      EventType.flood,
      EventType.usermode_helper,
    ]),
    comm: common ? pick(r, ["noop", "ls", "bash", 'q"uote', "sp ace", "fifteen-chars-x"]) : str(r, 20),
    filename: str(r, 64),
    args: Array.from({ length: int(r, 6) }, () => (common ? pick(r, WORDS.slice(0, 9)) : pick(r, WORDS))),
    cwd: str(r, 64),
    exe: str(r, 64),
  };
  if (!common) {
    o.flags = u32(r) & 0xff;
    o.mode = r() < 0.8 ? Mode.dual : pick(r, [Mode.single, Mode.nest3]);
    if (r() < 0.2) o.argsRaw = bytes(r, int(r, 40), HOSTILE);
    if (r() < 0.1) o.pexe = str(r, 32);
    if (r() < 0.1) o.levels = [{ used: pick(r, [0, 1]), dataObserved: bytes(r, 16, HOSTILE) }];
  } else {
    o.flags = Flags.slot1Intact | (r() < 0.1 ? Flags.argsTruncated : 0) | (r() < 0.05 ? Flags.clobbered : 0);
  }
  if (o.encoding === "fixed") {
    // The fixed arrays are small: keep the strings inside them.
    for (const k of ["filename", "cwd", "exe", "comm"] as const) if (typeof o[k] !== "string") o[k] = "x";
    delete o.argsRaw;
  }
  const b = synthEvent(o);
  if (!common && r() < 0.15) for (let k = 0; k < 3; k++) b[int(r, b.length)] = int(r, 256); // mutated
  return b;
}

/** A ds_exit record (the synthetic builder makes exec records only). */
function exitSample(r: Rng): Uint8Array {
  const comm = r() < 0.8 ? new TextEncoder().encode(pick(r, ["noop", "sh", 'a"b'])) : bytes(r, int(r, 18), HOSTILE);
  // exe: empty as before 6.16, a path, or hostile bytes.
  const exe =
    r() < 0.3
      ? new Uint8Array(0)
      : r() < 0.8
        ? new TextEncoder().encode(pick(r, ["/usr/bin/dash", "/memfd:x (deleted)", "/tmp/a b"]))
        : bytes(r, int(r, 300), HOSTILE);
  const b = new Uint8Array(ds_exit.size + comm.length + exe.length + int(r, 8));
  const dv = new DataView(b.buffer);
  const H = ds_header.off;
  dv.setBigUint64(H.ktime_ns, u64(r), true);
  dv.setBigUint64(H.seq, u64(r), true);
  dv.setUint32(H.size, ds_exit.size + comm.length + exe.length, true);
  dv.setUint16(H.type, EventType.exit, true);
  b[H.version] = 1;
  dv.setUint32(H.cpu, int(r, 4), true);
  b[H.mode] = r() < 0.9 ? Mode.dual : Mode.nest3;
  b[H.slots] = 2;
  const O = ds_exit.off;
  dv.setUint32(O.pid, int(r, 4_000_000), true);
  dv.setUint32(O.ppid, int(r, 4_000_000), true);
  dv.setInt32(O.exit_code, pick(r, [0, 256, 0x8b, -1, u32(r) | 0]), true);
  dv.setBigUint64(O.runtime_ns, u64(r), true);
  dv.setBigUint64(O.cgroup_id, u64(r), true);
  dv.setUint32(O.flags, r() < 0.8 ? Flags.slot1Intact | (u32(r) & 0x320) : u32(r) & 0xffff, true);
  dv.setUint32(O.str, ((comm.length << 16) | ds_exit.size) >>> 0, true);
  b.set(comm, ds_exit.size);
  if (exe.length > 0) {
    const at = ds_exit.size + comm.length;
    dv.setUint32(O.str + 4 * ds_exit_str.DS_EXIT_STR_EXE, ((exe.length << 16) | at) >>> 0, true);
    b.set(exe, at);
  }
  return b;
}

const GOLDEN = path.join(import.meta.dir, "../golden");
const golden = readdirSync(GOLDEN)
  .filter((f) => f.endsWith(".bin"))
  .map((f) => new Uint8Array(readFileSync(path.join(GOLDEN, f))));

interface Tally {
  records: number;
  fast: number;
  /** By record type: records, then per renderer the lines written and those that took the compiled path. */
  byType?: Map<string, number[]>;
}

function compare(renderers: LineRenderer[], samples: Iterable<Uint8Array>, tally: Tally): void {
  const spans = newSpans();
  const out = new ByteBuf(1024);
  for (const b of samples) {
    const spec = checkRecord(b, spans);
    if (typeof spec === "string") continue;
    tally.records++;
    let t: number[] | undefined;
    if (tally.byType !== undefined) {
      t = tally.byType.get(spec.name);
      if (t === undefined) {
        t = new Array<number>(1 + 2 * renderers.length).fill(0);
        tally.byType.set(spec.name, t);
      }
      t[0]!++;
    }
    renderers.forEach((r, k) => {
      out.len = 0;
      const before = r.fastLines;
      if (!r.render(b, spec, spans, out)) return;
      const fast = r.fastLines > before;
      if (fast) tally.fast++;
      if (t !== undefined) {
        t[1 + 2 * k]!++;
        if (fast) t[2 + 2 * k]!++;
      }
      const want = r.renderGeneral(b);
      const got = out.buf.toString("utf8", 0, out.len);
      if (got !== want) {
        throw new Error(
          `mismatch (${r.opts.json ? "json" : "table"}) for ${Buffer.from(b).toString("hex")}\n got: ${got}\nwant: ${want}`,
        );
      }
    });
  }
}

const renderers = (extra: Partial<ConstructorParameters<typeof LineRenderer>[0]> = {}) => [
  new LineRenderer({ json: true, bootWallNs: BOOT, maxArgs: 1024, host: "host-1", ...extra }),
  new LineRenderer({ json: true, bootWallNs: BOOT, maxArgs: 3, host: 'we"ird\u2028', ...extra }),
  new LineRenderer({ json: false, bootWallNs: BOOT, maxArgs: 1024, width: Number.POSITIVE_INFINITY, ...extra }),
  new LineRenderer({ json: false, bootWallNs: BOOT, maxArgs: 3, width: 80, ...extra }),
];

describe("compiled renderer = general renderer, byte for byte", () => {
  test(`${SAMPLES} synthetic and fuzzed records, NDJSON and table`, () => {
    const r = mulberry32(SEED);
    const tally: Tally = { records: 0, fast: 0 };
    function* gen() {
      for (let i = 0; i < SAMPLES; i++) yield i % 10 === 9 ? exitSample(r) : execSample(r, i % 2 === 0);
    }
    compare(renderers(), gen(), tally);
    expect(tally.records).toBeGreaterThan(SAMPLES * 0.8);
    // The comparison means something only if most common records take the compiled path.
    expect(tally.fast).toBeGreaterThan(tally.records);
  }, 120_000);

  // The DS_RECORD_HEAD types: what a host's records hold, and fuzzed ones (hostile strings, any
  // flags, modes and 64-bit values, damaged bytes and descriptors).
  const RECORD_SPECS = EVENTS.filter((e) => e.struct.off.syscall !== undefined);

  /** A string descriptor or hdr.size rewritten, a byte flipped: what checkRecord still lets through is compared. */
  function damaged(r: Rng, b: Uint8Array, strOff: number, strings: number): Uint8Array {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const k = int(r, 3);
    if (k === 0) dv.setUint32(strOff + 4 * int(r, strings), ((int(r, 64) << 16) | int(r, b.length)) >>> 0, true);
    else if (k === 1) dv.setUint32(ds_header.off.size, b.length - int(r, 8), true);
    else b[int(r, b.length)] = int(r, 256);
    return b;
  }

  test(`${RECORD_SAMPLES} synthetic and fuzzed records of every DS_RECORD_HEAD type, NDJSON and table`, () => {
    expect(RECORD_SPECS.length).toBe(18);
    const r = mulberry32(SEED + 7);
    const byType = new Map<string, number[]>();
    const ordinary: Tally = { records: 0, fast: 0, byType };
    const fuzzed: Tally = { records: 0, fast: 0 };
    const rs = renderers();
    for (let i = 0; i < RECORD_SAMPLES; i++) {
      const spec = RECORD_SPECS[i % RECORD_SPECS.length]!;
      if (Math.floor(i / RECORD_SPECS.length) % 2 === 0) compare(rs, [sampleRecord(r, spec, true)], ordinary);
      else {
        const b = sampleRecord(r, spec, false);
        compare(rs, [r() < 0.1 ? damaged(r, b, spec.struct.off.str!, spec.strings.length) : b], fuzzed);
      }
    }
    expect(ordinary.records).toBe(RECORD_SAMPLES / 2);
    expect(fuzzed.records).toBeGreaterThan(RECORD_SAMPLES * 0.4);
    // Odd values must reach the compiled path too, or the comparison says little about them.
    expect(fuzzed.fast).toBeGreaterThan(fuzzed.records);
    // Ordinary records take the compiled path: every NDJSON line; the unbounded table's rows but
    // those whose summary needs escaping (the samples' "ünï" and backslash paths); the 80-column
    // table cuts most summaries, and a cut row is the general path's.
    for (const spec of RECORD_SPECS) {
      const [n, json1, fast1, json2, fast2, table, fastTable] = byType.get(spec.name)!;
      expect({ type: spec.name, json1, fast1, json2, fast2 }).toEqual({
        type: spec.name,
        json1: n!,
        fast1: n!,
        json2: n!,
        fast2: n!,
      });
      expect(table).toBe(n!);
      expect(fastTable!).toBeGreaterThan(n! * 0.5);
    }
  }, 120_000);

  test("every event type's schema has a wire source for each field, and records a summary made of them", () => {
    for (const spec of EVENTS) {
      const schema = schemaFor(spec.name);
      const missing = [...schema.fields, ...schema.heap].filter((f) => f.wire === undefined).map((f) => f.key);
      expect({ type: spec.name, missing }).toEqual({ type: spec.name, missing: [] });
      if (spec.struct.off.syscall !== undefined) expect(schema.summaryParts).toBeDefined();
    }
  });

  test("lines.gen.ts has a line renderer for every type and a summary for every type that defines one", () => {
    for (const spec of EVENTS) {
      expect({ type: spec.name, line: typeof LINES[spec.type] }).toEqual({ type: spec.name, line: "function" });
      const summary = schemaFor(spec.name).summaryParts !== undefined ? "function" : "undefined";
      expect({ type: spec.name, summary: typeof SUMMARIES[spec.type] }).toEqual({ type: spec.name, summary });
    }
  });

  test("C1 controls, bidi marks and line separators are written as \\uXXXX by both, and read back as they were", () => {
    const [json] = renderers();
    const spans = newSpans();
    const out = new ByteBuf(1024);
    for (const ch of [...HIDDEN_CHARS, ...NEIGHBOURS]) {
      const text = `a${ch}b`;
      const b = synthEvent({ comm: "noop", filename: text, cwd: text, exe: `/x${ch}`, args: [text, "z"] });
      const spec = checkRecord(b, spans);
      if (typeof spec === "string") throw new Error(spec);
      out.len = 0;
      const before = json!.fastLines;
      expect(json!.render(b, spec, spans, out)).toBe(true);
      expect(json!.fastLines).toBe(before + 1);
      const line = out.buf.toString("utf8", 0, out.len);
      expect(line).toBe(json!.renderGeneral(b)!);
      const hidden = HIDDEN_CHARS.includes(ch);
      const code = `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
      expect(line.includes(ch)).toBe(!hidden);
      expect(line.includes(`"cwd":"a${code}b"`)).toBe(hidden);
      const o = JSON.parse(line) as { cwd: string; args: string[]; exe: string };
      expect([o.cwd, o.args[0], o.exe]).toEqual([text, text, `/x${ch}`]);
    }
  });

  test("golden captures from the real program", () => {
    const tally: Tally = { records: 0, fast: 0 };
    compare(renderers(), golden, tally);
    expect(tally.records).toBe(golden.length);
    expect(tally.fast).toBeGreaterThan(0);
  });

  test("--pid and --comm on the raw bytes keep what the decoded filters kept", () => {
    const r = mulberry32(SEED + 1);
    const samples = Array.from({ length: 2000 }, (_, i) => (i % 5 === 4 ? exitSample(r) : execSample(r, i % 2 === 0)));
    const spans = newSpans();
    for (const filter of [{ pid: 18201 }, { comm: "noop" }, { comm: "ls" }, { comm: "\\xff" }]) {
      const [fast] = renderers(filter);
      let kept = 0;
      for (const b of samples) {
        const spec = checkRecord(b, spans);
        if (typeof spec === "string") continue;
        const out = new ByteBuf(1024);
        const ok = fast!.render(b, spec, spans, out);
        const line = fast!.renderGeneral(b)!;
        const ev = JSON.parse(line) as { pid: number; ppid: number; comm: string };
        const want =
          ("pid" in filter && (ev.pid === filter.pid || ev.ppid === filter.pid)) ||
          ("comm" in filter && ev.comm === filter.comm);
        expect(ok).toBe(want);
        if (ok) kept++;
      }
      expect(kept + fast!.filtered).toBeGreaterThan(0);
    }
  });
});

describe("warm-up records", () => {
  const ALL = EVENTS.map((e) => e.name);

  test("their kernel times' low words have the top bit set and clear, as a running clock's do", () => {
    // u32At() returns a double past 2^31: code the JIT compiled from int32s alone was thrown away in the first storm.
    const top = warmUpRecords({ events: ALL }).map((b) => u32At(b, ds_header.off.ktime_ns) >= 2 ** 31);
    expect(new Set(top)).toEqual(new Set([true, false]));
  });

  test("every one takes the compiled path (that is the path they warm) and renders as the general path does", () => {
    const records = warmUpRecords({ host: "host-1", events: ALL });
    const types = new Set<string>();
    const spans = newSpans();
    for (const r of renderers()) {
      const out = new ByteBuf(1024);
      // A narrow table cuts rows, which only the general path does.
      const fast = r.opts.json || r.opts.width === Number.POSITIVE_INFINITY;
      for (const b of records) {
        const spec = checkRecord(b, spans);
        if (typeof spec === "string") throw new Error(spec);
        types.add(spec.name);
        out.len = 0;
        const before = r.fastLines;
        expect(r.render(b, spec, spans, out)).toBe(true);
        // The exit row alone is the general path's (its runtime is a float's toFixed).
        if (fast && (r.opts.json || spec.name !== "exit")) expect(r.fastLines).toBe(before + 1);
        expect(out.buf.toString("utf8", 0, out.len)).toBe(r.renderGeneral(b)!);
      }
    }
    expect([...types].sort()).toEqual([...ALL].sort());
  });

  test("the session's events only, exec at least half of them", () => {
    const spans = newSpans();
    const names = (events?: readonly EventName[]) =>
      warmUpRecords({ host: "host-1", ...(events === undefined ? {} : { events }) }).map((b) => {
        const spec = checkRecord(b, spans);
        if (typeof spec === "string") throw new Error(spec);
        return spec.name;
      });
    expect(new Set(names())).toEqual(new Set(["exec"]));
    const some = names(["exec", "connect", "dns"]);
    expect(new Set(some)).toEqual(new Set(["exec", "connect", "dns"]));
    const all = names(ALL);
    expect(all.filter((n) => n === "exec").length).toBeGreaterThanOrEqual(all.length / 2);
  });

  test("wants() decides the filters alone; renderWanted() then writes what render() writes", () => {
    const spans = newSpans();
    for (const filter of [{ comm: "dsbxyz" }, { pid: 4242 }]) {
      const [viaRender] = renderers(filter);
      const [split] = renderers(filter);
      let left = 0;
      for (const b of warmUpRecords({ host: "host-1", events: ALL, ...filter })) {
        const spec = checkRecord(b, spans);
        if (typeof spec === "string") throw new Error(spec);
        const a = new ByteBuf(1024);
        const kept = viaRender!.render(b, spec, spans, a);
        const c = new ByteBuf(1024);
        expect(split!.wants(b, spec, spans)).toBe(kept);
        // A record left out is counted and writes nothing: the session asks before taking room.
        if (!kept) {
          left++;
          expect(split!.filtered).toBe(left);
          continue;
        }
        expect(split!.renderWanted(b, spec, spans, c)).toBe(true);
        expect(Buffer.from(c.buf.subarray(0, c.len))).toEqual(Buffer.from(a.buf.subarray(0, a.len)));
      }
      expect(left).toBeGreaterThan(0);
      expect(viaRender!.filtered).toBe(left);
    }
  });

  test("with --comm / --pid, half of them pass the filter", () => {
    const spans = newSpans();
    for (const filter of [{ comm: "dsbxyz" }, { pid: 4242 }]) {
      const [r] = renderers(filter);
      let kept = 0;
      const records = warmUpRecords({ host: "host-1", events: ALL, ...filter });
      for (const b of records) {
        const spec = checkRecord(b, spans);
        if (typeof spec === "string") throw new Error(spec);
        if (r!.render(b, spec, spans, new ByteBuf(1024))) kept++;
      }
      expect(kept).toBe(records.length / 2);
    }
  });
});
