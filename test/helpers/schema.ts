/**
 * Validates an emitted NDJSON object against the schema the renderer is built
 * from (src/render/schema.ts): every required field present with its one JSON
 * type, optional ones typed when present, nothing undocumented.
 */
import { SINK_DROPPED_SCHEMA } from "../../src/fleet/records.ts";
import { schemaFor } from "../../src/render/record-schema.ts";
import { type EventSchema, type Field, type JsonType, LOST_SCHEMA } from "../../src/render/schema.ts";
import { EVENTS } from "../../src/wire/events.ts";

const SCHEMAS: Record<string, EventSchema<never>> = {
  ...Object.fromEntries(EVENTS.map((e) => [e.name, schemaFor(e.name)])),
  lost: LOST_SCHEMA as EventSchema<never>,
  sink_dropped: SINK_DROPPED_SCHEMA as EventSchema<never>,
};

function typeOk(v: unknown, t: JsonType): boolean {
  switch (t) {
    case "string":
      return typeof v === "string";
    case "integer":
      return typeof v === "number" && Number.isSafeInteger(v);
    case "boolean":
      return typeof v === "boolean";
    case "string[]":
      return Array.isArray(v) && v.every((x) => typeof x === "string");
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    case "object[]":
      return Array.isArray(v) && v.every((x) => typeof x === "object" && x !== null && !Array.isArray(x));
  }
}

function check(o: Record<string, unknown>, fields: ReadonlyArray<Field<never>>, where: string, errors: string[]) {
  const known = new Set(fields.map((f) => f.key));
  for (const f of fields) {
    if (!(f.key in o)) {
      if (!f.optional) errors.push(`${where}${f.key}: missing`);
    } else if (!typeOk(o[f.key], f.type)) {
      errors.push(`${where}${f.key}: ${JSON.stringify(o[f.key])} is not ${f.type}`);
    }
  }
  for (const k of Object.keys(o))
    if (!known.has(k) && !(where === "" && k === "heap")) errors.push(`${where}${k}: not in the schema`);
}

/** Every way `o` differs from the schema of its event type; empty when it validates. */
export function schemaErrors(o: Record<string, unknown>): string[] {
  const schema = SCHEMAS[String(o.event)];
  if (schema === undefined) return [`event ${JSON.stringify(o.event)}: no such event type`];
  const errors: string[] = [];
  check(o, schema.fields, "", errors);
  const heap = o.heap;
  if (schema.heap.length === 0) {
    if (heap !== undefined) errors.push("heap: not in the schema");
  } else if (typeof heap !== "object" || heap === null || Array.isArray(heap)) {
    errors.push("heap: missing or not an object");
  } else {
    check(heap as Record<string, unknown>, schema.heap, "heap.", errors);
  }
  return errors;
}
