/**
 * `run`'s sink flags and their translation into a FleetSink. Spread into
 * runArgs next to --output; parsed before the agent loads anything, so a bad
 * URL or an unsafe credentials file is one line and exit status 2.
 */

import { intArg, secondsArg } from "../cli/args.ts";
import { UsageError } from "../errors.ts";
import { log } from "../log.ts";
import { parseSize } from "../output/file.ts";
import { ClickHouseClient } from "./client.ts";
import { type SinkCredentials, sinkCredentials } from "./credentials.ts";
import { FleetSink } from "./shipper.ts";
import { parseSinkTarget, type SinkTarget } from "./target.ts";

export const sinkArgs = {
  sink: {
    type: "string",
    valueHint: "URL",
    description:
      "also insert every record into the ClickHouse table at URL, written as `dual-slot sink schema --help` shows (batched, gzip'd, retried; `dual-slot sink schema URL` prints the table's DDL). Lines are NDJSON then, on stdout too. The user and password come from --sink-credentials or the environment (DUAL_SLOT_CLICKHOUSE_USER and _PASSWORD), never the URL",
  },
  "sink-credentials": {
    type: "string",
    valueHint: "FILE",
    description: "user=NAME and password=SECRET lines; the file must be ours or root's and mode 0600 (or stricter)",
  },
  spool: {
    type: "string",
    valueHint: "DIR",
    description:
      "with --sink: keep every batch in DIR (0700, each batch fsync'd) until the server has it, so a server that is down or slow, or an agent restart, loses nothing below --spool-size",
  },
  "spool-size": {
    type: "string",
    description:
      "with --spool: the spool's cap; past it the oldest batches are dropped and counted (sink_dropped); default 1G",
  },
  "sink-batch": { type: "string", description: "with --sink: rows per insert at most (default 10000)" },
  "sink-flush": { type: "string", description: "with --sink: seconds a row waits for its batch at most (default 1)" },
} as const;

export interface FleetConfig {
  target: SinkTarget;
  credentials: SinkCredentials | null;
  spoolDir?: string;
  spoolCap: number;
  batchRows: number;
  flushMs: number;
}

type Raw = { [K in keyof typeof sinkArgs]?: unknown };

const given = (v: unknown): v is string => typeof v === "string" && v !== "";

/** The flags as a config; undefined without --sink (and then no other sink flag may be given). */
export function fleetConfig(a: Raw, env: Record<string, string | undefined> = process.env): FleetConfig | undefined {
  if (!given(a.sink)) {
    const stray = (["sink-credentials", "spool", "spool-size", "sink-batch", "sink-flush"] as const).find((k) =>
      given(a[k]),
    );
    if (stray !== undefined) throw new UsageError(`--${stray} needs --sink`);
    return undefined;
  }
  if (given(a["spool-size"]) && !given(a.spool)) throw new UsageError("--spool-size needs --spool");
  return {
    target: parseSinkTarget(a.sink),
    credentials: sinkCredentials(given(a["sink-credentials"]) ? a["sink-credentials"] : undefined, env),
    ...(given(a.spool) ? { spoolDir: a.spool } : {}),
    spoolCap: given(a["spool-size"]) ? parseSize("spool-size", a["spool-size"]) : 1024 ** 3,
    batchRows: given(a["sink-batch"]) ? intArg("sink-batch", a["sink-batch"], 1, 1_000_000) : 10_000,
    flushMs: Math.round((secondsArg("sink-flush", a["sink-flush"], 3600) ?? 1) * 1000),
  };
}

/** A random id per agent start: with seq, each row's identity (see batcher.ts). */
export function newRunId(): string {
  // The global Web Crypto, not node:crypto: that module costs every agent's start about 0.7 ms to load.
  return Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");
}

/** Plain http carries basic auth in clear: fine on loopback, worth a line anywhere else (null: nothing to say). */
export function cleartextWarning(c: Pick<FleetConfig, "target" | "credentials">): string | null {
  if (c.credentials === null || !c.target.endpoint.startsWith("http://")) return null;
  const host = new URL(c.target.endpoint).hostname.replace(/^\[|\]$/g, "");
  // node:net only with a sink: loading it costs 1.5-2 ms of every start.
  const { isIP } = require("node:net") as typeof import("node:net");
  if (host === "localhost" || host === "::1" || (isIP(host) === 4 && host.startsWith("127."))) return null;
  return `clickhouse sink: ${c.target.display} is plain http: the user and password cross the network in clear (use clickhouse+https)`;
}

export function startFleet(c: FleetConfig, onDropped: (rows: number, batches: number) => void): FleetSink {
  const clear = cleartextWarning(c);
  if (clear !== null) log.warn(clear);
  return new FleetSink({
    client: new ClickHouseClient(c.target, c.credentials),
    run: newRunId(),
    batchRows: c.batchRows,
    // A 10k-row batch of exec lines (and their raw copy) is ~30 MB: bytes bound it too.
    batchBytes: 32 * 1024 * 1024,
    flushMs: c.flushMs,
    ...(c.spoolDir !== undefined ? { spoolDir: c.spoolDir } : {}),
    spoolCap: c.spoolCap,
    memoryCap: 64 * 1024 * 1024,
    onDropped,
  });
}
