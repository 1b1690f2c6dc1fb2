/**
 * The parts every DS_RECORD_HEAD record's schema is built from (bpf/dual_slot.h):
 * the common fields, the actor's exe, the syscall and its result, then the
 * type's own. These records are rare next to exec, so they have no compiled
 * renderer (no `wire`): the general path writes them.
 */
import type { RecordEvent } from "../wire/decode.ts";
import { ds_flags } from "../wire/layout.gen.ts";
import type { EventName } from "../wire/names.ts";
import { syscallName } from "../wire/syscalls.ts";
import { common, type EventSchema, type Field, heapCommon, slot1Data, text } from "./schema.ts";

export const recNum = (key: string, member: string, doc: string): Field<RecordEvent> => ({
  key,
  type: "integer",
  doc,
  get: (ev) => Number(ev.fields[member]),
});

/** A 64-bit value as "0x..." (addresses, capability sets). */
export const recHex = (key: string, member: string, doc: string): Field<RecordEvent> => ({
  key,
  type: "string",
  doc,
  get: (ev) => `0x${BigInt.asUintN(64, BigInt(ev.fields[member]!)).toString(16)}`,
});

/** These records have no compiled renderer: their fields need no wire source. */
function noWire<E>(f: Field<E>): Field<E> {
  const { wire: _, ...rest } = f;
  return rest;
}

/** One of the record's own strings, with its base64 twin. */
export function recText(key: string, doc: string): Array<Field<RecordEvent>> {
  return text<RecordEvent>(key, doc, (ev) => ev.texts[key] ?? "").map(noWire);
}

function recordFields(resDoc: string | null): Array<Field<RecordEvent>> {
  const out: Array<Field<RecordEvent>> = [
    ...common<RecordEvent>(),
    ...text<RecordEvent>("exe", "The acting process's executable, absolute.", (ev) => ev.exe).map(noWire),
    {
      key: "truncated",
      type: "boolean",
      doc: "A path or string of this record was cut to fit its buffer (a cut path ends in `…`).",
      get: (ev) => (ev.flags & (ds_flags.DS_F_EXE_TRUNCATED | ds_flags.DS_F_STR_TRUNCATED)) !== 0,
    },
  ];
  if (resDoc === null) return out;
  out.push(
    {
      key: "syscall",
      type: "string",
      doc: "The syscall, by name.",
      get: (ev) => syscallName(ev.syscall),
    },
    { key: "res", type: "integer", doc: resDoc, get: (ev) => Number(ev.res) },
  );
  return out;
}

const recHeap = (): Array<Field<RecordEvent>> => [
  {
    key: "slot1_data",
    type: "string",
    doc: "What slot 1 held when the serializer read it (comm).",
    get: (ev) => slot1Data(ev, 64),
  },
  ...heapCommon<RecordEvent>().map(noWire),
];

export const recSchema = (
  event: EventName,
  doc: string,
  resDoc: string | null,
  own: Array<Field<RecordEvent>>,
  summary: (ev: RecordEvent) => string,
): EventSchema<RecordEvent> => ({
  event,
  doc,
  summary,
  fields: [...recordFields(resDoc), ...own],
  heap: recHeap(),
});

export const RES_ERRNO = "0 on success, else a negative errno.";
