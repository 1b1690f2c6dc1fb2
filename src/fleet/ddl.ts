/**
 * The table's DDL, generated from the NDJSON schemas (render/schema.ts,
 * render/record-schema.ts) so the columns cannot drift from the lines the
 * agent writes: one table for every event type, each top-level field a
 * typed column (absent fields take the type's default), plus what the sink
 * adds to each row: `run` and `seq` (the row's identity), `raw` (the line
 * itself, for the types with nested objects: privilege_escalation's `old`
 * and `new` credentials; the lab's `heap` is not kept) and `ts`, `time` as a
 * DateTime (see Batcher.epochSeconds).
 *
 * Typed columns rather than one JSON string: the queries filter and group by
 * exe, uid, stdin... and a column is read alone, compressed with its kind,
 * where a JSON string would be read and parsed whole on every row (18.16 has
 * no JSON type, and its visitParam functions match a key at any depth).
 */

import { RECORD_SCHEMAS } from "../render/record-schema.ts";
import { EXEC_SCHEMA, EXIT_SCHEMA, type Field, LOST_SCHEMA } from "../render/schema.ts";
import { SINK_DROPPED_SCHEMA } from "./records.ts";
import type { SinkTarget } from "./target.ts";

export interface Column {
  name: string;
  type: string;
  comment: string;
}

// biome-ignore lint/suspicious/noExplicitAny: the schemas differ only in the event type their getters take
type AnyField = Field<any>;

/**
 * 64-bit kernel values are decimal strings in the lines (JSON numbers lose
 * digits past 2^53); ClickHouse parses a quoted number into UInt64, so those
 * (the fields read from a header or struct member) are numbers in the table.
 */
function columnType(f: AnyField): string | null {
  switch (f.type) {
    case "integer":
      return "Int64";
    case "boolean":
      return "UInt8";
    case "string[]":
      return "Array(String)";
    case "string":
      return f.wire?.from === "member" || f.wire?.from === "header" ? "UInt64" : "String";
    default:
      return null; // objects: kept in `raw`
  }
}

type Schema = { event: string; fields: readonly AnyField[] };

/** The records the kernel's events become: the common header is every one's. */
function kernelSchemas(): readonly Schema[] {
  return [EXEC_SCHEMA, EXIT_SCHEMA, ...RECORD_SCHEMAS];
}

/** Every schema whose lines reach the table: the kernel's, and the agent's own in-band records. */
function schemas(): readonly Schema[] {
  return [...kernelSchemas(), LOST_SCHEMA, SINK_DROPPED_SCHEMA];
}

/** The columns, in schema order (common header first); a key has one type in every schema. */
export function tableColumns(): Column[] {
  const out: Column[] = [
    { name: "run", type: "String", comment: "The agent run that sent the row (random per start)." },
    { name: "seq", type: "UInt64", comment: "The row's number within its run, from 1: a gap is a loss." },
  ];
  const all = schemas();
  const seen = new Map<string, { type: string; events: string[]; column: Column }>();
  for (const s of all) {
    for (const f of s.fields) {
      const type = columnType(f);
      if (type === null) continue;
      const prev = seen.get(f.key);
      if (prev !== undefined) {
        if (prev.type !== type)
          throw new Error(`field ${f.key}: ${prev.type} in ${prev.events[0]} but ${type} in ${s.event}`);
        prev.events.push(s.event);
        continue;
      }
      const column = { name: f.key, type, comment: f.doc };
      seen.set(f.key, { type, events: [s.event], column });
      out.push(column);
    }
  }
  // A field of some types only says which: the rows of the others hold the type's default.
  const kernel = kernelSchemas().length;
  for (const { events, column } of seen.values())
    if (events.length < kernel) column.comment = `${events.join(", ")}: ${column.comment}`;
  out.push(
    {
      name: "raw",
      type: "String",
      comment: `The NDJSON line as the agent wrote it, for the types whose nested objects have no column (${[...eventsKeepingRaw()].join(", ")}); empty otherwise.`,
    },
    {
      name: "ts",
      type: "DateTime",
      comment:
        "`time` to the second, sent by the agent (a MATERIALIZED column would break inserts through a Distributed table on 18.16).",
    },
  );
  return out;
}

/** Event types with nested objects no column holds: their rows keep the whole line in `raw`. */
export function eventsKeepingRaw(): ReadonlySet<string> {
  return new Set(
    schemas()
      .filter((s) => s.fields.some((f) => columnType(f) === null))
      .map((s) => s.event),
  );
}

/** The sorting key: what the queries filter on first, then the row's identity (ReplacingMergeTree's key). */
export const ORDER_BY = "(host, event, ts, run, seq)";

export interface DdlOptions {
  /** TTL in days: ClickHouse 19.6 and later only (18.16 refuses the clause). */
  ttlDays?: number;
  /** Emit a ReplicatedReplacingMergeTree on every node of this cluster and a Distributed table over them. */
  cluster?: string;
}

const sqlString = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

function columnsSql(): string {
  return tableColumns()
    .map((c) => `    ${c.name} ${c.type} COMMENT ${sqlString(c.comment)}`)
    .join(",\n");
}

/**
 * CREATE TABLE statements for the target. Plain: one ReplacingMergeTree.
 * With a cluster: `<table>_local` replicated on each shard and `<table>` a
 * Distributed table over them, sharded by host (one host's rows on one shard,
 * so FINAL and the per-host queries stay shard-local).
 */
export function createTableSql(t: SinkTarget, o: DdlOptions = {}): string {
  const ttl = o.ttlDays !== undefined ? `\nTTL ts + INTERVAL ${o.ttlDays} DAY` : "";
  const note =
    o.ttlDays !== undefined
      ? ""
      : "-- Retention: ClickHouse >= 19.6 takes `TTL ts + INTERVAL 30 DAY` (dual-slot sink schema --ttl-days 30);\n-- 18.16 does not: drop old days with ALTER TABLE ... DROP PARTITION 'YYYY-MM-DD' (see the README).\n";
  const local = o.cluster !== undefined ? `${t.table}_local` : t.table;
  const on = o.cluster !== undefined ? ` ON CLUSTER ${o.cluster}` : "";
  const engine =
    o.cluster !== undefined
      ? `ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/${t.database}.${local}', '{replica}')`
      : "ReplacingMergeTree";
  const main = `${note}CREATE TABLE IF NOT EXISTS ${t.database}.${local}${on}
(
${columnsSql()}
)
ENGINE = ${engine}
PARTITION BY toDate(ts)
ORDER BY ${ORDER_BY}${ttl};
`;
  if (o.cluster === undefined) return main;
  return `${main}
CREATE TABLE IF NOT EXISTS ${t.database}.${t.table}${on} AS ${t.database}.${local}
ENGINE = Distributed(${o.cluster}, ${t.database}, ${local}, cityHash64(host));
`;
}
