/**
 * The fleet sink's sender (src/fleet/shipper.ts) against a stand-in HTTP
 * server: batches are spooled before they are sent, a server that answers
 * 503 makes them wait and replays them oldest first once it answers 200
 * (every seq once, in order), the close sends what it can and leaves the rest
 * spooled for the next start, and without a spool the memory queue's cap
 * drops the oldest and counts them.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { ClickHouseClient } from "../../src/fleet/client.ts";
import { FleetSink, REJECT_LIMIT } from "../../src/fleet/shipper.ts";
import { parseSinkTarget } from "../../src/fleet/target.ts";

const root = mkdtempSync(join(tmpdir(), "dual-slot-shipper-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** A ClickHouse stand-in: 200 when up (the rows' seqs recorded in arrival order), 503 when down. */
function standIn() {
  const state = { up: false, seqs: [] as number[], posts: 0, auth: [] as string[] };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      state.posts++;
      state.auth.push(req.headers.get("authorization") ?? "");
      if (!state.up)
        return new Response("Code: 999, e.displayText() = DB::Exception: down for a test", { status: 503 });
      const body = gunzipSync(Buffer.from(await req.arrayBuffer())).toString();
      for (const l of body.split("\n")) if (l !== "") state.seqs.push((JSON.parse(l) as { seq: number }).seq);
      return new Response("", { headers: { "X-ClickHouse-Server-Display-Name": "stand-in" } });
    },
  });
  return { state, server, url: `clickhouse+http://127.0.0.1:${server.port}/db.events` };
}

interface SinkOver {
  spoolDir?: string;
  memoryCap?: number;
  /** Each drop's row count. */
  dropped?: number[];
  flushMs?: number;
  /** As the agent does: each drop's in-band record is a row for the table too. */
  recordDrops?: boolean;
}

function sink(url: string, over: SinkOver = {}) {
  let drops = 0;
  const s: FleetSink = new FleetSink({
    client: new ClickHouseClient(parseSinkTarget(url), { user: "agent", password: "pw" }, 2000),
    run: "test",
    batchRows: 5,
    batchBytes: 1 << 20,
    flushMs: over.flushMs ?? 1,
    ...(over.spoolDir !== undefined ? { spoolDir: over.spoolDir } : {}),
    spoolCap: 1 << 30,
    memoryCap: over.memoryCap ?? 1 << 30,
    onDropped: (rows) => {
      over.dropped?.push(rows);
      if (over.recordDrops === true) s.pushString(line(1000 + ++drops));
    },
  });
  return s;
}

const line = (i: number) =>
  JSON.stringify({ schema: 1, host: "h", event: "exec", time: "2026-12-03T06:00:00Z", pid: i });

async function until(f: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !f() && Date.now() < end; ) await Bun.sleep(20);
}

test("a server away: batches wait in the spool and arrive oldest first, every seq once, when it answers", async () => {
  const { state, server, url } = standIn();
  const dir = join(root, `spool${++dirs}`);
  // Six batches of 5, sealed by count: a batch sealed short by time would leave the last row unsealed.
  const s = sink(url, { spoolDir: dir, flushMs: 60_000 });
  for (let i = 1; i <= 30; i++) {
    s.pushString(line(i));
    s.tick();
  }
  await until(() => state.posts >= 2 && readdirSync(dir).length >= 6);
  expect(state.seqs).toEqual([]);
  expect(s.counters().waitingRows).toBe(30);
  expect(state.auth.every((a) => a === `Basic ${Buffer.from("agent:pw").toString("base64")}`)).toBe(true);
  state.up = true;
  await until(() => state.seqs.length >= 30, 40_000);
  expect(state.seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  expect(await s.close(1000)).toBe(0);
  expect(readdirSync(dir)).toEqual([]);
  expect(s.counts).toMatchObject({ sentRows: 30, dropped: 0 });
  server.stop(true);
}, 60_000);

test("close gives up within its bound and leaves the rest spooled; the next start sends it", async () => {
  const { state, server, url } = standIn();
  const dir = join(root, `spool${++dirs}`);
  const a = sink(url, { spoolDir: dir });
  for (let i = 1; i <= 12; i++) a.pushString(line(i));
  const t0 = performance.now();
  expect(await a.close(500)).toBe(12);
  expect(performance.now() - t0).toBeLessThan(5000);
  expect(readdirSync(dir).length).toBeGreaterThan(0);
  state.up = true;
  const b = sink(url, { spoolDir: dir });
  await until(() => state.seqs.length >= 12);
  expect(state.seqs).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  expect(await b.close(1000)).toBe(0);
  server.stop(true);
}, 30_000);

test("a spool that refuses batches (its directory gone): close still ends, counting the rows, though each drop adds a record", async () => {
  const { server, url } = standIn();
  const dir = join(root, `spool${++dirs}`);
  const dropped: number[] = [];
  const s = sink(url, { spoolDir: dir, dropped, recordDrops: true });
  rmSync(dir, { recursive: true, force: true });
  for (let i = 1; i <= 12; i++) s.pushString(line(i));
  const t0 = performance.now();
  await s.close(500);
  expect(performance.now() - t0).toBeLessThan(5000);
  expect(dropped.length).toBeGreaterThan(0);
  expect(dropped.length).toBeLessThan(10);
  expect(s.counts.dropped).toBeGreaterThanOrEqual(12);
  server.stop(true);
}, 30_000);

test("a spool that fails while the last drain's rows wait: every row is stored or counted, none discarded unsaid", async () => {
  const { server, url } = standIn();
  const dir = join(root, `spool${++dirs}`);
  const records: number[] = [];
  const s = sink(url, { spoolDir: dir, dropped: records, flushMs: 60_000, recordDrops: true });
  rmSync(dir, { recursive: true, force: true });
  // A full batch sealed by a drain, its spool write still in flight when the last drain's 3 rows come.
  for (let i = 1; i <= 5; i++) s.pushString(line(i));
  s.tick();
  for (let i = 6; i <= 8; i++) s.pushString(line(i));
  await s.close(200);
  // The 5, then the 3 with the first drop's in-band record; only the last record (on stdout) is left unsent.
  expect(records).toEqual([5, 4]);
  expect(s.counts.dropped).toBe(9);
  server.stop(true);
}, 30_000);

test("without a spool: the memory queue's cap drops the oldest batches and counts their rows", async () => {
  const { state, server, url } = standIn();
  const dropped: number[] = [];
  const s = sink(url, { memoryCap: 1, dropped });
  for (let i = 1; i <= 20; i++) {
    s.pushString(line(i));
    s.tick();
  }
  await until(() => dropped.length > 0);
  state.up = true;
  await s.close(2000);
  expect(dropped.reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
  // Every row is accounted for: delivered, or dropped (past the cap, or at exit) and counted.
  expect(state.seqs.length + s.counts.dropped).toBe(20);
  expect(new Set(state.seqs).size).toBe(state.seqs.length);
  server.stop(true);
}, 30_000);

/**
 * A stand-in that refuses the data of any batch holding one of `poison`'s seqs (as ClickHouse does a
 * row it cannot parse); `poison` also sees how many batches it has refused so far.
 */
function refusing(poison: (seq: number, refusals: number) => boolean) {
  const state = { seqs: [] as number[], refusals: 0 };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const rows = gunzipSync(Buffer.from(await req.arrayBuffer()))
        .toString()
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => (JSON.parse(l) as { seq: number }).seq);
      if (rows.some((seq) => poison(seq, state.refusals))) {
        state.refusals++;
        return new Response("Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected , before: x", {
          status: 500,
          headers: { "X-ClickHouse-Server-Display-Name": "stand-in" },
        });
      }
      state.seqs.push(...rows);
      return new Response("", { headers: { "X-ClickHouse-Server-Display-Name": "stand-in" } });
    },
  });
  return { state, server, url: `clickhouse+http://127.0.0.1:${server.port}/db.events` };
}

for (const spooled of [true, false]) {
  test(`a batch whose data the server refuses is dropped and counted once the next goes in, not retried forever (${spooled ? "spool" : "memory queue"})`, async () => {
    const { state, server, url } = refusing((seq) => seq >= 1 && seq <= 5);
    const dropped: number[] = [];
    const dir = join(root, `spool${++dirs}`);
    // Batches of exactly 5 rows (sealed by count, never by time): which rows a refused batch holds is the test.
    const s = sink(url, { ...(spooled ? { spoolDir: dir } : {}), dropped, flushMs: 60_000 });
    for (let i = 1; i <= 15; i++) {
      s.pushString(line(i));
      s.tick();
    }
    // The sender counts a batch once the server's answer is in, after the server has recorded its rows.
    await until(() => state.seqs.length >= 10 && s.counts.sentRows >= 10, 20_000);
    // REJECT_LIMIT refusals of the first batch, then the next one in: the first is dropped, the rest in order.
    expect(state.refusals).toBe(REJECT_LIMIT);
    expect(state.seqs).toEqual(Array.from({ length: 10 }, (_, i) => i + 6));
    expect(dropped).toEqual([5]);
    expect(s.counts).toMatchObject({ sentRows: 10, dropped: 5 });
    expect(await s.close(1000)).toBe(0);
    if (spooled) expect(readdirSync(dir)).toEqual([]);
    server.stop(true);
  }, 30_000);
}

test("a server that refuses every batch's data (a table changed under us) drops none: the queue waits in order", async () => {
  // The table is fixed right after REJECT_LIMIT refusals of the oldest batch and one of the batch after
  // it, by the server itself (not by the test when its polling sees them, which raced the retries).
  const { state, server, url } = refusing((_seq, refusals) => refusals < REJECT_LIMIT + 1);
  const dropped: number[] = [];
  const dir = join(root, `spool${++dirs}`);
  // Sealed by count alone: with a 1 ms flush, a tick more than 1 ms after a batch opened sealed it short,
  // and the last row, alone in a batch no later tick sealed, never left (one run in four here).
  const s = sink(url, { spoolDir: dir, dropped, flushMs: 60_000 });
  for (let i = 1; i <= 15; i++) {
    s.pushString(line(i));
    s.tick();
  }
  await until(() => state.seqs.length >= 15 && s.counts.sentRows >= 15, 40_000);
  expect({ refusals: state.refusals, dropped, seqs: state.seqs }).toEqual({
    refusals: REJECT_LIMIT + 1,
    dropped: [],
    seqs: Array.from({ length: 15 }, (_, i) => i + 1),
  });
  expect(s.counts).toMatchObject({ sentRows: 15, dropped: 0 });
  expect(await s.close(1000)).toBe(0);
  server.stop(true);
}, 60_000);
