/**
 * The event table: one entry per record type the BPF program emits. An entry
 * names the record's C struct (its layout generated from the object's BTF), the
 * fixed-encoding variant, and the names of its strings (the record's string
 * enum). The decoder reads every scalar member and every string of a record
 * from this alone, so a new event type is a C struct in bpf/dual_slot.h plus
 * one line here.
 *
 * Record convention (bpf/dual_slot.h): `struct ds_header hdr` first, `__u32
 * str[N]` last; each str[i] is `len << 16 | offset` from the record's start.
 * Compact strings are packed right after the struct; the fixed encoding puts
 * each in a char array of the `_fixed` struct named like the string.
 */
import * as layout from "./layout.gen.ts";
import { ds_event_type, ds_exec, ds_exec_fixed, ds_exit, ds_exit_fixed, ds_exit_str, ds_str } from "./layout.gen.ts";
import type { EventName } from "./names.ts";

/** One struct as the generated layout describes it. */
export interface StructLayout {
  readonly size: number;
  readonly off: Readonly<Record<string, number>>;
  readonly bytes: Readonly<Record<string, number>>;
  readonly count: Readonly<Record<string, number>>;
  readonly kind: Readonly<Record<string, string>>;
}

export interface EventSpec {
  readonly name: EventName;
  readonly type: number;
  /** The BPF program that emits it: loaded and attached only when the event is selected. */
  readonly program: string;
  /** Selected when --events is not given. */
  readonly byDefault: boolean;
  /** One line for --help and doctor: what it reports, from which hook. */
  readonly doc: string;
  readonly struct: StructLayout;
  readonly fixed: StructLayout;
  /** str[i]'s name. */
  readonly strings: readonly string[];
}

/** Every generated struct layout by its C name (a nested member's `kind`). */
const STRUCTS: ReadonlyMap<string, StructLayout> = new Map(
  Object.entries(layout).flatMap(
    ([name, v]): Array<[string, StructLayout]> =>
      typeof v === "object" && v !== null && "off" in v && "kind" in v ? [[name, v as StructLayout]] : [],
  ),
);

/** The layout of a nested struct member's type (e.g. `common`'s ds_common), if it is one. */
export function nestedStruct(s: StructLayout, member: string): StructLayout | undefined {
  const kind = s.kind[member];
  return kind === undefined ? undefined : STRUCTS.get(kind);
}

/**
 * Where a member lies in a record: `pid`, or `common.euid` for a scalar of a
 * nested struct (one level, as the decoder flattens them). Undefined when the
 * struct has no such member.
 */
export function memberAt(s: StructLayout, path: string): { off: number; kind: string } | undefined {
  const dot = path.indexOf(".");
  if (dot < 0) {
    const off = s.off[path];
    return off === undefined ? undefined : { off, kind: s.kind[path]! };
  }
  const outer = path.slice(0, dot);
  const inner = nestedStruct(s, outer);
  const name = path.slice(dot + 1);
  const off = inner?.off[name];
  return inner === undefined || off === undefined ? undefined : { off: s.off[outer]! + off, kind: inner.kind[name]! };
}

/** String names in index order from a `DS_<X>_STR_*` enum (its `_NR` member is the count). */
function stringNames(e: Readonly<Record<string, number>>, prefix: string): string[] {
  const names: string[] = [];
  for (const [k, v] of Object.entries(e)) if (k !== `${prefix}NR`) names[v] = k.slice(prefix.length).toLowerCase();
  return names;
}

const EXEC_STRINGS = stringNames(ds_str, "DS_STR_");

export const EVENTS: readonly EventSpec[] = [
  {
    name: "exec",
    type: ds_event_type.DS_EVENT_EXEC,
    program: "ds_exec",
    byDefault: true,
    doc: "a program started (tracepoint sched_process_exec)",
    struct: ds_exec,
    fixed: ds_exec_fixed,
    strings: EXEC_STRINGS,
  },
  {
    name: "exit",
    type: ds_event_type.DS_EVENT_EXIT,
    program: "ds_exit",
    byDefault: false,
    doc: "a process exited (tracepoint sched_process_exit)",
    struct: ds_exit,
    fixed: ds_exit_fixed,
    strings: stringNames(ds_exit_str, "DS_EXIT_STR_"),
  },
  // The benchmark's syscall flood: its records go through the exec path, so they share its struct.
  {
    name: "flood",
    type: ds_event_type.DS_EVENT_FLOOD,
    program: "ds_flood",
    byDefault: false,
    doc: "the benchmark's syscall flood (sys_enter, one process)",
    struct: ds_exec,
    fixed: ds_exec_fixed,
    strings: EXEC_STRINGS,
  },
];

/** Spec by the header's type value. */
export const SPEC_BY_TYPE: ReadonlyArray<EventSpec | undefined> = (() => {
  const out: Array<EventSpec | undefined> = [];
  for (const s of EVENTS) out[s.type] = s;
  return out;
})();
