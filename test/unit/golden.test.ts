/**
 * Golden samples: bytes the real BPF program wrote for one known exec, per
 * transport and encoding (test/golden/capture.ts made them), decoded here without
 * a kernel. Beside the synthetic builder, they pin the decoder to what the
 * kernel side really emits, including perf's padding after a sample.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import path from "node:path";
import { jsonLine, tableRow } from "../../src/render/event.ts";
import { decodeEvent, isExecEvent } from "../../src/wire/decode.ts";
import type { GoldenExpected } from "../golden/capture.ts";
import { schemaErrors } from "../helpers/schema.ts";

const DIR = path.join(import.meta.dir, "../golden");
const expected = JSON.parse(readFileSync(path.join(DIR, "expected.json"), "utf8")) as GoldenExpected;

describe("golden samples from the real program", () => {
  for (const transport of ["perf", "ringbuf", "ringbuf-output"] as const) {
    for (const encoding of ["compact", "fixed"] as const) {
      const file = `${transport}-${encoding}.bin`;
      test(file, () => {
        const bytes = new Uint8Array(readFileSync(path.join(DIR, file)));
        const d = decodeEvent(bytes, { maxArgs: 32 });
        if (!d.ok) throw new Error(`${file}: ${d.reason}`);
        const ev = d.event;
        if (!isExecEvent(ev)) throw new Error(`${file}: decoded as ${ev.type}`);
        const known = expected.samples[file]!;
        expect({
          type: ev.type,
          transport: ev.transport,
          encoding: ev.encoding,
          mode: ev.mode,
          slots: ev.slots,
          pid: ev.pid,
          tid: ev.tid,
          ppid: ev.ppid,
          uid: ev.uid,
          gid: ev.gid,
          comm: ev.comm,
          filename: ev.filename,
          args: ev.args,
          cwd: ev.cwd,
          exe: ev.exe,
          pexe: ev.pexe,
          argsTruncated: ev.argsTruncated,
          pathTruncated: ev.pathTruncated,
          slot1Intact: ev.slot1Intact,
          corrupt: ev.corrupt,
          clobbered: ev.clobbered,
        }).toEqual({
          type: "exec",
          transport,
          encoding,
          mode: "dual",
          slots: 2,
          pid: known.pid,
          tid: known.pid,
          ppid: known.ppid,
          uid: expected.uid,
          gid: expected.gid,
          comm: expected.comm,
          filename: expected.filename,
          args: expected.args,
          cwd: expected.cwd,
          exe: expected.exe,
          pexe: "",
          argsTruncated: false,
          pathTruncated: false,
          slot1Intact: true,
          corrupt: false,
          clobbered: false,
        });
        // struct ds_common: the capture ran as this process's child, as root, outside any container.
        expect([ev.nodename, ev.euid, ev.egid]).toEqual([expected.nodename, expected.uid, expected.gid]);
        expect(ev.pidTree).toStartWith(`${known.pid}.true<${known.ppid}.`);
        expect(ev.execId).toMatch(new RegExp(`^\\d+:${known.pid}:\\d+$`));
        expect(ev.parentExecId).toMatch(new RegExp(`^\\d+:${known.ppid}:\\d+$`));
        expect(ev.argsTotal).toBe(Buffer.byteLength(expected.args.map((a) => `${a}\0`).join("")));
        // perf pads the raw sample to 8 bytes; the ring buffer hands out the event's exact size.
        if (transport === "perf") expect(bytes.length - ev.size).toBeLessThan(8);
        else expect(ev.size).toBe(bytes.length);
        expect(ev.levels.map((l) => [l.slot, l.intact])).toEqual([
          [1, true],
          [transport === "ringbuf" ? null : 0, true],
        ]);
        const j = JSON.parse(jsonLine(ev, 0n)) as Record<string, unknown>;
        expect(schemaErrors(j)).toEqual([]);
        expect([j.event, j.pid, j.args, j.cwd, (j.heap as Record<string, unknown>).slot1_intact]).toEqual([
          "exec",
          known.pid,
          expected.args,
          expected.cwd,
          true,
        ]);
        expect(tableRow(ev)).toStartWith(
          `EXEC         ${String(known.pid).padEnd(8)} ${String(known.ppid).padEnd(8)} true`,
        );
      });
    }
  }
});
