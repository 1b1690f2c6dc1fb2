/**
 * Random and mutated samples through decodeEvent. The only outcomes allowed are
 * ok:true and ok:false: no exception, no read outside the sample, no write to it.
 *
 * Out-of-bounds reads are caught differentially: each sample is decoded once as
 * a subarray in the middle of a larger buffer whose surroundings are a canary
 * pattern, and once as a tight copy (where nothing exists past the end). A
 * decoder that reads past the view sees canary bytes in the first case and
 * nothing (a RangeError or a shorter subarray) in the second, so the two
 * results differ.
 */
import { describe, expect, test } from "bun:test";
import { jsonLine, tableRow } from "../../src/render/event.ts";
import { type Decoded, decodeEvent, isExecEvent } from "../../src/wire/decode.ts";
import { EVENTS, type EventSpec } from "../../src/wire/events.ts";
import { ds_common, ds_exit, ds_exit_fixed, ds_header, ds_record } from "../../src/wire/layout.gen.ts";
import { EventType, Exec, ExecFixed, Header, LEVELS, Level, SD_EVENT_MAX, STR_NR } from "../helpers/layout.ts";
import { type LevelSpec, mulberry32, type SynthOptions, synthEvent } from "../helpers/synth.ts";

const SEED = Number(process.env.DS_FUZZ_SEED ?? 0x5eed1234);
const COMPACT_SAMPLES = Number(process.env.DS_FUZZ_SAMPLES ?? 100_000);
const FIXED_SAMPLES = Math.floor(COMPACT_SAMPLES / 10);

type Rng = () => number;

const int = (r: Rng, n: number) => Math.floor(r() * n); // 0 .. n-1
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const u32 = (r: Rng) => (int(r, 0x10000) * 0x10000 + int(r, 0x10000)) >>> 0;

function randBytes(r: Rng, n: number, alphabet?: readonly number[]): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = alphabet ? pick(r, alphabet) : int(r, 256);
  return b;
}

// Mostly printable with some NULs, high bytes and controls: what argv can hold.
const ALPHABET = [
  ...Array.from({ length: 64 }, (_, i) => 0x20 + i),
  0,
  0,
  0,
  0x1b,
  0x0a,
  0x7f,
  0x80,
  0xbf,
  0xc0,
  0xc3,
  0xa9,
  0xe2,
  0x80,
  0xae,
  0xed,
  0xa0,
  0xf0,
  0x9f,
  0xff,
];

function randStr(r: Rng, max: number): Uint8Array {
  const n = r() < 0.15 ? 0 : int(r, max + 1);
  return randBytes(r, n, r() < 0.5 ? ALPHABET : undefined);
}

function randLevel(r: Rng): LevelSpec {
  return {
    slot: pick(r, [0, 1, 2, 0xff, int(r, 256)]),
    used: pick(r, [0, 1, 1, 1, int(r, 256)]),
    intact: pick(r, [0, 1, int(r, 256)]),
    tagExpected: (BigInt(u32(r)) << 32n) | BigInt(u32(r)),
    tagObserved: (BigInt(u32(r)) << 32n) | BigInt(u32(r)),
    dataExpected: randBytes(r, 16),
    dataObserved: randBytes(r, 16),
  };
}

function baseEvent(r: Rng, fixed: boolean): Uint8Array {
  const big = !fixed && r() < 0.05; // a few near the 16 KiB limit
  const o: SynthOptions = {
    encoding: fixed ? "fixed" : "compact",
    tag: (BigInt(u32(r)) << 32n) | BigInt(u32(r)),
    ktimeNs: (BigInt(u32(r)) << 32n) | BigInt(u32(r)),
    seq: BigInt(u32(r)),
    cpu: int(r, 512),
    mode: int(r, 3),
    slots: 1 + int(r, 3),
    transport: int(r, 3),
    guard: int(r, 2),
    pid: u32(r),
    tid: u32(r),
    ppid: u32(r),
    uid: u32(r),
    gid: u32(r),
    flags: r() < 0.5 ? int(r, 256) : u32(r),
    cgroupId: (BigInt(u32(r)) << 32n) | BigInt(u32(r)),
    mntnsId: u32(r),
    euid: u32(r),
    egid: u32(r),
    pgid: u32(r),
    sid: u32(r),
    sessionid: u32(r),
    auid: u32(r),
    pidnsId: u32(r),
    // Past 2^53 now and then: the compiled renderer must hand those to the general one.
    startNs: r() < 0.1 ? (BigInt(u32(r)) << 32n) | BigInt(u32(r)) : BigInt(u32(r)) * 1000n,
    execSeq: BigInt(int(r, 1000)),
    pstartNs: r() < 0.1 ? (BigInt(u32(r)) << 32n) | BigInt(u32(r)) : BigInt(u32(r)) * 1000n,
    pexecSeq: BigInt(int(r, 1000)),
    argsTotal: u32(r),
    // The exec context: scalars anywhere in their range (a negative res, any family), strings as hostile as argv.
    res: pick(r, [0, -2, -13, u32(r) | 0]),
    exeDev: u32(r),
    exeIno: (BigInt(u32(r)) << 32n) | BigInt(u32(r)),
    saFamily: pick(r, [0, 2, 10, u32(r)]),
    sport: pick(r, [0, 22, 65535, u32(r)]),
    dport: pick(r, [0, 4444, u32(r)]),
    // At most what each field's array holds (bpf/dual_slot.h: DS_TTY_CAP, DS_FD_CAP, DS_IP_CAP, ...).
    tty: randStr(r, 31),
    stdin: randStr(r, 255),
    stdout: randStr(r, 255),
    sip: randStr(r, 45),
    dip: randStr(r, 45),
    ssh: randStr(r, 95),
    ldPreload: randStr(r, 127),
    levels: Array.from({ length: int(r, LEVELS + 1) }, () => randLevel(r)),
    comm: randStr(r, fixed ? 16 : 16),
    filename: randStr(r, fixed ? 256 : big ? 511 : 200),
    argsRaw: randStr(r, fixed ? 2048 : big ? 8191 : 400),
    cwd: randStr(r, fixed ? 512 : big ? 2047 : 100),
    exe: randStr(r, fixed ? 512 : big ? 2047 : 100),
    pexe: randStr(r, fixed ? 512 : big ? 2047 : 100),
    nodename: randStr(r, 64),
    pidTree: randStr(r, 255),
    trailing: r() < 0.3 ? int(r, 8) : 0,
    padByte: int(r, 256),
  };
  return synthEvent(o);
}

function setU32(b: Uint8Array, off: number, v: number): void {
  if (off + 4 <= b.length) new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(off, v >>> 0, true);
}

function hdrSize(b: Uint8Array): number {
  return b.length >= Header.size_ + 4
    ? new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(Header.size_, true)
    : b.length;
}

/** One mutation of a copy of `src`; may return a shorter or longer buffer. */
function mutate(r: Rng, src: Uint8Array): Uint8Array {
  let b = src.slice();
  const n = 1 + int(r, 3);
  for (let k = 0; k < n; k++) {
    switch (int(r, 8)) {
      case 0: {
        // random byte flips, half of them in the fixed part where the lengths live
        const flips = 1 + int(r, 8);
        for (let i = 0; i < flips && b.length > 0; i++) {
          const at = r() < 0.5 ? int(r, Math.min(b.length, Exec.size)) : int(r, b.length);
          b[at] = r() < 0.5 ? b[at]! ^ (1 << int(r, 8)) : int(r, 256);
        }
        break;
      }
      case 1: {
        // a random descriptor value
        const i = int(r, STR_NR);
        setU32(b, Exec.str + 4 * i, u32(r));
        break;
      }
      case 2: {
        // a plausible but wrong descriptor: near the event's edges
        const i = int(r, STR_NR);
        const size = hdrSize(b);
        const off = pick(r, [
          int(r, Exec.size + 8),
          Exec.size - 1,
          Exec.size,
          size - int(r, 8),
          size,
          size + 1,
          int(r, 0x10000),
        ]);
        const len = pick(r, [0, 1, int(r, 64), size - off, size - off + 1, int(r, 0x10000), 0xffff]);
        setU32(b, Exec.str + 4 * i, ((len & 0xffff) << 16) | (off & 0xffff));
        break;
      }
      case 3: {
        // truncation
        b = b.slice(0, int(r, b.length + 1));
        break;
      }
      case 4: {
        // hdr.size
        const cur = hdrSize(b);
        const v = pick(r, [
          u32(r),
          cur + int(r, 33) - 16,
          int(r, b.length + 1),
          Exec.size - 1,
          Exec.size,
          SD_EVENT_MAX,
          SD_EVENT_MAX + 1,
          b.length,
          b.length + 1,
          0,
          0xffffffff,
        ]);
        setU32(b, Header.size_, v);
        break;
      }
      case 5: {
        // extension with random bytes (padding, or garbage a bad size could reach)
        const ext = randBytes(r, 1 + int(r, 64));
        const nb = new Uint8Array(b.length + ext.length);
        nb.set(b);
        nb.set(ext, b.length);
        b = nb;
        break;
      }
      case 6: {
        // header enum bytes
        const at = pick(r, [
          Header.version,
          Header.encoding,
          Header.mode,
          Header.transport,
          Header.type,
          Header.type + 1,
          Header.slots,
          Header.guard,
        ]);
        if (at < b.length) b[at] = pick(r, [0, 1, 2, 3, 0xff, int(r, 256)]);
        break;
      }
      default: {
        // level bytes
        const at =
          Exec.level +
          int(r, LEVELS) * Level.size +
          pick(r, [Level.slot, Level.used, Level.intact, int(r, Level.size)]);
        if (at < b.length) b[at] = int(r, 256);
        break;
      }
    }
  }
  return b;
}

/** A random sample that is not derived from a valid event, though half of them start with a plausible header. */
function randomSample(r: Rng): Uint8Array {
  const len = pick(r, [int(r, Exec.size), Exec.size + int(r, 2000), ExecFixed.size, int(r, SD_EVENT_MAX + 16)]);
  const b = randBytes(r, len);
  if (r() < 0.5 && len >= Exec.size) {
    b[Header.version] = 1;
    b[Header.type] = 1;
    b[Header.type + 1] = 0;
    b[Header.encoding] = int(r, 2);
    b[Header.mode] = int(r, 3);
    b[Header.transport] = int(r, 3);
    if (r() < 0.5) setU32(b, Header.size_, int(r, len + 1));
  }
  return b;
}

function describeSample(b: Uint8Array): string {
  const hex = Buffer.from(b.subarray(0, Exec.size)).toString("hex");
  return `${b.length} bytes, hdr.size=${hdrSize(b)}, first ${Math.min(b.length, Exec.size)} bytes: ${hex}`;
}

const CANARY = [0xee, 0x00, 0x41, 0xff] as const;

interface Tally {
  ok: number;
  malformed: number;
}

function check(sample: Uint8Array, maxArgs: number, r: Rng, tally: Tally, where: string): void {
  const pre = int(r, 67); // unaligned offsets too
  const post = 64 + int(r, 64);
  const canary = pick(r, CANARY);
  const big = new Uint8Array(pre + sample.length + post).fill(canary);
  big.set(sample, pre);
  const view = big.subarray(pre, pre + sample.length);

  let a: Decoded;
  let b: Decoded;
  try {
    a = decodeEvent(view, { maxArgs });
    b = decodeEvent(view.slice(), { maxArgs });
  } catch (e) {
    throw new Error(`${where}: decodeEvent threw ${String(e)} on ${describeSample(sample)}`);
  }
  if (typeof a !== "object" || a === null || (a.ok !== true && a.ok !== false)) {
    throw new Error(`${where}: decodeEvent returned ${String(a)}`);
  }
  if (!Bun.deepEquals(a, b, true)) {
    throw new Error(
      `${where}: decoding the sample inside a canary buffer differs from decoding a tight copy (read outside the sample?): ${describeSample(sample)}`,
    );
  }
  // The canary around the view and the view itself are untouched.
  for (let i = 0; i < pre; i++)
    if (big[i] !== canary) throw new Error(`${where}: byte ${i - pre} before the sample was written`);
  for (let i = pre + sample.length; i < big.length; i++) {
    if (big[i] !== canary) throw new Error(`${where}: byte ${i - pre - sample.length} after the sample was written`);
  }
  if (!Bun.deepEquals(view, sample)) throw new Error(`${where}: the sample was modified by decodeEvent`);

  if (a.ok && a.event.type === "exit") {
    tally.ok++;
    const e = a.event;
    if (e.size < ds_exit.size || e.size > sample.length)
      throw new Error(`${where}: ok exit of size ${e.size} from ${sample.length} bytes`);
    if (Buffer.byteLength(e.comm) > (e.size - ds_exit.size) * 4)
      throw new Error(`${where}: comm longer than the record`);
  } else if (a.ok && "texts" in a.event) {
    tally.ok++;
    const e = a.event;
    if (e.size < ds_record.size || e.size > sample.length)
      throw new Error(`${where}: ok ${e.type} of size ${e.size} from ${sample.length} bytes`);
    const area = e.size - ds_record.size;
    for (const t of [e.comm, e.exe, e.nodename, e.pidTree, ...Object.values(e.texts)])
      if (Buffer.byteLength(t) > area * 4) throw new Error(`${where}: string longer than the record could hold`);
    // Both renderers take whatever decoded, and keep control bytes out of a table row.
    JSON.parse(jsonLine(e, 0n, "h"));
    if (/[\x00-\x1f\x7f]/.test(tableRow(e, 200))) throw new Error(`${where}: control byte in a table row`);
  } else if (a.ok && isExecEvent(a.event)) {
    tally.ok++;
    const e = a.event;
    if (e.size < Exec.size || e.size > sample.length)
      throw new Error(`${where}: ok event of size ${e.size} from ${sample.length} bytes`);
    if (e.args.length > maxArgs) throw new Error(`${where}: ${e.args.length} args with maxArgs ${maxArgs}`);
    if (e.levels.length > LEVELS) throw new Error(`${where}: ${e.levels.length} levels`);
    for (const l of e.levels) {
      if (l.dataExpected.length !== 16 || l.dataObserved.length !== 16)
        throw new Error(`${where}: level data not 16 bytes`);
    }
    // No decoded string can hold more bytes than the event's string area.
    const area = e.size - Exec.size;
    for (const s of [e.comm, e.filename, e.cwd, e.exe, e.pexe, e.args.join("\0")]) {
      // A byte becomes at most 4 characters (\\xNN) of text.
      if (Buffer.byteLength(s) > area * 4) throw new Error(`${where}: string longer than the event could hold`);
    }
  } else if (!a.ok) {
    tally.malformed++;
    if (typeof a.reason !== "string" || a.reason === "") throw new Error(`${where}: ok:false without a reason`);
  }
}

const EXIT_SAMPLES = 20_000;

/** A valid exit record (struct ds_exit, or ds_exit_fixed): its common part and strings of random bytes. */
function exitRecord(r: Rng, fixed: boolean): Uint8Array {
  const comm = randBytes(r, 1 + int(r, 15));
  const nodename = randBytes(r, int(r, 65));
  const tree = randBytes(r, int(r, 256));
  const size = fixed ? ds_exit_fixed.size : ds_exit.size + comm.length + nodename.length + tree.length;
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  const H = ds_header.off;
  dv.setUint32(H.size, size, true);
  dv.setUint16(H.type, EventType.exit, true);
  dv.setUint8(H.version, 1);
  dv.setUint8(H.encoding, fixed ? 1 : 0);
  dv.setUint8(H.slots, 2);
  dv.setUint32(ds_exit.off.pid, int(r, 1 << 22), true);
  dv.setInt32(ds_exit.off.exit_code, int(r, 0x10000), true);
  dv.setBigUint64(ds_exit.off.runtime_ns, BigInt(int(r, 2 ** 31)) * 1000n, true);
  for (let at = ds_exit.off.common; at < ds_exit.off.common + ds_common.size; at++) b[at] = int(r, 256);
  let off: number = fixed ? ds_exit_fixed.off.comm : ds_exit.size;
  b.set(comm, off);
  setU32(b, ds_exit.off.str, ((comm.length << 16) | off) >>> 0);
  off = fixed ? ds_exit_fixed.off.nodename : off + comm.length;
  b.set(nodename, off);
  setU32(b, ds_exit.off.str + 4, ((nodename.length << 16) | off) >>> 0);
  off = fixed ? ds_exit_fixed.off.pid_tree : off + nodename.length;
  b.set(tree, off);
  setU32(b, ds_exit.off.str + 8, ((tree.length << 16) | off) >>> 0);
  return b;
}

/** The DS_RECORD_HEAD record types (fork, setsid, ptrace, ...). */
const RECORD_SPECS = EVENTS.filter((e) => e.struct.off.res !== undefined && e.struct.off.syscall !== undefined);
const RECORD_SAMPLES = 5_000;

/** A valid record of one DS_RECORD_HEAD type: random scalars, random strings packed after the struct. */
function recordOf(r: Rng, spec: EventSpec): Uint8Array {
  const strs = spec.strings.map((n) => randBytes(r, n === "comm" ? 1 + int(r, 15) : int(r, n === "exe" ? 300 : 64)));
  const st = spec.struct;
  const size = st.size + strs.reduce((a, x) => a + x.length, 0);
  const b = new Uint8Array(size);
  for (let at = ds_header.size; at < st.off.str!; at++) b[at] = int(r, 256);
  const dv = new DataView(b.buffer);
  const H = ds_header.off;
  dv.setUint32(H.size, size, true);
  dv.setUint16(H.type, spec.type, true);
  dv.setUint8(H.version, 1);
  dv.setUint8(H.encoding, 0);
  dv.setUint8(H.mode, 0);
  dv.setUint8(H.transport, 0);
  dv.setUint8(H.slots, 2);
  let off = st.size;
  strs.forEach((x, i) => {
    b.set(x, off);
    setU32(b, st.off.str! + 4 * i, ((x.length << 16) | off) >>> 0);
    off += x.length;
  });
  return b;
}

/**
 * A valid record, damaged one to three times: cut short, a string descriptor
 * (one of `strings` at `strOff`) or hdr.size overwritten, a byte flipped, or
 * bytes appended.
 */
function mutateRecord(r: Rng, src: Uint8Array, strOff: number, strings: number): Uint8Array {
  let b = src.slice();
  for (let n = 1 + int(r, 3); n > 0; n--) {
    const k = int(r, 4);
    if (k === 0) b = b.slice(0, int(r, b.length + 1));
    else if (k === 1) setU32(b, pick(r, [strOff + 4 * int(r, strings), ds_header.off.size]), (r() * 2 ** 32) >>> 0);
    else if (k === 2 && b.length > 0) b[int(r, b.length)] = int(r, 256);
    else {
      const ext = randBytes(r, 1 + int(r, 32));
      const nb = new Uint8Array(b.length + ext.length);
      nb.set(b);
      nb.set(ext, b.length);
      b = nb;
    }
  }
  return b;
}

describe("fuzz decodeEvent", () => {
  for (const [i, spec] of RECORD_SPECS.entries()) {
    test(`${RECORD_SAMPLES} random and mutated ${spec.name} records (seed ${SEED + 10 + i})`, () => {
      const r = mulberry32(SEED + 10 + i);
      const pool = Array.from({ length: 32 }, () => recordOf(r, spec));
      for (const b of pool) {
        const d = decodeEvent(b, { maxArgs: 32 });
        expect(d.ok && d.event.type).toBe(spec.name);
      }
      const tally: Tally = { ok: 0, malformed: 0 };
      for (let n = 0; n < RECORD_SAMPLES; n++) {
        const sample =
          r() < 0.1 ? pick(r, pool) : mutateRecord(r, pick(r, pool), spec.struct.off.str!, spec.strings.length);
        check(sample, 32, r, tally, `${spec.name} #${n}`);
      }
      expect(tally.ok).toBeGreaterThan(RECORD_SAMPLES / 20);
      expect(tally.malformed).toBeGreaterThan(RECORD_SAMPLES / 20);
    }, 60_000);
  }

  test("every DS_RECORD_HEAD type is fuzzed", () => {
    expect(RECORD_SPECS.map((e) => e.name as string).sort()).toEqual(
      [
        "fork",
        "kill",
        "memfd_create",
        "prctl",
        "privilege_escalation",
        "ptrace",
        "setsid",
        "connect",
        "accept",
        "bind",
        "dns",
        "create_file",
        "rename",
        "link",
        "unlink",
        "rmdir",
        "mount",
        "load_module",
      ].sort(),
    );
  });

  test(`${COMPACT_SAMPLES} random and mutated compact samples (seed ${SEED})`, () => {
    const r = mulberry32(SEED);
    const pool = Array.from({ length: 256 }, () => baseEvent(r, false));
    // Sanity: the unmutated pool is valid, so mutations start from real events.
    for (const b of pool) expect(decodeEvent(b, { maxArgs: 4096 }).ok).toBe(true);

    const tally: Tally = { ok: 0, malformed: 0 };
    const t0 = performance.now();
    for (let i = 0; i < COMPACT_SAMPLES; i++) {
      const p = r();
      const sample = p < 0.05 ? randomSample(r) : p < 0.15 ? pick(r, pool) : mutate(r, pick(r, pool));
      check(sample, pick(r, [1, 2, 8, 32, 4096]), r, tally, `compact #${i}`);
    }
    const ms = performance.now() - t0;
    console.log(
      `[fuzz] compact: ${COMPACT_SAMPLES} samples, ok=${tally.ok} malformed=${tally.malformed} in ${ms.toFixed(0)} ms`,
    );
    expect(tally.ok + tally.malformed).toBe(COMPACT_SAMPLES);
    // Both outcomes must be well represented, or the fuzzer is not exploring much.
    expect(tally.ok).toBeGreaterThan(COMPACT_SAMPLES / 20);
    expect(tally.malformed).toBeGreaterThan(COMPACT_SAMPLES / 5);
  }, 60_000);

  test(`${FIXED_SAMPLES} mutated fixed samples (seed ${SEED + 1})`, () => {
    const r = mulberry32(SEED + 1);
    const pool = Array.from({ length: 64 }, () => baseEvent(r, true));
    for (const b of pool) expect(decodeEvent(b, { maxArgs: 4096 }).ok).toBe(true);
    const tally: Tally = { ok: 0, malformed: 0 };
    for (let i = 0; i < FIXED_SAMPLES; i++) {
      const sample = r() < 0.1 ? pick(r, pool) : mutate(r, pick(r, pool));
      check(sample, pick(r, [1, 32, 4096]), r, tally, `fixed #${i}`);
    }
    console.log(`[fuzz] fixed: ${FIXED_SAMPLES} samples, ok=${tally.ok} malformed=${tally.malformed}`);
    expect(tally.ok).toBeGreaterThan(0);
    expect(tally.malformed).toBeGreaterThan(0);
  }, 60_000);

  test(`${EXIT_SAMPLES} random and mutated exit records (seed ${SEED + 2})`, () => {
    const r = mulberry32(SEED + 2);
    const pool = Array.from({ length: 64 }, () => exitRecord(r, r() < 0.3));
    for (const b of pool) expect(decodeEvent(b, { maxArgs: 32 }).ok).toBe(true);
    const tally: Tally = { ok: 0, malformed: 0 };
    for (let i = 0; i < EXIT_SAMPLES; i++) {
      const sample = r() < 0.1 ? pick(r, pool) : mutateRecord(r, pick(r, pool), ds_exit.off.str, ds_exit.count.str);
      check(sample, 32, r, tally, `exit #${i}`);
    }
    console.log(`[fuzz] exit: ${EXIT_SAMPLES} samples, ok=${tally.ok} malformed=${tally.malformed}`);
    expect(tally.ok).toBeGreaterThan(EXIT_SAMPLES / 20);
    expect(tally.malformed).toBeGreaterThan(EXIT_SAMPLES / 20);
  }, 60_000);

  test("the differential check itself catches a decoder that reads past its view", () => {
    // A deliberately broken reader: it trusts hdr.size and reads through the underlying buffer.
    const leaky = (b: Uint8Array) => {
      const size = new DataView(b.buffer, b.byteOffset).getUint32(Header.size_, true);
      return Array.from(new Uint8Array(b.buffer, b.byteOffset, Math.min(size, b.buffer.byteLength - b.byteOffset)));
    };
    const ev = synthEvent();
    const cut = ev.subarray(0, ev.length - 10);
    const big = new Uint8Array(cut.length + 64).fill(0xee);
    big.set(cut, 16);
    const view = big.subarray(16, 16 + cut.length);
    expect(Bun.deepEquals(leaky(view), leaky(view.slice()))).toBe(false);
  });
});
