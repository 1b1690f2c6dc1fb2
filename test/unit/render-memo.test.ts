/**
 * The renderer's memo (src/render/memo.ts): a run of a line kept by pid (or
 * by ppid, for an exec's and an exit's runs) is copied only when every byte
 * it is rendered from is the same. Each record type's record is rendered,
 * then every one of its bits is changed in turn (the pid that picks the entry
 * kept, so the same entry is asked) and the line compared with the general
 * path's; a run key that missed a byte would copy the previous record's text
 * and differ here.
 */
import { describe, expect, test } from "bun:test";
import { ByteBuf } from "../../src/output/bytebuf.ts";
import { LineRenderer } from "../../src/render/fast.ts";
import { checkRecord, newSpans } from "../../src/wire/decode.ts";
import { EVENTS } from "../../src/wire/events.ts";
import { ds_exit, ds_flags, ds_header } from "../../src/wire/layout.gen.ts";
import { EventType, Mode } from "../helpers/layout.ts";
import { mulberry32, synthEvent } from "../helpers/synth.ts";
import { sampleRecord } from "../helpers/synth-record.ts";

const BOOT = 1_733_000_000_123_456_789n;
const RECORD_SPECS = EVENTS.filter((e) => e.struct.off.syscall !== undefined);
const enc = new TextEncoder();

/** An exec record with every context string set, so that each has bits to change. */
function execRecord(encoding: "compact" | "fixed"): Uint8Array {
  return synthEvent({
    encoding,
    pid: 4242,
    ppid: 4000,
    cgroupId: 7777n,
    mntnsId: 4026531832,
    pidnsId: 4026531836,
    euid: 1000,
    startNs: 31291724952382n,
    execSeq: 4n,
    nodename: "web-1",
    pidTree: "4242.sh<4000.bash<1.init",
    tty: enc.encode("pts/3"),
    stdin: enc.encode("tcp:10.0.0.5:4444"),
    stdout: enc.encode("pipe:[123]"),
    sip: enc.encode("127.0.0.1"),
    dip: enc.encode("10.0.0.5"),
    ssh: enc.encode("10.0.0.9 5000 10.0.0.1 22"),
    ldPreload: enc.encode("/tmp/x.so"),
  });
}

/** An exit record (synthEvent makes exec records only). */
function exitRecord(): Uint8Array {
  const strs = ["sleep", "web-1", "4242.sleep<4000.bash<1.init"].map((t) => enc.encode(t));
  const size = ds_exit.size + strs.reduce((n, s) => n + s.length, 0);
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  const H = ds_header.off;
  const O = ds_exit.off;
  dv.setBigUint64(H.ktime_ns, 31291724952382n, true);
  dv.setUint32(H.size, size, true);
  dv.setUint16(H.type, EventType.exit, true);
  b[H.version] = 1;
  b[H.mode] = Mode.dual;
  b[H.slots] = 2;
  dv.setUint32(O.pid, 4242, true);
  dv.setUint32(O.ppid, 4000, true);
  dv.setInt32(O.exit_code, 256, true);
  dv.setBigUint64(O.cgroup_id, 7777n, true);
  dv.setUint32(O.flags, ds_flags.DS_F_SLOT1_INTACT, true);
  let at = ds_exit.size;
  strs.forEach((s, i) => {
    dv.setUint32(O.str! + 4 * i, ((s.length << 16) | at) >>> 0, true);
    b.set(s, at);
    at += s.length;
  });
  return b;
}

function line(r: LineRenderer, b: Uint8Array, out: ByteBuf): string | null {
  const spans = newSpans();
  const spec = checkRecord(b, spans);
  if (typeof spec === "string") return null;
  out.len = 0;
  if (!r.render(b, spec, spans, out)) return null;
  return out.buf.toString("utf8", 0, out.len);
}

describe("the renderer's memo of runs of fields", () => {
  test("a repeated record's run is copied, and the line is the one rendering writes", () => {
    const rng = mulberry32(0x3e30);
    const r = new LineRenderer({ json: true, bootWallNs: BOOT, maxArgs: 1024, host: "host-1", memoEveryRecord: true });
    const out = new ByteBuf(1024);
    const cases: Array<[string, Uint8Array, number]> = RECORD_SPECS.map((spec) => [
      spec.name,
      sampleRecord(rng, spec, true),
      1,
    ]);
    cases.push(["exec", execRecord("compact"), 2], ["exec (fixed)", execRecord("fixed"), 2], ["exit", exitRecord(), 1]);
    for (const [name, b, runs] of cases) {
      const first = line(r, b, out);
      const hits = r.memo.hits;
      expect(line(r, b, out)).toBe(first);
      expect({ name, hits: r.memo.hits - hits }).toEqual({ name, hits: runs });
      expect(first).toBe(r.renderGeneral(b));
    }
  });

  test("every bit of every type's record changed in turn, the entry's pid kept: each line as the general path writes it", () => {
    const rng = mulberry32(0x3e31);
    const r = new LineRenderer({ json: true, bootWallNs: BOOT, maxArgs: 1024, host: "host-1", memoEveryRecord: true });
    const out = new ByteBuf(1024);
    let compared = 0;
    // The field that picks a record's entry: a syscall record's runs are by pid, exec's and exit's by ppid.
    const cases: Array<[string, Uint8Array, number]> = [];
    for (const spec of RECORD_SPECS)
      for (let k = 0; k < 2; k++) cases.push([spec.name, sampleRecord(rng, spec, true), spec.struct.off.pid!]);
    const execPpid = EVENTS.find((e) => e.name === "exec")!.struct.off.ppid!;
    cases.push(["exec", execRecord("compact"), execPpid], ["exec (fixed)", execRecord("fixed"), execPpid]);
    cases.push(["exit", exitRecord(), ds_exit.off.ppid!]);
    for (const [name, b, keyAt] of cases) {
      expect({ name, line: line(r, b, out) }).toEqual({ name, line: r.renderGeneral(b) });
      for (let i = 0; i < b.length; i++) {
        if (i >= keyAt && i < keyAt + 4) continue;
        const was = b[i]!;
        for (let bit = 0; bit < 8; bit++) {
          // The original first, so the entry holds it when the changed record asks.
          line(r, b, out);
          b[i] = was ^ (1 << bit);
          const got = line(r, b, out);
          if (got !== null) {
            compared++;
            if (got !== r.renderGeneral(b))
              throw new Error(
                `${name}: bit ${bit} of byte ${i} changed, line differs\n got: ${got}\nwant: ${r.renderGeneral(b)}`,
              );
          }
          b[i] = was;
        }
      }
    }
    expect(compared).toBeGreaterThan(50_000);
    expect(r.memo.hits).toBeGreaterThan(compared / 2);
  }, 60_000);

  test("a run that keeps missing is passed over, then asked again", () => {
    const r = new LineRenderer({ json: true, bootWallNs: BOOT, maxArgs: 1024, host: "host-1" });
    const out = new ByteBuf(1024);
    const spec = EVENTS.find((e) => e.name === "connect")!;
    const b = sampleRecord(mulberry32(0x3e32), spec, true);
    const at = spec.struct.off.uid!;
    // A new uid each record: the run never repeats.
    for (let i = 0; i < 200; i++) {
      b[at] = i;
      expect(line(r, b, out)).toBe(r.renderGeneral(b));
    }
    // 8 misses, then two in 58 records asked.
    expect(r.memo.hits).toBe(0);
    expect(r.memo.misses).toBeLessThan(8 + 2 * 4);
    // Repeating again: found within a pass-over, copied from then on.
    for (let i = 0; i < 100; i++) expect(line(r, b, out)).toBe(r.renderGeneral(b));
    expect(r.memo.hits).toBeGreaterThan(40);
  });
});
