/**
 * `bun run bench -- --only=fleet`: the ClickHouse sink's figures on this
 * machine, against a real clickhouse-server started here (Debian's 18.16):
 *
 * 1. agent CPU per event on the exec storm, NDJSON to stdout alone vs with
 *    --sink (and --spool), each on a warm agent (its second storm);
 * 2. rows/s into ClickHouse sustained over the storm: rows that reached the
 *    table over the time from the storm's start to the last one's arrival;
 * 3. replay after an outage: the server killed, the storm run again and
 *    again for --outage-s (default 60), the server restarted; spooled rows
 *    over the time the table took to have them all.
 *
 * Root; wrap it in `flock /tmp/ds-bench.lock` like every timing run here.
 * Figures go to stdout (and benchmarks/fleet.json); timings never decide a test.
 */
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClickHouse } from "../test/helpers/clickhouse.ts";
import { cpuNs } from "./agent-process.ts";
import { execStorm } from "./exec-storm.ts";
import { parseFlags } from "./flags.ts";

const root = join(import.meta.dir, "..");
const arch = process.arch === "arm64" ? "arm64" : "x64";
const TOOLS = join(root, "out/workloads", arch);
const args = parseFlags(process.argv.slice(2));
const BIN = args.get("bin") ?? join(root, "dual-slot");
const EXECS = Number(args.get("execs") ?? 20000);
const WORKERS = Number(args.get("workers") ?? 2);
const OUTAGE_S = Number(args.get("outage-s") ?? 60);

if (process.geteuid?.() !== 0) throw new Error("the benchmark loads BPF programs: run it as root");

const execs = execStorm(TOOLS, "bench-fleet", "dsf", EXECS, WORKERS);
const { dir, comm } = execs;
const storm = execs.run;

interface Agent {
  pid: number;
  stop(): Promise<string>;
}

async function agent(extra: string[]): Promise<Agent> {
  const p = Bun.spawn([BIN, "--json", "--events", "exec", "--comm", comm, ...extra], {
    stdout: "ignore",
    stderr: "pipe",
  });
  let err = "";
  const reader = p.stderr.getReader();
  const dec = new TextDecoder();
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      err += dec.decode(value, { stream: true });
    }
  })();
  while (!err.includes("attached")) {
    if (p.exitCode !== null) throw new Error(`agent exited: ${err}`);
    await Bun.sleep(5);
  }
  await Bun.sleep(1500); // the warm-up and its JIT threads
  return {
    pid: p.pid,
    stop: async () => {
      p.kill("SIGINT");
      await p.exited;
      await pump;
      return err;
    },
  };
}

const summary = (err: string) =>
  Object.fromEntries(
    [...(err.split("\n").find((l) => l.startsWith("summary:")) ?? "").matchAll(/(\w+)=(\S+)/g)].map((m) => [
      m[1],
      m[2],
    ]),
  );

const ch = new ClickHouse();
const out: Record<string, unknown> = { execs: EXECS, workers: WORKERS, outage_s: OUTAGE_S };
try {
  await ch.start();
  const url = ch.url("fleet.bench");
  const ddl = Bun.spawnSync([BIN, "sink", "schema", url], { stdout: "pipe" }).stdout.toString();
  await ch.query("CREATE DATABASE IF NOT EXISTS fleet");
  await ch.query(ddl);
  const rows = () => ch.number(`SELECT count() FROM fleet.bench WHERE comm = '${comm}'`);

  // 1. CPU per event: stdout alone, then with the sink, each on its second (warm) storm.
  const cpuPerEvent = async (extra: string[]): Promise<{ us: number; arrivalRate?: number; err: string }> => {
    const a = await agent(extra);
    const start = extra.length > 0 ? await rows() : 0;
    await storm();
    await Bun.sleep(250);
    // The first storm's rows all in before the second starts (or 60 s).
    for (const deadline = performance.now() + 60_000; extra.length > 0 && performance.now() < deadline; ) {
      if ((await rows()) - start >= EXECS) break;
      await Bun.sleep(100);
    }
    const before = extra.length > 0 ? await rows() : 0;
    const c0 = cpuNs(a.pid);
    const t0 = performance.now();
    await storm();
    await Bun.sleep(250);
    const us = (cpuNs(a.pid) - c0) / 1000 / EXECS;
    let arrivalRate: number | undefined;
    if (extra.length > 0) {
      // Rows/s into the table: from the storm's start to the last row's arrival.
      let n = before;
      let last = performance.now();
      for (const deadline = performance.now() + 60_000; performance.now() < deadline; ) {
        const m = await rows();
        if (m > n) {
          n = m;
          last = performance.now();
        }
        if (n - before >= EXECS) break;
        await Bun.sleep(50);
      }
      arrivalRate = (n - before) / ((last - t0) / 1000);
      out.rows_arrived_of_storm = `${n - before}/${EXECS}`;
    }
    const err = await a.stop();
    return { us, ...(arrivalRate !== undefined ? { arrivalRate } : {}), err };
  };
  const plain = await cpuPerEvent([]);
  out.agent_cpu_us_per_event_stdout = Math.round(plain.us * 100) / 100;
  const spool = join(dir, "spool");
  const sinked = await cpuPerEvent(["--sink", url, "--spool", spool]);
  out.agent_cpu_us_per_event_sink = Math.round(sinked.us * 100) / 100;
  out.sink_rows_per_s = Math.round(sinked.arrivalRate ?? 0);
  out.lost_stdout = summary(plain.err).lost;
  out.lost_sink = summary(sinked.err).lost;
  process.stderr.write(`bench fleet: ${JSON.stringify(out)}\n`);

  // 3. Outage: the server away for OUTAGE_S while storms run, then back.
  const before = await rows();
  await ch.kill();
  const a = await agent(["--sink", url, "--spool", spool]);
  const t0 = performance.now();
  let stormed = 0;
  while (performance.now() - t0 < OUTAGE_S * 1000) {
    await storm();
    stormed += EXECS;
  }
  await Bun.sleep(1500); // the last batch sealed and spooled
  const spooledBytes = readdirSync(spool).reduce((n, f) => n + Bun.file(join(spool, f)).size, 0);
  const r0 = performance.now();
  await ch.start();
  const want = before + stormed;
  let n = before;
  for (const deadline = performance.now() + 600_000; performance.now() < deadline && n < want; ) {
    await Bun.sleep(100);
    n = await rows();
  }
  const replaySeconds = (performance.now() - r0) / 1000;
  const err = await a.stop();
  Object.assign(out, {
    outage_rows_spooled: stormed,
    outage_spool_mib: Math.round(spooledBytes / 1024 / 102.4) / 10,
    replay_rows_arrived: `${n - before}/${stormed}`,
    replay_seconds_incl_server_start: Math.round(replaySeconds * 10) / 10,
    replay_rows_per_s: Math.round((n - before) / replaySeconds),
    outage_sink_dropped: summary(err).sink_dropped,
    outage_lost: summary(err).lost,
  });
} finally {
  await ch.destroy();
  execs.remove();
}
console.log("ClickHouse sink (--sink) on the exec storm:");
console.table(out);
writeFileSync(
  join(root, "benchmarks/fleet.json"),
  `${JSON.stringify({ date: new Date().toISOString(), ...out }, null, 2)}\n`,
);
