/**
 * The in-band record for events that went missing: written into the event
 * stream where the agent noticed the loss, so a consumer of the stream sees
 * the gap without reading stderr. One function per format, kept apart from
 * the event renderers so the record's schema can change in one place.
 */
import { hostname } from "node:os";
import { TYPE_WIDTH } from "./event.ts";
import { jsonObject, LOST_SCHEMA, type LostRecord, rfc3339Nano } from "./schema.ts";
import { jsonEscapeHidden } from "./writers.ts";

export type { LostRecord } from "./schema.ts";

let host: string | undefined;

/** `{"schema":1,"host":H,"event":"lost","time":"<RFC 3339>","cpu":C,"lost":N}` (LOST_SCHEMA). */
export function lostJson(r: LostRecord, hostName?: string): string {
  host ??= hostname();
  return jsonEscapeHidden(JSON.stringify(jsonObject(LOST_SCHEMA, r, { bootWallNs: 0n, host: hostName ?? host })));
}

/** A table row of TYPE LOST, in the columns of TABLE_HEADER (TYPE_WIDTH, 8, 8, 16, then free text). */
export function lostRow(r: LostRecord): string {
  return `${"LOST".padEnd(TYPE_WIDTH)} ${"-".padEnd(8)} ${"-".padEnd(8)} ${"-".padEnd(16)} cpu=${r.cpu} lost=${r.lost} time=${rfc3339Nano(r.wallNs)}`;
}
