/**
 * The sink's configuration: the URL (no credentials in it), the credentials
 * file (ours alone) or environment, the flags' dependencies, and the DDL
 * generated from the event schemas.
 */
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../../src/errors.ts";
import { cleartextWarning, fleetConfig, newRunId } from "../../src/fleet/args.ts";
import { parseCredentialsText, readCredentialsFile, sinkCredentials } from "../../src/fleet/credentials.ts";
import { createTableSql, tableColumns } from "../../src/fleet/ddl.ts";
import { SINK_DROPPED_SCHEMA } from "../../src/fleet/records.ts";
import { parseSinkTarget } from "../../src/fleet/target.ts";
import { RECORD_SCHEMAS } from "../../src/render/record-schema.ts";
import { EXEC_SCHEMA, EXIT_SCHEMA, LOST_SCHEMA } from "../../src/render/schema.ts";
import { BIN } from "../helpers/agent.ts";

const root = mkdtempSync(join(tmpdir(), "dual-slot-fleet-args-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test("the sink URL: clickhouse+http(s)://HOST[:PORT]/DB.TABLE", () => {
  expect(parseSinkTarget("clickhouse+http://10.0.0.5:8123/dual_slot.events")).toEqual({
    endpoint: "http://10.0.0.5:8123/",
    database: "dual_slot",
    table: "events",
    display: "clickhouse+http://10.0.0.5:8123/dual_slot.events",
  });
  expect(parseSinkTarget("clickhouse+https://ch.example/db.t").endpoint).toBe("https://ch.example:8443/");
  expect(parseSinkTarget("clickhouse+http://[::1]/db.t").endpoint).toBe("http://[::1]:8123/");
  for (const bad of [
    "http://h:8123/db.t",
    "clickhouse+http://h:8123/db",
    "clickhouse+http://h:8123/db.t.x",
    "clickhouse+http://h:8123/db.t;DROP",
    "clickhouse+http://h:8123/db.t?x=1",
    "clickhouse+http://u:p@h:8123/db.t",
  ])
    expect(() => parseSinkTarget(bad)).toThrow(UsageError);
  // A password in the URL is not repeated in the message.
  expect(() => parseSinkTarget("clickhouse+http://u:hunter2@h/db.t")).toThrow(/^(?!.*hunter2)/);
  // Nor one with a `/` or an `@` of its own (unencoded: such a URL does not even parse).
  for (const pw of ["hunter2/x", "p@ss", "a@b/c@d"]) {
    let message = "";
    try {
      parseSinkTarget(`clickhouse+http://admin:${pw}@ch.example/db.t`);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain("got 'clickhouse+http://***@ch.example/db.t'");
  }
});

test("credentials: user= and password= lines, or the environment, never both missing a user", () => {
  expect(parseCredentialsText("# fleet\nuser=agent\npassword= a=b \n", "f")).toEqual({
    user: "agent",
    password: " a=b ",
  });
  expect(() => parseCredentialsText("password=x\n", "f")).toThrow(/no user/);
  expect(() => parseCredentialsText("name=x\n", "f")).toThrow(UsageError);
  expect(sinkCredentials(undefined, {})).toBeNull();
  expect(sinkCredentials(undefined, { DUAL_SLOT_CLICKHOUSE_USER: "u", DUAL_SLOT_CLICKHOUSE_PASSWORD: "p" })).toEqual({
    user: "u",
    password: "p",
  });
  expect(() => sinkCredentials(undefined, { DUAL_SLOT_CLICKHOUSE_PASSWORD: "p" })).toThrow(UsageError);
});

test("a credentials file others can read or write, or a symlink, is refused", () => {
  const f = join(root, "creds");
  writeFileSync(f, "user=a\npassword=b\n", { mode: 0o600 });
  expect(readCredentialsFile(f)).toEqual({ user: "a", password: "b" });
  for (const mode of [0o640, 0o604, 0o620, 0o602]) {
    chmodSync(f, mode);
    expect(() => readCredentialsFile(f)).toThrow(/lets other users read or write it/);
  }
  chmodSync(f, 0o600);
  const link = join(root, "link");
  symlinkSync(f, link);
  expect(() => readCredentialsFile(link)).toThrow(/symlink/);
  expect(() => readCredentialsFile(join(root, "missing"))).toThrow(/ENOENT/);
});

test("the sink flags need --sink; defaults: 10k rows, 1 s, 1G spool", () => {
  expect(fleetConfig({})).toBeUndefined();
  expect(() => fleetConfig({ spool: "/x" })).toThrow(/--spool needs --sink/);
  expect(() => fleetConfig({ sink: "clickhouse+http://h/d.t", "spool-size": "1M" })).toThrow(/needs --spool/);
  expect(fleetConfig({ sink: "clickhouse+http://h/d.t" }, {})).toMatchObject({
    batchRows: 10_000,
    flushMs: 1000,
    spoolCap: 1024 ** 3,
    credentials: null,
  });
});

test("the DDL has a typed column for every scalar field of every record type, one type per key", () => {
  const cols = new Map(tableColumns().map((c) => [c.name, c.type]));
  for (const s of [EXEC_SCHEMA, EXIT_SCHEMA, ...RECORD_SCHEMAS, LOST_SCHEMA, SINK_DROPPED_SCHEMA])
    for (const f of s.fields) if (f.type !== "object" && f.type !== "object[]") expect(cols.has(f.key)).toBe(true);
  expect(cols.get("args")).toBe("Array(String)");
  expect(cols.get("ktime_ns")).toBe("UInt64"); // a decimal string in the line
  expect(cols.get("exec_id")).toBe("String");
  expect(cols.get("res")).toBe("Int64");
  expect(cols.get("exe_deleted")).toBe("UInt8");
  expect(cols.has("old")).toBe(false); // privilege_escalation's objects: in raw
  const t = parseSinkTarget("clickhouse+http://h/db.events");
  const ddl = createTableSql(t);
  expect(ddl).toContain("ENGINE = ReplacingMergeTree\nPARTITION BY toDate(ts)\nORDER BY (host, event, ts, run, seq);");
  expect(ddl).not.toContain("\nTTL");
  expect(createTableSql(t, { ttlDays: 30 })).toContain("TTL ts + INTERVAL 30 DAY;");
  const dist = createTableSql(t, { cluster: "fleet" });
  expect(dist).toContain("CREATE TABLE IF NOT EXISTS db.events_local ON CLUSTER fleet");
  expect(dist).toContain("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db.events_local', '{replica}')");
  expect(dist).toContain("ENGINE = Distributed(fleet, db, events_local, cityHash64(host));");
});

test("a bad --sink is one line and exit status 2, before anything loads", () => {
  const r = Bun.spawnSync([BIN, "--sink", "http://nowhere/db.t"], { stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(2);
  const err = r.stderr.toString().trim().split("\n");
  expect(err).toHaveLength(1);
  expect(err[0]).toMatch(/^dual-slot: --sink: unknown scheme/);
});

test("the sink command's mistakes: one line each, exit status 2", () => {
  for (const [argv, msg] of [
    [["sink"], /^dual-slot: sink expects a command: schema or query/],
    [["sink", "schema"], /give the table's URL/],
    [["sink", "schema", "clickhouse+http://h/d.t", "--ttl-days", "0"], /--ttl-days must be between 1/],
    [["sink", "schema", "clickhouse+http://h/d.t", "--cluster", "a b"], /--cluster expects a plain identifier/],
    [["sink", "query", "nope", "clickhouse+http://h/d.t"], /unknown query 'nope'/],
  ] as const) {
    const r = Bun.spawnSync([BIN, ...argv], { stdout: "pipe", stderr: "pipe" });
    const err = r.stderr.toString().trim().split("\n");
    expect({ argv, code: r.exitCode, lines: err.length }).toEqual({ argv, code: 2, lines: 1 });
    expect(err[0]).toMatch(msg);
  }
});

test("credentials over plain http to another host get a warning; https or loopback do not", () => {
  const creds = { user: "agent", password: "x" };
  const at = (url: string, credentials: typeof creds | null = creds) =>
    cleartextWarning({ target: parseSinkTarget(url), credentials });
  expect(at("clickhouse+http://10.0.0.5/db.t")).toBe(
    "clickhouse sink: clickhouse+http://10.0.0.5:8123/db.t is plain http: the user and password cross the network in clear (use clickhouse+https)",
  );
  expect(at("clickhouse+https://10.0.0.5/db.t")).toBeNull();
  expect(at("clickhouse+http://127.0.0.1/db.t")).toBeNull();
  expect(at("clickhouse+http://[::1]/db.t")).toBeNull();
  expect(at("clickhouse+http://10.0.0.5/db.t", null)).toBeNull();
  // A name that only starts like loopback is not loopback.
  expect(at("clickhouse+http://127.evil.example/db.t")).not.toBeNull();
});

test("a run id is 8 random bytes in hex, another at each start", () => {
  const ids = new Set(Array.from({ length: 1000 }, () => newRunId()));
  expect(ids.size).toBe(1000);
  for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
});
