/**
 * The record types' line path in a hot loop, in this process: the warm-up's
 * host-like records of each type (src/render/warm-up.ts), checked and rendered
 * by the general path (decodeEvent, an object, JSON.stringify or tableRow) and
 * by the compiled one. No kernel, no root.
 *
 *   bun benchmarks/render-records.ts [--types connect,dns] [--passes N] [--table]
 *
 * Prints, per type, the best pass's CPU µs per record on each path.
 */
import { ByteBuf } from "../src/output/bytebuf.ts";
import { LineRenderer } from "../src/render/fast.ts";
import { warmUpRecords } from "../src/render/warm-up.ts";
import { checkRecord, newSpans } from "../src/wire/decode.ts";
import type { EventName } from "../src/wire/names.ts";
import { parseFlags } from "./flags.ts";

const args = parseFlags(process.argv.slice(2));
const TYPES = (args.get("types") ?? "connect,create_file,dns,rename").split(",") as EventName[];
const PASSES = Number(args.get("passes") ?? 60);
const JSON_LINES = !args.has("table");
/** Records per pass: enough for a pass to take milliseconds. */
const PER_PASS = 2000;

const renderer = new LineRenderer({
  json: JSON_LINES,
  bootWallNs: 1_733_000_000_123_456_789n,
  maxArgs: 1024,
  host: "host-1",
  width: Number.POSITIVE_INFINITY,
});
const spans = newSpans();
const out = new ByteBuf(1 << 16);

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

function bestUs(records: Uint8Array[], general: boolean): number {
  let best = Number.POSITIVE_INFINITY;
  for (let pass = 0; pass < PASSES; pass++) {
    const c0 = cpuUs();
    for (let n = 0; n < PER_PASS; n++) {
      const b = records[n % records.length]!;
      const spec = checkRecord(b, spans);
      if (typeof spec === "string") throw new Error(spec);
      out.len = 0;
      if (general) {
        // What render() does with the general path's line.
        const line = renderer.renderGeneral(b)!;
        out.ensure(Buffer.byteLength(line));
        out.len += out.buf.write(line, 0, "utf8");
      } else renderer.render(b, spec, spans, out);
    }
    // The first third is the JIT's.
    if (pass >= PASSES / 3) best = Math.min(best, (cpuUs() - c0) / PER_PASS);
  }
  return Math.round(best * 100) / 100;
}

for (const type of TYPES) {
  // The warm-up puts exec records first: keep this type's alone.
  const records = warmUpRecords({ host: "host-1", events: [type] }).filter(
    (b) => (checkRecord(b, spans) as { name: string }).name === type,
  );
  const before = renderer.generalLines;
  const compiled = bestUs(records, false);
  console.log(
    JSON.stringify({
      type,
      format: JSON_LINES ? "ndjson" : "table",
      general_us: bestUs(records, true),
      compiled_us: compiled,
      fell_back: renderer.generalLines - before,
    }),
  );
}
