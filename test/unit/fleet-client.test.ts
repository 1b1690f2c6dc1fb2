/**
 * The ClickHouse client (src/fleet/client.ts) against stand-in HTTP servers:
 * a batch counts as delivered only when ClickHouse itself said 2xx. A
 * redirect is not followed (a 302 would have turned the INSERT into a GET
 * without its body, a 307 sent the batch elsewhere), and a 200 from anything
 * without ClickHouse's headers (a login page, a wrong port) is a failure.
 */
import { afterAll, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { ClickHouseClient, dataRejected } from "../../src/fleet/client.ts";
import { parseSinkTarget } from "../../src/fleet/target.ts";

const CH = { "X-ClickHouse-Server-Display-Name": "stand-in" };
/** Where a followed redirect would land: it must never see a request. */
const elsewhere = { hits: 0 };
const other = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch() {
    elsewhere.hits++;
    return new Response("", { headers: CH });
  },
});
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req) {
    const how = new URL(req.url).pathname;
    if (how === "/moved") return new Response(null, { status: 302, headers: { Location: other.url.href } });
    if (how === "/temp")
      return new Response(null, { status: 307, headers: { Location: `${other.url.href}elsewhere` } });
    if (how === "/login") return new Response("<html>sign in</html>");
    // Headers sent early (send_progress_in_http_headers), then the failure: in the body, after the 200.
    const progress = { ...CH, "X-ClickHouse-Progress": '{"read_rows":"0","written_rows":"0"}' };
    if (how === "/late")
      return new Response("Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)\n", {
        headers: progress,
      });
    if (how === "/late-data")
      return new Response("Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected {\n", {
        headers: progress,
      });
    if (how === "/endless")
      return new Response(
        new ReadableStream({
          pull(c) {
            c.enqueue(new TextEncoder().encode(`Code: 999, e.displayText() = DB::Exception: ${"x".repeat(16384)}`));
          },
        }),
        { status: 500, headers: CH },
      );
    if (how === "/trickle")
      return new Response(
        new ReadableStream({
          async pull(c) {
            await Bun.sleep(500);
            c.enqueue(new TextEncoder().encode("."));
          },
        }),
        { headers: progress },
      );
    if (how === "/evil")
      return new Response("Code: 60, e.displayText() = DB::Exception: \x1b]0;PWNED\x07\x1b[31m\u009b2J\u202eboom", {
        status: 404,
        headers: CH,
      });
    return new Response("", { headers: CH });
  },
});
afterAll(() => {
  server.stop(true);
  other.stop(true);
});

function client(path: string): ClickHouseClient {
  const t = parseSinkTarget(`clickhouse+http://127.0.0.1:${server.port}/db.events`);
  return new ClickHouseClient({ ...t, endpoint: `http://127.0.0.1:${server.port}${path}` }, null, 2000);
}
const batch = gzipSync('{"event":"exec"}\n');

test("a 2xx from ClickHouse delivers the batch", async () => {
  expect(await client("/").insert(batch)).toEqual({ ok: true });
});

test("a 302 or 307 is a failure, not followed, and says where it pointed", async () => {
  for (const path of ["/moved", "/temp"]) {
    const r = await client(path).insert(batch);
    expect(r.ok).toBe(false);
    if (r.ok) continue;
    expect(r.auth).toBe(false);
    expect(r.why).toMatch(/^HTTP 30[27]: a redirect to http:\/\/127\.0\.0\.1:\d+\/.* not followed/);
    expect(r.why).not.toMatch(/[\x00-\x1f]/);
  }
  const q = await client("/moved").query("SELECT 1");
  expect(q.ok).toBe(false);
  expect(elsewhere.hits).toBe(0);
});

test("a server's error text reaches the log with nothing a terminal would act on", async () => {
  for (const r of [await client("/evil").insert(batch), await client("/evil").query("SELECT 1")]) {
    expect(r.ok).toBe(false);
    if (r.ok) continue;
    expect(r.why).toBe("HTTP 404: Code 60: \\x1b]0;PWNED\\x07\\x1b[31m\\x9b2J\\u{202e}boom");
  }
});

test("a 200 whose body reports an exception, or never ends, is not a delivery: the batch is kept", async () => {
  const late = await client("/late").insert(batch);
  expect(late).toEqual({
    ok: false,
    auth: false,
    rejected: false,
    why: "HTTP 200 with an exception after it: Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)",
  });
  const data = await client("/late-data").insert(batch);
  expect(data.ok === false && data.rejected).toBe(true);
  const t = parseSinkTarget(`clickhouse+http://127.0.0.1:${server.port}/db.events`);
  const slow = new ClickHouseClient({ ...t, endpoint: `http://127.0.0.1:${server.port}/trickle` }, null, 1000);
  const r = await slow.insert(batch);
  expect(r).toEqual({ ok: false, auth: false, rejected: false, why: "HTTP 200, then no answer within 1 s" });
}, 20_000);

test("an error answer without end is read only so far: the insert fails at once, not at its timeout", async () => {
  const t = parseSinkTarget(`clickhouse+http://127.0.0.1:${server.port}/db.events`);
  const c = new ClickHouseClient({ ...t, endpoint: `http://127.0.0.1:${server.port}/endless` }, null, 4000);
  const t0 = performance.now();
  const r = await c.insert(batch);
  expect(performance.now() - t0).toBeLessThan(2000);
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.why).toMatch(/^HTTP 500: Code 999: x{200}/);
}, 20_000);

test("a 200 without ClickHouse's headers is not a delivery", async () => {
  const r = await client("/login").insert(batch);
  expect(r).toEqual({
    ok: false,
    auth: false,
    rejected: false,
    why: "HTTP 200 without ClickHouse's X-ClickHouse-* headers: not a ClickHouse server (or a proxy that drops them)",
  });
  expect((await client("/login").query("SELECT 1")).ok).toBe(false);
});

test("which error answers say the data itself was refused", () => {
  expect(dataRejected(500, "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected {")).toBe(true);
  expect(dataRejected(500, "Code: 53. DB::Exception: Type mismatch")).toBe(true);
  expect(dataRejected(400, "anything")).toBe(true);
  // A batch whose gzip is damaged (on disk, in the spool): the server cannot inflate it.
  expect(dataRejected(500, "Code: 354, e.displayText() = DB::Exception: inflate failed: buffer error")).toBe(true);
  expect(dataRejected(500, "Code: 60, e.displayText() = DB::Exception: Table db.t doesn't exist")).toBe(false);
  expect(dataRejected(503, "Code: 999, e.displayText() = DB::Exception: down")).toBe(false);
  expect(dataRejected(500, "")).toBe(false);
});
