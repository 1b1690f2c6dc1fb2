/**
 * The renderer's per-process memo (src/render/memo.ts): a run of a line kept
 * by pid is copied only when every byte it is rendered from is the same. Each
 * DS_RECORD_HEAD type's record is rendered, then every one of its bits is
 * changed in turn (the pid kept, so the same entry is asked) and the line
 * compared with the general path's; a run key that missed a byte would copy
 * the previous record's text and differ here.
 */
import { describe, expect, test } from "bun:test";
import { ByteBuf } from "../../src/output/bytebuf.ts";
import { LineRenderer } from "../../src/render/fast.ts";
import { checkRecord, newSpans } from "../../src/wire/decode.ts";
import { EVENTS } from "../../src/wire/events.ts";
import { mulberry32 } from "../helpers/synth.ts";
import { sampleRecord } from "../helpers/synth-record.ts";

const BOOT = 1_733_000_000_123_456_789n;
const RECORD_SPECS = EVENTS.filter((e) => e.struct.off.syscall !== undefined);

function line(r: LineRenderer, b: Uint8Array, out: ByteBuf): string | null {
  const spans = newSpans();
  const spec = checkRecord(b, spans);
  if (typeof spec === "string") return null;
  out.len = 0;
  if (!r.render(b, spec, spans, out)) return null;
  return out.buf.toString("utf8", 0, out.len);
}

describe("the per-process run memo", () => {
  test("a repeated record's run is copied, and the line is the one rendering writes", () => {
    const rng = mulberry32(0x3e30);
    const r = new LineRenderer({ json: true, bootWallNs: BOOT, maxArgs: 1024, host: "host-1" });
    const out = new ByteBuf(1024);
    for (const spec of RECORD_SPECS) {
      const b = sampleRecord(rng, spec, true);
      const first = line(r, b, out);
      const hits = r.memo.hits;
      expect(line(r, b, out)).toBe(first);
      expect({ type: spec.name, hit: r.memo.hits - hits }).toEqual({ type: spec.name, hit: 1 });
      expect(first).toBe(r.renderGeneral(b));
    }
  });

  test("every bit of every type's record changed in turn, the pid kept: each line as the general path writes it", () => {
    const rng = mulberry32(0x3e31);
    const r = new LineRenderer({ json: true, bootWallNs: BOOT, maxArgs: 1024, host: "host-1" });
    const out = new ByteBuf(1024);
    let compared = 0;
    for (const spec of RECORD_SPECS) {
      const pidAt = spec.struct.off.pid!;
      for (let variant = 0; variant < 2; variant++) {
        const b = sampleRecord(rng, spec, true);
        for (let i = 0; i < b.length; i++) {
          if (i >= pidAt && i < pidAt + 4) continue;
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
                  `${spec.name}: bit ${bit} of byte ${i} changed, line differs\n got: ${got}\nwant: ${r.renderGeneral(b)}`,
                );
            }
            b[i] = was;
          }
        }
      }
    }
    expect(compared).toBeGreaterThan(50_000);
    expect(r.memo.hits).toBeGreaterThan(compared / 2);
  }, 60_000);
});
