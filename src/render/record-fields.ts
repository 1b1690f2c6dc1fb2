/**
 * The parts every DS_RECORD_HEAD record's schema is built from (bpf/dual_slot.h):
 * the common fields, the actor's exe, the syscall and its result, then the
 * type's own. A record field is defined once, by its `wire`: the general path
 * reads that wire from the decoded record (wireValue), the compiled renderer
 * (fast.ts) from the record's bytes, and the table row's summary is made of
 * wires too, so the two paths cannot disagree on what a field is.
 */
import type { RecordEvent } from "../wire/decode.ts";
import { ds_flags } from "../wire/layout.gen.ts";
import type { EventName } from "../wire/names.ts";
import { syscallNames } from "../wire/syscalls.ts";
import { ipText } from "./ip.ts";
import {
  common,
  type EventSchema,
  type Field,
  heapCommon,
  type JsonType,
  type SummaryPart,
  slot1Data,
  text,
  type Wire,
} from "./schema.ts";

/** A lookup table as an enum wire takes it. */
export const nameMap = (names: Readonly<Record<number, string>> | readonly string[]): ReadonlyMap<number, string> =>
  new Map(Object.entries(names).map(([k, v]): [number, string] => [Number(k), v]));

/** A member as the decoder read it (64-bit ones as bigint). */
const raw = (ev: RecordEvent, member: string): number | bigint => ev.fields[member] ?? 0;

/** The record's strings by name: the common ones have their own members. */
function recString(ev: RecordEvent, name: string): string {
  switch (name) {
    case "comm":
      return ev.comm;
    case "nodename":
      return ev.nodename;
    case "pid_tree":
      return ev.pidTree;
    case "exe":
      return ev.exe;
    default:
      return ev.texts[name] ?? "";
  }
}

function enumText(w: Extract<Wire, { from: "enum" }>, ev: RecordEvent): string {
  if (w.onlyIf !== undefined && Number(raw(ev, w.onlyIf.member)) !== w.onlyIf.value) return "";
  const v = raw(ev, w.member);
  const key = w.mask === undefined ? Number(v) : Number(v) & w.mask;
  return w.names.get(key) ?? w.otherwise ?? String(w.mask === undefined ? v : key);
}

/**
 * A wire's value from a decoded record: for a JSON field of `type`, or as
 * the summary's text ("text": 64-bit values in all their digits).
 */
export function wireValue(w: Wire, type: JsonType | "text", ev: RecordEvent): unknown {
  switch (w.from) {
    case "member": {
      let v = raw(ev, w.member);
      if (w.shift !== undefined || w.mask !== undefined)
        v = ((Number(v) >>> (w.shift ?? 0)) & (w.mask ?? 0xffffffff)) >>> 0;
      if (type === "integer") return Number(v);
      if (type === "boolean") return Number(v) !== 0;
      return String(v);
    }
    case "enum":
      return enumText(w, ev);
    case "hex":
      return `0x${BigInt.asUintN(64, BigInt(raw(ev, w.member))).toString(16)}`;
    case "octal":
      return (Number(raw(ev, w.member)) & w.mask).toString(8).padStart(w.digits, "0");
    case "ip":
      return ipText(
        Number(raw(ev, `${w.sock}.family`)),
        BigInt(raw(ev, `${w.sock}.${w.end}_0`)),
        BigInt(raw(ev, `${w.sock}.${w.end}_1`)),
      );
    case "object":
      if (w.ifNonZero !== undefined && Number(raw(ev, w.ifNonZero)) === 0) return undefined;
      return Object.fromEntries(w.fields.map((f) => [f.key, wireValue(f.wire, f.type, ev)]));
    case "join":
      return w.members.map((m) => String(raw(ev, m))).join(":");
    case "flags":
      return (ev.flags & w.mask) !== 0;
    case "string":
      return recString(ev, w.name);
    default:
      throw new Error(`a record field cannot be read from a ${w.from} wire`);
  }
}

/** The summary (the table's FILE_INFO tail) its parts make for a decoded record. */
export function summaryText(parts: readonly SummaryPart[], ev: RecordEvent): string {
  let s = "";
  for (const p of parts) {
    if (typeof p === "string") s += p;
    else if ("from" in p) s += String(wireValue(p, "text", ev));
    else if (Number(raw(ev, p.when.member)) === p.when.value) s += summaryText(p.parts, ev);
  }
  return s;
}

/** A field defined by its wire alone: the general path reads the same wire from the decoded record. */
export function recField(key: string, type: JsonType, doc: string, wire: Wire, optional = false): Field<RecordEvent> {
  const f: Field<RecordEvent> = { key, type, doc, get: (ev) => wireValue(wire, type, ev), wire };
  if (optional) f.optional = true;
  return f;
}

export const recNum = (key: string, member: string, doc: string): Field<RecordEvent> =>
  recField(key, "integer", doc, { from: "member", member });

/** A 64-bit value as "0x..." (addresses, capability sets). */
export const recHex = (key: string, member: string, doc: string): Field<RecordEvent> =>
  recField(key, "string", doc, { from: "hex", member });

export const recFlag = (key: string, mask: number, doc: string): Field<RecordEvent> =>
  recField(key, "boolean", doc, { from: "flags", mask });

/** The wire of a member's value; what summaries are mostly made of. */
export const member = (path: string): Wire => ({ from: "member", member: path });
/** The wire of one of the record's strings. */
export const str = (name: string): Wire => ({ from: "string", name });

/** What a record's own file's path cannot show (create_file, load_module). */
export const pathFlags = (what: string): Array<Field<RecordEvent>> => [
  recFlag(
    "path_deleted",
    ds_flags.DS_F_PATH_DELETED,
    `${what}'s name had been removed (unlinked, even if the file keeps another name) when the record was built.`,
  ),
  recFlag(
    "path_unreachable",
    ds_flags.DS_F_PATH_UNREACHABLE,
    `${what} is not under the process's root (a chrooted process holding a file from outside): \`path\` is then the mount namespace's view.`,
  ),
];

/** A record whose paths are resolved from names (rename, link, unlink, rmdir, mount): what they cannot show. */
export const resolvedFlag = (): Field<RecordEvent> =>
  recFlag(
    "path_unreachable",
    ds_flags.DS_F_PATH_UNREACHABLE,
    "A relative name of this record was resolved from a directory outside the process's root (a dirfd or cwd from before a chroot): its path is the mount namespace's view, not one the process can see.",
  );

/** One of the record's strings, with its base64 twin. */
export function recText(key: string, doc: string): Array<Field<RecordEvent>> {
  return text<RecordEvent>(key, doc, (ev) => recString(ev, key));
}

const SYSCALLS = nameMap(syscallNames());

function recordFields(resDoc: string | null): Array<Field<RecordEvent>> {
  const out: Array<Field<RecordEvent>> = [
    ...common<RecordEvent>(),
    ...recText(
      "exe",
      "The acting process's executable, absolute, as the thread's first record since its exec resolved it: moving or renaming the file later does not change it; `exe_deleted` is read at each record, and a chroot resolves it again.",
    ),
    recFlag(
      "exe_deleted",
      ds_flags.DS_F_EXE_DELETED,
      "The name the acting process's executable ran from had been removed (unlinked, even if the file keeps another name): the file at `exe` is not what runs (or is gone).",
    ),
    recFlag(
      "exe_memfd",
      ds_flags.DS_F_EXE_MEMFD,
      "The acting process runs from a memfd: it never was a file (`exe` is `/memfd:<name>`).",
    ),
    recFlag(
      "exe_unreachable",
      ds_flags.DS_F_EXE_UNREACHABLE,
      "The acting process's executable is not under its root (a chrooted process running a file from outside it): `exe` is the mount namespace's view, not a path the process can see. Not set for a memfd.",
    ),
    recFlag(
      "read_at_exit",
      ds_flags.DS_F_READ_AT_EXIT,
      "A name, address, message or flags the call was given could not be read as the call was entered (its page not in memory yet: a fresh mapping of a file, say) and was read at the call's exit: it may be what another thread of the caller wrote meanwhile. A connect or bind that succeeded shows the socket's own addresses instead, and is not flagged.",
    ),
    recFlag(
      "truncated",
      ds_flags.DS_F_EXE_TRUNCATED | ds_flags.DS_F_STR_TRUNCATED,
      "A path or string of this record was cut to fit its buffer (a cut path ends in `…`), or a name the call was given could not be read at all (or the kernel had no memory for its copy): that name is then empty; or a relative name's dirfd named no open file: that name is shown as given, relative.",
    ),
  ];
  if (resDoc === null) return out;
  out.push(
    recField("syscall", "string", "The syscall, by name.", { from: "enum", member: "syscall", names: SYSCALLS }),
    recNum("res", "res", resDoc),
  );
  return out;
}

const recHeap = (): Array<Field<RecordEvent>> => [
  {
    key: "slot1_data",
    type: "string",
    doc: "What slot 1 held when the serializer read it (comm).",
    get: (ev) => slot1Data(ev, 64),
    wire: { from: "cstr", name: "comm" },
  },
  ...heapCommon<RecordEvent>(),
];

export const recSchema = (
  event: EventName,
  doc: string,
  resDoc: string | null,
  own: Array<Field<RecordEvent>>,
  summaryParts: readonly SummaryPart[],
): EventSchema<RecordEvent> => ({
  event,
  doc,
  summary: (ev) => summaryText(summaryParts, ev),
  summaryParts,
  fields: [...recordFields(resDoc), ...own],
  heap: recHeap(),
});

export const RES_ERRNO = "0 on success, else a negative errno.";
