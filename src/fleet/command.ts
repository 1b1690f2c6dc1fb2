/**
 * `dual-slot sink schema URL` and `dual-slot sink query NAME URL`: the table's
 * DDL and the fleet queries, for the table `run --sink URL` inserts into.
 * (The folder is `fleet`, the command `sink`: the output folder is taken.)
 */
import { defineCommand } from "citty";
import { intArg } from "../cli/args.ts";
import { HostError, UsageError } from "../errors.ts";
import { writeStdout } from "../output/stdout.ts";
import { escapeForTerminal } from "../render/escape.ts";
import { ClickHouseClient } from "./client.ts";
import { sinkCredentials } from "./credentials.ts";
import { createTableSql } from "./ddl.ts";
import { QUERIES, querySql } from "./queries.ts";
import { parseSinkTarget } from "./target.ts";

const url = {
  type: "positional",
  required: false,
  valueHint: "URL",
  description: "the table, as given to run --sink: clickhouse+http://HOST:8123/DB.TABLE",
} as const;

function target(raw: unknown) {
  if (typeof raw !== "string" || raw === "")
    throw new UsageError("give the table's URL: clickhouse+http://HOST:8123/DB.TABLE");
  return parseSinkTarget(raw, "URL");
}

const schemaCmd = defineCommand({
  meta: {
    name: "schema",
    description:
      "Print the CREATE TABLE for URL's table, generated from the event schemas: a ReplacingMergeTree (rows a replay sends twice fold into one), partitioned by day, ordered by (host, event, ts, run, seq)",
  },
  args: {
    url,
    "ttl-days": {
      type: "string",
      description:
        "add `TTL ts + INTERVAL N DAY` (ClickHouse 19.6 or later; 18.16 refuses it: drop old partitions instead)",
    },
    cluster: {
      type: "string",
      description:
        "for a sharded cluster: a ReplicatedReplacingMergeTree <table>_local ON CLUSTER NAME and a Distributed <table> over it, sharded by host",
    },
  },
  async run({ args }) {
    const t = target(args.url);
    const cluster = args.cluster === undefined || args.cluster === "" ? undefined : String(args.cluster);
    if (cluster !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(cluster))
      throw new UsageError(`--cluster expects a plain identifier, got '${cluster}'`);
    const ttl = args["ttl-days"] === undefined ? undefined : intArg("ttl-days", args["ttl-days"], 1, 36500);
    await writeStdout(
      createTableSql(t, {
        ...(ttl !== undefined ? { ttlDays: ttl } : {}),
        ...(cluster !== undefined ? { cluster } : {}),
      }),
    );
  },
});

const queryCmd = defineCommand({
  meta: {
    name: "query",
    description: `Print a fleet query for URL's table (or, with --run, send it and print the answer). Without NAME, list them: ${QUERIES.map((q) => q.name).join(", ")}`,
  },
  args: {
    name: { type: "positional", required: false, valueHint: "NAME", description: "the query" },
    url,
    run: {
      type: "boolean",
      default: false,
      description: "send it to the server (credentials as for run --sink) and print the result",
    },
    "sink-credentials": { type: "string", valueHint: "FILE", description: "with --run: as run --sink-credentials" },
  },
  async run({ args }) {
    if (args.name === undefined || args.name === "") {
      await writeStdout(QUERIES.map((q) => `${q.name.padEnd(22)} ${q.doc}\n`).join(""));
      return;
    }
    const name = String(args.name);
    const t = target(args.url);
    const sql = querySql(name, t);
    if (sql === undefined)
      throw new UsageError(`unknown query '${name}' (known: ${QUERIES.map((q) => q.name).join(", ")})`);
    if (args.run !== true) {
      if (typeof args["sink-credentials"] === "string")
        throw new UsageError("--sink-credentials needs --run (without it the query is only printed)");
      await writeStdout(`${sql};\n`);
      return;
    }
    const creds = sinkCredentials(typeof args["sink-credentials"] === "string" ? args["sink-credentials"] : undefined);
    const r = await new ClickHouseClient(t, creds).query(`${sql}\nFORMAT PrettyCompactMonoBlock`);
    if (!r.ok) throw new HostError(`${t.display}: ${r.why}`);
    // Each host's process strings, as ClickHouse stores them (decoded): escaped again for the terminal.
    await writeStdout(escapeForTerminal(r.text));
  },
});

export default defineCommand({
  meta: { name: "sink", description: "The ClickHouse fleet table that run --sink fills: its DDL and its queries" },
  subCommands: { schema: schemaCmd, query: queryCmd },
  // Reached only without a subcommand: main.ts resolves `sink schema` to schema itself.
  run() {
    throw new UsageError("sink expects a command: schema or query (dual-slot sink --help)");
  },
});
