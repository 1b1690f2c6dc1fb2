/**
 * The sink's own in-band record: rows it had to throw away (a spool past its
 * cap, or no spool and a server that stays away), written into the event
 * stream and into the table itself where it happened, so a consumer sees the
 * gap (and its size) without reading the agent's stderr.
 */
import { hostname } from "node:os";
import { type EventSchema, jsonObject, rfc3339Nano, SCHEMA_VERSION } from "../render/schema.ts";
import { jsonEscapeHidden } from "../render/writers.ts";

export interface SinkDroppedRecord {
  /** Rows dropped since the previous record. */
  dropped: number;
  /** Batches they were in. */
  batches: number;
  /** Wall-clock time the sink dropped them, ns since the epoch. */
  wallNs: bigint;
}

export const SINK_DROPPED_SCHEMA: EventSchema<SinkDroppedRecord> = {
  event: "sink_dropped",
  doc: "Rows the ClickHouse sink (--sink) dropped, oldest first, because its spool (or, without --spool, its memory queue) was full while the server was away.",
  fields: [
    { key: "schema", type: "integer", doc: "Schema version of this line.", get: () => SCHEMA_VERSION },
    { key: "host", type: "string", doc: "Host name of the machine.", get: (_, c) => c.host },
    { key: "event", type: "string", doc: "`sink_dropped`.", get: () => "sink_dropped" },
    {
      key: "time",
      type: "string",
      doc: "When the sink dropped them, RFC 3339 UTC.",
      get: (r) => rfc3339Nano(r.wallNs),
    },
    { key: "dropped", type: "integer", doc: "Rows dropped since the previous such record.", get: (r) => r.dropped },
    { key: "batches", type: "integer", doc: "Batches those rows were in.", get: (r) => r.batches },
  ],
  heap: [],
};

export function sinkDroppedJson(r: SinkDroppedRecord, host: string = hostname()): string {
  return jsonEscapeHidden(JSON.stringify(jsonObject(SINK_DROPPED_SCHEMA, r, { bootWallNs: 0n, host })));
}
