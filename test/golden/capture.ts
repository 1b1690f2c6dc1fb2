/**
 * Captures golden samples: the bytes the real BPF program writes for one known
 * exec, once per transport and encoding, into test/golden/<transport>-<encoding>.bin,
 * with what the exec is known to be in test/golden/expected.json. The decoder's
 * unit tests (test/unit/golden.test.ts) decode these without a kernel.
 *
 * Run again, as root after `bun run build`, when the wire format changes:
 *   sudo bun test/golden/capture.ts
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { prepareHost } from "../../src/agent/prepare.ts";
import { possibleCpus } from "../../src/ebpf/info.ts";
import { BpfObject, DEFAULT_CONFIG } from "../../src/ebpf/object.ts";
import { PerfReader } from "../../src/reader/perf.ts";
import { RingReader } from "../../src/reader/ring.ts";
import type { EventSource } from "../../src/reader/source.ts";
import { decodeRecord } from "../../src/wire/decode.ts";
import type { EncodingName, TransportName } from "../../src/wire/names.ts";

const HERE = import.meta.dir;
const ARGV = ["golden-exec", "two words", "", "ünïcødé"];

export interface GoldenExpected {
  filename: string;
  args: string[];
  cwd: string;
  exe: string;
  comm: string;
  uid: number;
  gid: number;
  /** The capturing host's UTS name (every record's `nodename`). */
  nodename: string;
  /** Per file: the pid and parent that exec had. */
  samples: Record<string, { pid: number; ppid: number }>;
}

async function captureOne(
  image: Uint8Array,
  transport: TransportName,
  encoding: EncodingName,
  exe: string,
  cwd: string,
) {
  const obj = BpfObject.load(image, { ...DEFAULT_CONFIG, transport, encoding });
  let found: Uint8Array | null = null;
  let pid = 0;
  const onRecord = (data: Uint8Array) => {
    const d = decodeRecord(data);
    if (d.ok && d.record.fields.pid === pid && found === null) found = data.slice();
  };
  let reader: EventSource | null = null;
  try {
    reader =
      transport === "perf"
        ? new PerfReader(obj.mapFd("ds_events"), 64, onRecord, possibleCpus())
        : new RingReader(obj.mapFd("ds_ring"), onRecord);
    obj.attach("ds_exec");
    const p = Bun.spawn([exe, ...ARGV.slice(1)], { argv0: ARGV[0], cwd, stdout: "ignore", stderr: "ignore" });
    pid = p.pid;
    await p.exited;
    for (let i = 0; i < 50 && found === null; i++) {
      reader.consume();
      if (found === null) await Bun.sleep(20);
    }
  } finally {
    reader?.close();
    obj.close();
  }
  if (found === null) throw new Error(`no sample for pid ${pid} on ${transport}/${encoding}`);
  return { bytes: found as Uint8Array, pid };
}

if (import.meta.main) {
  const image = prepareHost();
  // A directory of our own, so cwd is a known path; the exec is /bin/true.
  const cwd = mkdtempSync(path.join(tmpdir(), "ds-golden-"));
  const exe = "/usr/bin/true";
  const expected: GoldenExpected = {
    filename: exe,
    args: ARGV,
    cwd,
    exe,
    comm: "true",
    uid: process.getuid?.() ?? 0,
    nodename: hostname(),
    gid: process.getgid?.() ?? 0,
    samples: {},
  };
  try {
    for (const transport of ["perf", "ringbuf", "ringbuf-output"] as const) {
      for (const encoding of ["compact", "fixed"] as const) {
        const { bytes, pid } = await captureOne(image, transport, encoding, exe, cwd);
        const file = `${transport}-${encoding}.bin`;
        writeFileSync(path.join(HERE, file), bytes);
        expected.samples[file] = { pid, ppid: process.pid };
        process.stderr.write(`captured ${file}: ${bytes.length} bytes\n`);
      }
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
  writeFileSync(path.join(HERE, "expected.json"), `${JSON.stringify(expected, null, 2)}\n`);
}
