/**
 * Help text, rendered here from each command's args definition rather than by
 * citty's renderUsage: citty cannot put flags under headings or wrap to the
 * terminal. Pure functions of their inputs (the width included), so the
 * layout is unit-tested without a terminal.
 */
import type { ArgDef, ArgsDef } from "citty";
import { agentArgs, LAB_FLAGS } from "./agent-args.ts";

/** What help needs of a command: citty's meta, already resolved. */
export interface HelpCommand {
  name: string;
  description: string;
  args: ArgsDef;
  /** Nested commands (name to description), if the command has any. */
  subCommands?: Record<string, string>;
}

export const TOOL_LINE =
  "dual-slot is a host security agent: it streams what processes do on this host (execs, failed execs, exits, privilege escalations, ptrace, memfds, connects, binds, DNS queries, created, renamed and linked files, mounts; `run --help` lists them), each record built in a two-slot per-CPU heap, on tracepoints alone, for hosts where kprobes, fentry or the BPF LSM are unavailable.";

export const EXAMPLES: ReadonlyArray<readonly [string, string]> = [
  ["sudo dual-slot", "stream the default events to the terminal as a table until Ctrl-C"],
  ["sudo dual-slot run --json --duration 60 > events.json", "one minute of events as NDJSON, one object a line"],
  ["sudo dual-slot doctor", "what this host lacks to run the agent, with a fix for each failure"],
];

/** Help is wrapped to the terminal; 80 columns when stdout is not one. */
export function helpWidth(out: { isTTY?: boolean; columns?: number } = process.stdout): number {
  return out.isTTY === true && typeof out.columns === "number" && out.columns > 0 ? out.columns : 80;
}

/** Greedy word wrap; a word longer than the width gets a line of its own. */
export function wrap(text: string, width: number, indent = 0): string[] {
  const room = Math.max(width - indent, 20);
  const pad = " ".repeat(indent);
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line === "") line = word;
    else if (line.length + 1 + word.length <= room) line += ` ${word}`;
    else {
      lines.push(pad + line);
      line = word;
    }
  }
  if (line !== "") lines.push(pad + line);
  return lines;
}

const labelWidthOf = (rows: ReadonlyArray<readonly [string, string]>): number =>
  Math.min(Math.max(0, ...rows.map(([l]) => l.length)), 26);

/** Two columns: the label, then its text wrapped beside it (or below, when the label is too wide). */
function table(
  rows: ReadonlyArray<readonly [string, string]>,
  width: number,
  labelWidth: number = labelWidthOf(rows),
): string[] {
  const INDENT = 2;
  const textAt = INDENT + labelWidth + 2;
  const besides = width - textAt >= 30;
  const out: string[] = [];
  for (const [label, text] of rows) {
    const head = " ".repeat(INDENT) + label;
    if (!besides) {
      out.push(head, ...wrap(text, width, INDENT + 4));
      continue;
    }
    const body = wrap(text, width, textAt);
    if (label.length <= labelWidth && body.length > 0) {
      out.push(head.padEnd(textAt) + body[0]!.trimStart(), ...body.slice(1));
    } else {
      out.push(head, ...body);
    }
  }
  return out;
}

// Names for a flag's value where the flag name alone does not say what it is.
const HINTS: Record<string, string> = {
  duration: "SECONDS",
  count: "N",
  pid: "PID",
  id: "ID",
  comm: "NAME",
  out: "FILE",
  interval: "MS",
  "ring-size": "BYTES",
  "max-arg-bytes": "BYTES",
  output: "FILE",
  "rotate-size": "SIZE",
  "rotate-keep": "N",
  "spool-size": "SIZE",
  "sink-batch": "ROWS",
  "sink-flush": "SECONDS",
  metrics: "HOST:PORT",
  "output-buffer": "SIZE",
  pages: "N",
  transport: "perf|ringbuf|ringbuf-output",
  workload: "exec|flood|syscall|all",
  transports: "LIST",
  encodings: "LIST",
  "flood-rates": "RATES",
  "flood-seconds": "SECONDS",
  rounds: "N",
  execs: "N",
  workers: "N",
  root: "DIR",
  args: "'FLAGS'",
  "ttl-days": "DAYS",
  cluster: "NAME",
};

function valueHint(name: string, a: ArgDef): string {
  if ("valueHint" in a && typeof a.valueHint === "string" && a.valueHint !== "") return a.valueHint;
  if (a.type === "enum" && a.options !== undefined) return a.options.join("|");
  if (HINTS[name] !== undefined) return HINTS[name];
  return /^\d+$/.test(String(a.default ?? "")) ? "N" : "VALUE";
}

function flagRow(name: string, a: ArgDef): [string, string] {
  const alias = "alias" in a ? a.alias : undefined;
  const shorts = (alias === undefined ? [] : Array.isArray(alias) ? alias : [alias]).map((s) =>
    s.length === 1 ? `-${s}` : `--${s}`,
  );
  if (a.type === "boolean") {
    const on = a.default === true;
    const label = [...shorts, on ? `--[no-]${name}` : `--${name}`].join(", ");
    return [label, `${a.description ?? ""}${on ? " (default: on)" : ""}`];
  }
  const label = [...shorts, `--${name} ${valueHint(name, a)}`].join(", ");
  const d = a.default;
  return [label, `${a.description ?? ""}${d !== undefined && d !== "" ? ` (default: ${String(d)})` : ""}`];
}

/** The flags of one command: the operator's first, then the lab and tuning knobs under their own heading. */
export function flagSections(def: ArgsDef, width: number, heading = "Flags:"): string[] {
  const main: Array<[string, string]> = [];
  const lab: Array<[string, string]> = [];
  // Only commands that run the agent (they share its flag definitions) set the
  // knobs apart: for mem, --slots and --pages are what it is about.
  const runsAgent = Object.entries(def).some(([name, a]) => a === (agentArgs as ArgsDef)[name]);
  for (const [name, a] of Object.entries(def)) {
    if (a.type === "positional") continue;
    (runsAgent && LAB_FLAGS.has(name) ? lab : main).push(flagRow(name, a));
  }
  main.push(["-h, --help", "show this help"]);
  const w = labelWidthOf([...main, ...lab]);
  const out = [heading, ...table(main, width, w)];
  if (lab.length > 0) out.push("", "Lab and tuning:", ...table(lab, width, w));
  return out;
}

/** A command's summary for a list: its first sentence, up to a colon or a parenthesis. */
export function summary(text: string): string {
  const m = /^(.*?[.!?])(\s|$)/.exec(text);
  const sentence = (m?.[1] ?? text).replace(/\.$/, "");
  const cut = sentence.search(/: | \(/);
  return cut >= 15 ? sentence.slice(0, cut) : sentence;
}

/** `dual-slot --help`: what the tool is, examples, the commands, then the default command's flags. */
export function rootHelp(
  commands: Record<string, string>,
  defaultCommand: string,
  defaultArgs: ArgsDef,
  width: number,
): string {
  const rows = Object.entries(commands).map(([name, desc]): [string, string] => [
    name,
    `${name === defaultCommand ? "(the default) " : ""}${summary(desc)}`,
  ]);
  rows.push(["help [COMMAND]", "this help, or a command's flags"]);
  const lines = [
    ...wrap(TOOL_LINE, width),
    "",
    "Usage: dual-slot [COMMAND] [FLAGS]",
    "",
    "Examples:",
    ...EXAMPLES.flatMap(([cmd, what]) => [`  ${cmd}`, ...wrap(what, width, 6)]),
    "",
    "Commands:",
    ...table(rows, width),
    "",
    ...flagSections(defaultArgs, width, `Flags of \`${defaultCommand}\`, the default command:`),
    "",
    ...wrap(
      "-V, --version prints the version. `dual-slot COMMAND --help` (or `dual-slot help COMMAND`) shows a command's flags. Bad flags exit 2 with one line on stderr.",
      width,
    ),
  ];
  return `${lines.join("\n")}\n`;
}

/** `dual-slot COMMAND --help`. `path` is the command as typed (`run`, `service install`). */
export function commandHelp(path: string, cmd: HelpCommand, width: number): string {
  const sub = cmd.subCommands ?? {};
  const hasSub = Object.keys(sub).length > 0;
  const positionals = Object.entries(cmd.args)
    .filter(([, a]) => a.type === "positional")
    .map(([n, a]) => (a.required === false || a.default !== undefined ? `[${n.toUpperCase()}]` : n.toUpperCase()));
  const lines = [
    ...wrap(`dual-slot ${path}: ${cmd.description}`, width),
    "",
    `Usage: dual-slot ${path}${hasSub ? " COMMAND" : ""} [FLAGS]${positionals.map((p) => ` ${p}`).join("")}`,
  ];
  if (hasSub) {
    lines.push(
      "",
      "Commands:",
      ...table(
        Object.entries(sub).map(([n, d]): [string, string] => [n, summary(d)]),
        width,
      ),
    );
  }
  lines.push("", ...flagSections(cmd.args, width));
  return `${lines.join("\n")}\n`;
}
