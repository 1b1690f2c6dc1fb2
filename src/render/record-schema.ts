/**
 * The schemas of the DS_RECORD_HEAD records (bpf/dual_slot.h): fork, setsid,
 * prctl, ptrace, memfd_create, kill, privilege_escalation; and schemaFor(),
 * every event type's schema. Built from schema.ts's common fields; docs/events.md
 * is generated from them as from the rest.
 */
import type { RecordEvent } from "../wire/decode.ts";
import { ds_privesc_how } from "../wire/layout.gen.ts";
import type { EventName } from "../wire/names.ts";
import { FILE_SCHEMAS } from "./file-schema.ts";
import { NET_SCHEMAS } from "./net-schema.ts";
import { member, nameMap, RES_ERRNO, recField, recHex, recNum, recSchema, recText, str } from "./record-fields.ts";
import { type EventSchema, EXEC_SCHEMA, EXIT_SCHEMA, type SubField, type Wire } from "./schema.ts";

export const FORK_SCHEMA = recSchema(
  "fork",
  "A process created a new process (sched_process_fork; new threads are not reported); with --events fork. The common fields are the parent's.",
  null,
  [
    recNum("child_pid", "fork.child_pid", "The new process's pid."),
    recField(
      "child_exec_id",
      "string",
      "The new process's `exec_id` until it execs: its start, its pid, and the parent's exec count, which it inherits.",
      { from: "join", members: ["fork.child_start_ns", "fork.child_pid", "common.exec_seq"] },
    ),
  ],
  ["child=", member("fork.child_pid")],
);

export const SETSID_SCHEMA = recSchema(
  "setsid",
  "A process started a new session, detaching from its terminal, as daemons and some implants do (syscalls/sys_exit_setsid).",
  "The new session id, or a negative errno.",
  [],
  ["res=", member("res")],
);

export const PRCTL_SCHEMA = recSchema(
  "prctl",
  "A task renamed itself with prctl(PR_SET_NAME), a way to hide under another name (syscalls/sys_{enter,exit}_prctl).",
  RES_ERRNO,
  [
    recNum("option", "prctl.option", "The prctl option: 15, PR_SET_NAME."),
    ...recText("old_name", "The task's name before the call."),
    ...recText("new_name", "The name asked for (the kernel keeps 15 bytes of it)."),
  ],
  [str("old_name"), " -> ", str("new_name"), " res=", member("res")],
);

const PTRACE_REQUESTS = nameMap({
  4: "PTRACE_POKETEXT",
  5: "PTRACE_POKEDATA",
  6: "PTRACE_POKEUSR",
  13: "PTRACE_SETREGS",
  16: "PTRACE_ATTACH",
  16901: "PTRACE_SETREGSET",
  16902: "PTRACE_SEIZE",
});
const REQUEST_NAME: Wire = { from: "enum", member: "ptrace.request", names: PTRACE_REQUESTS };

export const PTRACE_SCHEMA = recSchema(
  "ptrace",
  "A process attached to another, or wrote its memory or registers: PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_POKETEXT, PTRACE_POKEDATA, PTRACE_POKEUSR, PTRACE_SETREGS, PTRACE_SETREGSET (syscalls/sys_{enter,exit}_ptrace). Other requests are not reported.",
  RES_ERRNO,
  [
    recNum("request", "ptrace.request", "The ptrace request, by number."),
    recField("request_name", "string", "The request's name, e.g. `PTRACE_POKEDATA`.", REQUEST_NAME),
    recNum("target_pid", "ptrace.target_pid", "The target, as the caller's pid namespace numbers it."),
    recHex("addr", "ptrace.addr", "The request's address argument, hexadecimal."),
    recHex("data", "ptrace.data", "The request's data argument, hexadecimal (for a POKE: the word written)."),
    ...recText(
      "target_exe",
      "The target's executable, when the caller is tracing it after the call (empty for an attach that failed).",
    ),
  ],
  [REQUEST_NAME, " target=", member("ptrace.target_pid"), " ", str("target_exe"), " res=", member("res")],
);

export const MEMFD_CREATE_SCHEMA = recSchema(
  "memfd_create",
  "An anonymous memory file was created: the usual first step of running a program that never touches the disk (syscalls/sys_{enter,exit}_memfd_create).",
  "The new file descriptor, or a negative errno.",
  [
    ...recText("name", "The name given (shown as `/memfd:<name>` in /proc)."),
    recNum(
      "flags",
      "memfd_create.mflags",
      "The flags: MFD_CLOEXEC 1, MFD_ALLOW_SEALING 2, MFD_HUGETLB 4, MFD_NOEXEC_SEAL 8, MFD_EXEC 16.",
    ),
  ],
  ["name=", str("name"), " flags=", member("memfd_create.mflags"), " res=", member("res")],
);

export const KILL_SCHEMA = recSchema(
  "kill",
  "A signal was sent with kill, tkill or tgkill (syscalls/sys_{enter,exit}_{kill,tkill,tgkill}); with --events kill.",
  RES_ERRNO,
  [
    recNum(
      "target_pid",
      "kill.target_pid",
      "kill's pid (0 or negative: a process group; -1: every process it may signal), tgkill's thread group, tkill's thread.",
    ),
    recNum("target_tid", "kill.target_tid", "tgkill's thread, else 0."),
    recNum("sig", "kill.sig", "The signal number."),
  ],
  ["target=", member("kill.target_pid"), " sig=", member("kill.sig"), " res=", member("res")],
);

const CRED_KEYS = ["uid", "euid", "suid", "fsuid", "gid", "egid", "sgid", "fsgid"] as const;
const creds = (which: "old" | "new"): SubField[] =>
  CRED_KEYS.map((k) => ({ key: k, type: "integer", wire: member(`privilege_escalation.${which}.${k}`) }));
const HOW: Wire = {
  from: "enum",
  member: "privilege_escalation.how",
  names: nameMap({ [ds_privesc_how.DS_PRIVESC_EXEC]: "exec" }),
  otherwise: "setid",
};

export const PRIVILEGE_ESCALATION_SCHEMA = recSchema(
  "privilege_escalation",
  "A task gained privilege: an exec whose effective ids differ from the real ones (a setuid or setgid file) or that gained capabilities (file capabilities), or a set*id call that gave a task without any root id a root one. An exec's is made at `sched_process_exec`, beside that exec's `exec` record: the two share `exec_id`, and either may come first.",
  "For a set*id call: its result (0 on success; setfsuid and setfsgid return the previous fsuid or fsgid, never an error); for an exec: 0.",
  [
    recField("how", "string", "`exec` or `setid`.", HOW),
    recField("old", "object", "Credentials before: `uid`, `euid`, `suid`, `fsuid`, `gid`, `egid`, `sgid`, `fsgid`.", {
      from: "object",
      fields: creds("old"),
    }),
    recField("new", "object", "Credentials after, the same keys.", { from: "object", fields: creds("new") }),
    recHex(
      "cap_effective_old",
      "privilege_escalation.cap_effective_old",
      "Effective capabilities before, hexadecimal.",
    ),
    recHex("cap_effective_new", "privilege_escalation.cap_effective_new", "Effective capabilities after."),
  ],
  [
    "how=",
    HOW,
    " uid=",
    member("privilege_escalation.old.uid"),
    "->",
    member("privilege_escalation.new.uid"),
    " euid=",
    member("privilege_escalation.old.euid"),
    "->",
    member("privilege_escalation.new.euid"),
    " exe=",
    str("exe"),
  ],
);

export const RECORD_SCHEMAS: ReadonlyArray<EventSchema<RecordEvent>> = [
  FORK_SCHEMA,
  SETSID_SCHEMA,
  PRCTL_SCHEMA,
  PTRACE_SCHEMA,
  MEMFD_CREATE_SCHEMA,
  KILL_SCHEMA,
  PRIVILEGE_ESCALATION_SCHEMA,
  ...NET_SCHEMAS,
  ...FILE_SCHEMAS,
];

/** The schema of each event type (usermode_helper and flood are exec records). */
export function schemaFor(type: EventName): EventSchema<never> {
  if (type === "exit") return EXIT_SCHEMA as EventSchema<never>;
  const r = RECORD_SCHEMAS.find((x) => x.event === type);
  return (r ?? EXEC_SCHEMA) as EventSchema<never>;
}
