/**
 * The ClickHouse fleet sink (run --sink) against a real clickhouse-server
 * (Debian's package, started by the test as user clickhouse on free ports):
 * N execs arrive as exactly N rows with their fields; a server killed
 * mid-stream loses nothing and duplicates nothing once it is back; a spool
 * past its cap drops the oldest and counts every row; bad credentials and an
 * unreachable server are one warning line and spooling; two agents writing at
 * once leave no gaps; a batch sent twice folds into one.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { Batcher } from "../../src/fleet/batcher.ts";
import { ClickHouseClient } from "../../src/fleet/client.ts";
import { parseSinkTarget } from "../../src/fleet/target.ts";
import { BIN, type Proc, parseEvents, parseSummary, spawnProc, uniqueTrue, waitAttached } from "../helpers/agent.ts";
import {
  AGENT_PASSWORD,
  AGENT_USER,
  CLICKHOUSE_SERVER,
  ClickHouse,
  freePort,
  SHARD_DATABASES,
  TWO_SHARDS,
} from "../helpers/clickhouse.ts";
import { describeKernel } from "../helpers/kernel.ts";

const dirs: string[] = [];
const servers: ClickHouse[] = [];
/** Every agent started here: one a failed test left running is killed, not left attached. */
const agents: Proc[] = [];
afterAll(async () => {
  for (const a of agents) await a.finish("SIGKILL", 5_000);
  for (const s of servers) await s.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "dual-slot-fleet-"));
  dirs.push(d);
  return d;
}

let tables = 0;
/** A fresh table on `ch`, created from `dual-slot sink schema`. */
async function newTable(ch: ClickHouse, name?: string): Promise<{ table: string; url: string }> {
  const table = name ?? `fleet.events_${++tables}`;
  const url = ch.url(table);
  const ddl = Bun.spawnSync([BIN, "sink", "schema", url], { stdout: "pipe", stderr: "pipe" });
  if (ddl.exitCode !== 0) throw new Error(`sink schema: ${ddl.stderr.toString()}`);
  await ch.query(`CREATE DATABASE IF NOT EXISTS ${table.split(".")[0]}`);
  await ch.query(ddl.stdout.toString());
  return { table, url };
}

async function agent(
  url: string,
  extra: string[],
  env: Record<string, string | undefined> = process.env,
): Promise<Proc> {
  const p = spawnProc([BIN, "--events", "exec", "--sink", url, "--sink-flush", "0.2", ...extra], { env });
  agents.push(p);
  await waitAttached(p);
  return p;
}

/** Runs `path tag<i>` n times; returns the pids. */
async function execs(path: string, n: number, tag: string): Promise<number[]> {
  const pids: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = Bun.spawn([path, `${tag}${i}`], { stdout: "ignore", stderr: "ignore", stdin: "ignore" });
    if ((await p.exited) !== 0) throw new Error(`${path} failed`);
    pids.push(p.pid);
  }
  return pids;
}

const warnings = (stderr: string) =>
  stderr.split("\n").filter((l) => /clickhouse sink: (still )?cannot insert/.test(l));

/** Every row of `run` arrived once: seq 1..max, no gap, no twin (after FINAL). */
async function expectNoGaps(ch: ClickHouse, table: string, run: string, sent: number): Promise<void> {
  const [n, distinct, max] = (
    await ch.query(`SELECT count(), uniqExact(seq), max(seq) FROM ${table} FINAL WHERE run = '${run}'`)
  )
    .trim()
    .split("\t")
    .map(Number);
  expect({ n, distinct, max }).toEqual({ n: sent, distinct: sent, max: sent });
}

async function runOf(ch: ClickHouse, table: string, comm: string): Promise<string[]> {
  return (await ch.query(`SELECT DISTINCT run FROM ${table} WHERE comm = '${comm}' ORDER BY run`))
    .trim()
    .split("\n")
    .filter((s) => s !== "");
}

describeKernel(
  "fleet sink into a real ClickHouse (root)",
  { executables: [CLICKHOUSE_SERVER], commands: ["setpriv", "unshare", "hostname"] },
  () => {
    let ch: ClickHouse;
    beforeAll(async () => {
      ch = new ClickHouse();
      servers.push(ch);
      await ch.start();
    }, 60_000);

    test("N execs arrive as exactly N rows, with their fields; the run has no gap", async () => {
      const { table, url } = await newTable(ch);
      const bin = uniqueTrue("dsfleet");
      dirs.push(bin.dir);
      // --comm: only these execs are shipped; the `sink query` runs just before the signal would otherwise
      // leave a batch open that a busy server must take within the stop's grace (sink_waiting below).
      const a = await agent(url, ["--spool", join(tempDir(), "spool"), "--comm", bin.comm]);
      const N = 25;
      const pids = await execs(bin.path, N, "n");
      const where = `FROM ${table} FINAL WHERE event = 'exec' AND comm = '${bin.comm}'`;
      expect(await ch.waitFor(`SELECT count() ${where}`, N)).toBe(N);
      const rows = (await ch.query(`SELECT * ${where} FORMAT JSONEachRow`))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(rows.map((r) => Number(r.pid)).sort()).toEqual([...pids].sort());
      for (const r of rows) {
        const i = pids.indexOf(Number(r.pid));
        expect(r.exe).toBe(bin.path);
        expect(r.filename).toBe(bin.path);
        expect(r.args).toEqual([bin.path, `n${i}`]);
        expect(r.host).toBe(hostname());
        expect(Number(r.uid)).toBe(0);
        expect(r.raw).toBe(""); // exec rows: every field has its column
      }
      // Held below against the lines on stdout: every field, in its column.
      const rowByPid = new Map(rows.map((r) => [Number(r.pid), r]));
      // The shipped queries run on 18.16; our copy of true is among this host's top commands.
      const top = Bun.spawnSync([BIN, "sink", "query", "top-commands", url, "--run"], {
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(top.stderr.toString()).toBe("");
      expect(top.stdout.toString()).toContain(bin.path);
      for (const q of ["first-seen", "reverse-shells", "privilege-escalations", "web-server-children"]) {
        const r = Bun.spawnSync([BIN, "sink", "query", q, url, "--run"], { stdout: "pipe", stderr: "pipe" });
        expect(`${q}: ${r.stderr.toString()}`).toBe(`${q}: `);
        expect(r.exitCode).toBe(0);
      }
      const run = await a.finish("SIGINT");
      const s = parseSummary(run.stderr);
      expect(s.sink_dropped).toBe("0");
      expect(s.sink_waiting).toBe("0");
      // The same lines went to stdout, and each field of each is its row's column.
      const lines = parseEvents(run.stdout).filter((e) => e.comm === bin.comm);
      expect(lines).toHaveLength(N);
      for (const line of lines) {
        const row = rowByPid.get(line.pid)!;
        for (const [k, v] of Object.entries(line)) {
          if (k === "heap") continue; // the lab's view: not kept
          const want = typeof v === "boolean" ? Number(v) : Array.isArray(v) ? v : String(v);
          const got = Array.isArray(row[k]) ? row[k] : typeof v === "boolean" ? Number(row[k]) : String(row[k]);
          expect({ k, v: got }).toEqual({ k, v: want });
        }
      }
      await expectNoGaps(ch, table, String(rows[0]!.run), Number(s.sink_sent));
    }, 60_000);

    test("server killed mid-stream: M more execs are spooled and replayed, N+M rows, no duplicates", async () => {
      const { table, url } = await newTable(ch);
      const bin = uniqueTrue("dsfleet");
      dirs.push(bin.dir);
      const spool = join(tempDir(), "spool");
      const a = await agent(url, ["--spool", spool, "--comm", bin.comm]);
      const where = `FROM ${table} FINAL WHERE event = 'exec' AND comm = '${bin.comm}'`;
      const N = 15;
      const M = 20;
      await execs(bin.path, N, "before");
      expect(await ch.waitFor(`SELECT count() ${where}`, N)).toBe(N);
      await ch.kill();
      await execs(bin.path, M, "after");
      const deadline = Date.now() + 15_000;
      while (warnings(a.stderr()).length === 0 && Date.now() < deadline) await Bun.sleep(100);
      expect(warnings(a.stderr())).toHaveLength(1);
      expect(readdirSync(spool).filter((f) => f.endsWith(".gz")).length).toBeGreaterThan(0);
      await ch.start();
      expect(await ch.waitFor(`SELECT count() ${where}`, N + M, 60_000)).toBe(N + M);
      expect(await ch.number(`SELECT uniqExact(pid) ${where}`)).toBe(N + M);
      // Said once the replayed batch is in and its spool file gone: the rows can show in the server first.
      const said = Date.now() + 10_000;
      while (!a.stderr().includes("takes inserts again") && Date.now() < said) await Bun.sleep(50);
      expect(a.stderr()).toContain("takes inserts again");
      const run = await a.finish("SIGINT");
      const s = parseSummary(run.stderr);
      expect(s.sink_dropped).toBe("0");
      expect(s.sink_waiting).toBe("0");
      const [r] = await runOf(ch, table, bin.comm);
      await expectNoGaps(ch, table, r!, Number(s.sink_sent));
      expect(readdirSync(spool).filter((f) => f.endsWith(".gz"))).toEqual([]);
    }, 120_000);

    test("a spool past its cap drops the oldest batches and counts every row; the rest replays", async () => {
      const down = new ClickHouse(); // its port: nothing listens yet
      servers.push(down);
      const bin = uniqueTrue("dsfleet");
      dirs.push(bin.dir);
      const spool = join(tempDir(), "spool");
      const cap = 8 * 1024;
      const metrics = freePort();
      const a = await agent(down.url("fleet.events_cap"), [
        "--spool",
        spool,
        "--spool-size",
        String(cap),
        "--metrics",
        `127.0.0.1:${metrics}`,
        // Only our execs (and the sink's own records): the host's other execs do not decide what is dropped.
        "--comm",
        bin.comm,
      ]);
      // Live, before the summary: the drop count in the metrics. Rounds of execs until it moves (batches
      // are sealed at 1 s of age, and the first drain after a quiet spell may come a second late).
      const dropsSoFar = async () => {
        const scraped = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
        return Number(/^dual_slot_sink_dropped_total (\d+)$/m.exec(scraped)?.[1]);
      };
      let live = 0;
      for (let i = 0; i < 60 && live === 0; i++) {
        await execs(bin.path, 10, `c${i}-`);
        await Bun.sleep(250);
        if (i >= 9) live = await dropsSoFar();
      }
      expect(live).toBeGreaterThan(0);
      const run = await a.finish("SIGINT");
      const s = parseSummary(run.stderr);
      expect(run.code).toBe(3); // rows were lost, and said so
      const dropped = Number(s.sink_dropped);
      expect(dropped).toBeGreaterThanOrEqual(live);
      const records = parseEvents(run.stdout).filter((e) => e.event === "sink_dropped");
      expect(records.reduce((n, r) => n + Number(r.dropped), 0)).toBe(dropped);
      // Unreachable: one warning line, however many retries.
      expect(warnings(run.stderr)).toHaveLength(1);
      expect(warnings(run.stderr)[0]).toContain(spool);
      const files = readdirSync(spool).filter((f) => f.endsWith(".gz"));
      const sizes = files.map((f) => statSync(join(spool, f)).size);
      expect(sizes.reduce((x, y) => x + y, 0)).toBeLessThanOrEqual(cap + Math.max(...sizes));
      expect(statSync(spool).mode & 0o777).toBe(0o700);
      for (const f of files) expect(statSync(join(spool, f)).mode & 0o777).toBe(0o600);
      const spooledRows = files.reduce((n, f) => n + Number(/-(\d+)\.gz$/.exec(f)![1]), 0);
      expect(spooledRows).toBe(Number(s.sink_waiting));

      // The server comes up: the next start replays the spool, every row once.
      await down.start();
      await newTable(down, "fleet.events_cap");
      const b = await agent(down.url("fleet.events_cap"), ["--spool", spool, "--comm", bin.comm]);
      const deadline = Date.now() + 30_000;
      while (readdirSync(spool).some((f) => f.endsWith(".gz")) && Date.now() < deadline) await Bun.sleep(200);
      const runB = await b.finish("SIGINT");
      const sb = parseSummary(runB.stderr);
      // Run 1's rows: exactly those it left spooled; with the dropped ones, every seq it gave.
      const runs = (await down.query("SELECT run, count(), max(seq) FROM fleet.events_cap FINAL GROUP BY run"))
        .trim()
        .split("\n")
        .map((l) => l.split("\t"));
      // Run B execs nothing of ours: every row is run A's.
      expect(runs).toHaveLength(1);
      const r1 = runs[0]!;
      const mine = r1[0]!;
      const got = { rows: Number(r1[1]), maxSeq: Number(r1[2]) };
      expect({ ...got, files, stderrA: run.stderr, stderrB: runB.stderr }).toEqual({
        rows: spooledRows,
        maxSeq: spooledRows + dropped,
        files,
        stderrA: run.stderr,
        stderrB: runB.stderr,
      });
      const inTable = await down.number(
        `SELECT sum(dropped) FROM fleet.events_cap FINAL WHERE run = '${mine}' AND event = 'sink_dropped'`,
      );
      expect(inTable).toBeLessThanOrEqual(dropped);
      expect(sb.sink_waiting).toBe("0");
    }, 120_000);

    test("bad credentials: one warning line and spooling, never a crash; the right ones replay it", async () => {
      const { table, url } = await newTable(ch);
      const bin = uniqueTrue("dsfleet");
      dirs.push(bin.dir);
      const dir = tempDir();
      const spool = join(dir, "spool");
      const creds = join(dir, "creds");
      writeFileSync(creds, `user=${AGENT_USER}\npassword=wrong\n`, { mode: 0o600 });
      const a = await agent(url, ["--spool", spool, "--sink-credentials", creds]);
      const N = 10;
      await execs(bin.path, N, "cred");
      const deadline = Date.now() + 15_000;
      while (warnings(a.stderr()).length === 0 && Date.now() < deadline) await Bun.sleep(100);
      await Bun.sleep(1500); // a retry or two: still one line
      const run = await a.finish("SIGINT");
      expect(run.code).toBe(0);
      const w = warnings(run.stderr);
      expect(w).toHaveLength(1);
      expect(w[0]).toContain("bad credentials");
      expect(w[0]).not.toContain("wrong"); // the password is never logged
      expect(run.stderr).not.toMatch(/^\s+at /m); // no stack trace
      expect(Number(parseSummary(run.stderr).sink_waiting)).toBeGreaterThan(0);
      expect(await ch.number(`SELECT count() FROM ${table}`)).toBe(0);

      const env = {
        ...process.env,
        DUAL_SLOT_CLICKHOUSE_USER: AGENT_USER,
        DUAL_SLOT_CLICKHOUSE_PASSWORD: AGENT_PASSWORD,
      };
      const b = await agent(url, ["--spool", spool], env);
      const where = `FROM ${table} FINAL WHERE event = 'exec' AND comm = '${bin.comm}'`;
      expect(await ch.waitFor(`SELECT count() ${where}`, N, 30_000)).toBe(N);
      await b.finish("SIGINT");
    }, 90_000);

    test("an unreachable server without --spool: one warning line, rows counted as dropped at exit, no crash", async () => {
      const bin = uniqueTrue("dsfleet");
      dirs.push(bin.dir);
      const a = await agent(`clickhouse+http://127.0.0.1:${freePort()}/fleet.nowhere`, ["--comm", bin.comm]);
      await execs(bin.path, 5, "gone");
      const deadline = Date.now() + 15_000;
      while (warnings(a.stderr()).length === 0 && Date.now() < deadline) await Bun.sleep(100);
      const run = await a.finish("SIGINT");
      expect(run.code).toBe(3);
      expect(warnings(run.stderr)).toHaveLength(1);
      expect(warnings(run.stderr)[0]).toContain("queueing in memory (no --spool)");
      expect(run.stderr).not.toMatch(/^\s+at /m);
      const s = parseSummary(run.stderr);
      expect(Number(s.sink_dropped)).toBeGreaterThanOrEqual(5);
      expect(s.sink_waiting).toBe("0");
      const records = parseEvents(run.stdout).filter((e) => e.event === "sink_dropped");
      expect(records.reduce((n, r) => n + Number(r.dropped), 0)).toBe(Number(s.sink_dropped));
    }, 60_000);

    test("two agents writing to one server at once: each run's rows once, no gaps", async () => {
      const { table, url } = await newTable(ch);
      const bin = uniqueTrue("dsfleet");
      dirs.push(bin.dir);
      const a = await agent(url, ["--spool", join(tempDir(), "spool")]);
      const b = await agent(url, ["--spool", join(tempDir(), "spool")]);
      const N = 30;
      await execs(bin.path, N, "two");
      const where = `FROM ${table} FINAL WHERE event = 'exec' AND comm = '${bin.comm}'`;
      expect(await ch.waitFor(`SELECT count() ${where}`, 2 * N)).toBe(2 * N);
      const [ra, rb] = await Promise.all([a.finish("SIGINT"), b.finish("SIGINT")]);
      const runs = await runOf(ch, table, bin.comm);
      expect(runs).toHaveLength(2);
      for (const r of runs) expect(await ch.number(`SELECT count() ${where} AND run = '${r}'`)).toBe(N);
      const sent = [ra, rb].map((x) => Number(parseSummary(x.stderr).sink_sent)).sort((x, y) => x - y);
      const counts = await Promise.all(
        runs.map((r) => ch.number(`SELECT count() FROM ${table} FINAL WHERE run = '${r}'`)),
      );
      expect([...counts].sort((x, y) => x - y)).toEqual(sent);
      for (const [i, r] of runs.entries()) await expectNoGaps(ch, table, r, counts[i]!);
    }, 60_000);

    test("a Distributed table over two shards: each host's rows on its own shard, once, no gaps", async () => {
      await ch.query("CREATE DATABASE IF NOT EXISTS fleet");
      for (const db of SHARD_DATABASES) await newTable(ch, `${db}.events_local`);
      await ch.query(
        `CREATE TABLE fleet.events_dist AS ${SHARD_DATABASES[0]}.events_local ENGINE = Distributed(${TWO_SHARDS}, '', events_local, cityHash64(host))`,
      );
      // Two host names the sharding key puts on different shards (a UTS namespace each).
      const hosts: string[] = [];
      for (let i = 0; hosts[0] === undefined || hosts[1] === undefined; i++) {
        const name = `dsf-host-${i}`;
        const shard = await ch.number(`SELECT cityHash64('${name}') % 2`);
        if (hosts[shard] === undefined) hosts[shard] = name;
      }
      const bin = uniqueTrue("dsfleet");
      dirs.push(bin.dir);
      const url = ch.url("fleet.events_dist");
      const agents: Proc[] = [];
      for (const h of hosts) {
        const args = ["--events", "exec", "--sink", url, "--sink-flush", "0.2", "--spool", join(tempDir(), "spool")];
        const p = spawnProc([
          "unshare",
          "--uts",
          "sh",
          "-c",
          `hostname "$0" && exec "$@"`,
          h,
          BIN,
          ...args,
          "--comm",
          bin.comm,
        ]);
        await waitAttached(p);
        agents.push(p);
      }
      const N = 20;
      await execs(bin.path, N, "dist");
      const where = `FROM fleet.events_dist FINAL WHERE event = 'exec' AND comm = '${bin.comm}'`;
      const arrived = await ch.waitFor(`SELECT count() ${where}`, 2 * N);
      const runs = await Promise.all(agents.map((a) => a.finish("SIGINT")));
      expect({ arrived, stderr: runs.map((r) => r.stderr) }).toEqual({
        arrived: 2 * N,
        stderr: runs.map((r) => r.stderr),
      });
      for (const [i, db] of SHARD_DATABASES.entries()) {
        expect((await ch.query(`SELECT DISTINCT host FROM ${db}.events_local`)).trim()).toBe(hosts[i]!);
        expect(await ch.number(`SELECT count() ${where} AND host = '${hosts[i]}'`)).toBe(N);
      }
      for (const r of runs) {
        const s = parseSummary(r.stderr);
        expect(s.sink_waiting).toBe("0");
        expect(s.sink_dropped).toBe("0");
      }
      for (const run of await runOf(ch, "fleet.events_dist", bin.comm)) {
        const sent = await ch.number(`SELECT count() FROM fleet.events_dist FINAL WHERE run = '${run}'`);
        await expectNoGaps(ch, "fleet.events_dist", run, sent);
      }
    }, 90_000);

    test("a batch inserted twice (a replay after a lost answer) folds into one set of rows", async () => {
      const { table, url } = await newTable(ch);
      const batcher = new Batcher({ run: "replaytest", maxRows: 100, maxBytes: 1 << 20, maxAgeMs: 1000 });
      for (let i = 0; i < 50; i++)
        batcher.pushString(
          JSON.stringify({ host: "h", event: "exec", time: "2026-12-03T06:00:00.000000001Z", pid: i, comm: 'x"\\y' }),
        );
      const gz = Bun.gzipSync(new Uint8Array(batcher.seal()!.body));
      const client = new ClickHouseClient(parseSinkTarget(url), null);
      expect(await client.insert(gz)).toEqual({ ok: true });
      expect(await client.insert(gz)).toEqual({ ok: true });
      expect(await ch.number(`SELECT count() FROM ${table}`)).toBe(100);
      expect(await ch.number(`SELECT count() FROM ${table} FINAL`)).toBe(50);
      await ch.query(`OPTIMIZE TABLE ${table} FINAL`);
      expect(await ch.number(`SELECT count() FROM ${table}`)).toBe(50);
      expect((await ch.query(`SELECT DISTINCT comm FROM ${table}`)).trim()).toBe('x"\\\\y');
    }, 30_000);
  },
);
