/**
 * The per-event path in a hot loop, in this process: host-like exec records
 * (the warm-up's, src/render/fast.ts) in a synthetic perf ring, framed, checked
 * and rendered as NDJSON, optionally queued in a sink. No kernel, no root.
 *
 *   bun benchmarks/render.ts [--records N] [--passes N] [--stage frame|render|sink] [--events exec,connect,...]
 *
 * Prints the best pass (CPU µs per record): what the code costs when nothing
 * else runs. The agent on a storm pays about twice that per event (the storm's
 * processes share the two CPUs and their caches), plus the drains around it.
 */
import { ByteBuf } from "../src/output/bytebuf.ts";
import { LineSink } from "../src/output/sink.ts";
import { type Framed, framePerf, PERF_RECORD_MAX } from "../src/reader/framing.ts";
import { perfRing } from "../src/reader/synthetic-ring.ts";
import { LineRenderer } from "../src/render/fast.ts";
import { warmUpRecords } from "../src/render/warm-up.ts";
import { checkRecord, newSpans } from "../src/wire/decode.ts";
import type { EventName } from "../src/wire/names.ts";
import { parseFlags } from "./flags.ts";

const args = parseFlags(process.argv.slice(2));
const RECORDS = Number(args.get("records") ?? 1600);
const PASSES = Number(args.get("passes") ?? 300);
const STAGE = args.get("stage") ?? "render";
if (!["frame", "render", "sink"].includes(STAGE)) throw new Error("--stage is frame, render or sink");

// A drain's worth of records, the host-like variants of the chosen types in turn.
const types = (args.get("events") ?? "exec").split(",") as EventName[];
const variants = warmUpRecords({ host: "host-1", events: types, noStreaks: true }).filter((r) => {
  const spec = checkRecord(r, newSpans());
  return typeof spec !== "string" && types.includes(spec.name);
});
if (variants.length === 0) throw new Error(`no warm-up records of ${types.join(",")}`);
const records = Array.from({ length: RECORDS }, (_, i) => variants[i % variants.length]!);
const { data: ring, head } = perfRing(records);

const renderer = new LineRenderer({
  json: true,
  bootWallNs: 1_733_000_000_123_456_789n,
  maxArgs: 1024,
  host: "host-1",
});
const spans = newSpans();
const out = new ByteBuf();
const sink = new LineSink(-1);
const framed: Framed = { tail: 0n, consumed: 0, records: 0, bytes: 0, lost: 0, bad: 0 };
const scratch = new Uint8Array(PERF_RECORD_MAX);
const onRecord = (b: Uint8Array): void => {
  const spec = checkRecord(b, spans);
  if (typeof spec === "string") throw new Error(spec);
  if (STAGE === "frame") return;
  const start = out.len;
  renderer.render(b, spec, spans, out);
  if (STAGE === "sink") sink.pushBytes(out.buf, start, out.len);
};

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
let best = Number.POSITIVE_INFINITY;
for (let pass = 0; pass < PASSES; pass++) {
  const c0 = cpuUs();
  out.len = 0;
  framePerf(ring, head, 0n, onRecord, scratch, framed);
  if (STAGE === "sink") sink.abandon();
  // The first third is the JIT's.
  if (pass >= PASSES / 3) best = Math.min(best, (cpuUs() - c0) / RECORDS);
}
console.log(
  JSON.stringify({
    stage: STAGE,
    events: types.join(","),
    records: RECORDS,
    passes: PASSES,
    best_cpu_us_per_record: Math.round(best * 100) / 100,
    general_lines: renderer.generalLines,
  }),
);
