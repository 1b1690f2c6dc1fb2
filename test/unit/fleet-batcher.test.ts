/**
 * The sink's batcher (src/fleet/batcher.ts): each row is the agent's line with
 * run and seq spliced in (and raw, for the types that keep it), valid JSON
 * whatever bytes the line's strings hold, raw equal to the line; batches
 * sealed by rows, bytes and age.
 */
import { expect, test } from "bun:test";
import { Batcher } from "../../src/fleet/batcher.ts";

const rowsOf = (body: Buffer) =>
  body
    .toString()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test("a row is the line's members, run and seq first, and the line itself as raw", () => {
  const b = new Batcher({
    run: "r1",
    maxRows: 10,
    maxBytes: 1 << 20,
    maxAgeMs: 1000,
    rawFor: new Set(["exec", "lost"]),
  });
  const lines = [
    JSON.stringify({ schema: 1, event: "exec", args: ['a"b', "c\\d", "\u0001", "é"], comm: "\\x9f" }),
    JSON.stringify({ schema: 1, event: "lost", cpu: 0, lost: 3 }),
  ];
  for (const l of lines) expect(b.pushString(l)).toBe(true);
  const batch = b.seal()!;
  expect(batch).toMatchObject({ first: 1, last: 2, rows: 2 });
  const rows = rowsOf(batch.body);
  rows.forEach((r, i) => {
    expect(r.run).toBe("r1");
    expect(r.seq).toBe(i + 1);
    expect(r.raw).toBe(lines[i]!);
    const { run: _r, seq: _s, raw: _w, ts: _t, ...rest } = r;
    expect(rest).toEqual(JSON.parse(lines[i]!));
  });
});

test("raw only for the types in rawFor, found by the line's own event key", () => {
  const b = new Batcher({ run: "r", maxRows: 10, maxBytes: 1 << 20, maxAgeMs: 1000, rawFor: new Set(["lost"]) });
  // A host name holding the key's bytes, escaped as the renderer escapes it, does not fool it.
  const tricky = JSON.stringify({ schema: 1, host: 'x","event":"lost', event: "exec", pid: 1 });
  const lost = JSON.stringify({ schema: 1, host: "h", event: "lost", cpu: 0, lost: 2 });
  b.pushString(tricky);
  b.pushString(lost);
  const [r1, r2] = rowsOf(b.seal()!.body);
  expect(r1).toEqual({ run: "r", seq: 1, ...JSON.parse(tricky), ts: 0 });
  expect(r2!.raw).toBe(lost);
});

test("seq runs on across batches; a batch is sealed once", () => {
  const b = new Batcher({ run: "r", maxRows: 2, maxBytes: 1 << 20, maxAgeMs: 1e9 });
  b.pushString('{"a":1}');
  expect(b.due()).toBe(false);
  b.pushString('{"a":2}');
  expect(b.due()).toBe(true);
  expect(b.seal()).toMatchObject({ first: 1, last: 2 });
  expect(b.seal()).toBeNull();
  b.pushString('{"a":3}');
  expect(rowsOf(b.seal()!.body)[0]!.seq).toBe(3);
  expect(b.assigned).toBe(3);
});

test("due by bytes and by the age of the oldest row", () => {
  let now = 0;
  const b = new Batcher({ run: "r", maxRows: 1000, maxBytes: 200, maxAgeMs: 1000, now: () => now });
  b.pushString('{"a":1}');
  now = 999;
  expect(b.due()).toBe(false);
  now = 1000;
  expect(b.due()).toBe(true);
  b.seal();
  b.pushString(JSON.stringify({ s: "x".repeat(250) }));
  expect(b.due()).toBe(true);
});

test("how long until the open batch is due by age: what the run loop's idle drain period is capped at", () => {
  let now = 100;
  const b = new Batcher({ run: "r", maxRows: 1000, maxBytes: 1 << 20, maxAgeMs: 1000, now: () => now });
  expect(b.msUntilDue()).toBe(Number.POSITIVE_INFINITY);
  b.pushString('{"a":1}');
  expect(b.msUntilDue()).toBe(1000);
  now = 850;
  expect(b.msUntilDue()).toBe(250);
  now = 5000;
  expect(b.msUntilDue()).toBe(0);
  b.seal();
  expect(b.msUntilDue()).toBe(Number.POSITIVE_INFINITY);
});

test("a line that is not an object is refused, not mangled into the batch", () => {
  const b = new Batcher({ run: "r", maxRows: 10, maxBytes: 1 << 20, maxAgeMs: 1000 });
  expect(b.pushString("[1]")).toBe(false);
  expect(b.pushString("")).toBe(false);
  expect(b.seal()).toBeNull();
});

test("bytes from a rendered buffer: only [start, end) is taken", () => {
  const b = new Batcher({ run: "r", maxRows: 10, maxBytes: 1 << 20, maxAgeMs: 1000, rawFor: new Set(["e"]) });
  const buf = Buffer.from('xx{"k":"v","event":"e"}yy');
  b.push(buf, 2, buf.length - 2);
  expect(rowsOf(b.seal()!.body)[0]).toEqual({
    run: "r",
    seq: 1,
    k: "v",
    event: "e",
    ts: 0,
    raw: '{"k":"v","event":"e"}',
  });
});

test("ts: the line's time in epoch seconds (UTC), the same bytes on a replay; 0 without one", () => {
  const b = new Batcher({ run: "r", maxRows: 10, maxBytes: 1 << 20, maxAgeMs: 1000 });
  const times = ["2026-12-03T06:34:09.123456789Z", "2000-02-29T23:59:59.000000000Z", "1970-01-01T00:00:00.5Z"];
  for (const time of times) b.pushString(JSON.stringify({ schema: 1, host: "h", event: "lost", time, cpu: 0 }));
  b.pushString(JSON.stringify({ schema: 1, host: "h", event: "x" }));
  b.pushString("{}");
  const rows = rowsOf(b.seal()!.body);
  expect(rows.map((r) => r.ts)).toEqual([...times.map((t) => Math.floor(Date.parse(t) / 1000)), 0, 0]);
  expect(rows[4]).toEqual({ run: "r", seq: 5, ts: 0 });
});
