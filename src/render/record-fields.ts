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

/** What a record's own file's path cannot show (create_file, load_module). */
export const pathFlags = (what: string): Array<Field<RecordEvent>> => [
  {
    key: "path_deleted",
    type: "boolean",
    doc: `${what} had been unlinked when the record was built.`,
    get: (ev) => (ev.flags & ds_flags.DS_F_PATH_DELETED) !== 0,
  },
  {
    key: "path_unreachable",
    type: "boolean",
    doc: `${what} is not under the process's root (a chrooted process holding a file from outside): \`path\` is then the mount namespace's view.`,
    get: (ev) => (ev.flags & ds_flags.DS_F_PATH_UNREACHABLE) !== 0,
  },
];

/** One of the record's own strings, with its base64 twin. */
export function recText(key: string, doc: string): Array<Field<RecordEvent>> {
  return text<RecordEvent>(key, doc, (ev) => ev.texts[key] ?? "").map(noWire);
}

function recordFields(resDoc: string | null): Array<Field<RecordEvent>> {
  const out: Array<Field<RecordEvent>> = [
    ...common<RecordEvent>(),
    ...text<RecordEvent>("exe", "The acting process's executable, absolute.", (ev) => ev.exe).map(noWire),
    {
      key: "exe_deleted",
      type: "boolean",
      doc: "The acting process's executable had been unlinked: the file at `exe` is not what runs (or is gone).",
      get: (ev) => (ev.flags & ds_flags.DS_F_EXE_DELETED) !== 0,
    },
    {
      key: "exe_memfd",
      type: "boolean",
      doc: "The acting process runs from a memfd: it never was a file (`exe` is `/memfd:<name>`).",
      get: (ev) => (ev.flags & ds_flags.DS_F_EXE_MEMFD) !== 0,
    },
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
