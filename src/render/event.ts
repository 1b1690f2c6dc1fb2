/**
 * The two output formats: the table the README shows (the design note's
 * columns: TYPE, PID, PPID, EXEC and FILE_INFO with slot1_data and slot0_seq on
 * every row), and NDJSON for machines, built from the schema in schema.ts.
 */
import { hostname } from "node:os";
import { isTerminal } from "../ffi/libc.ts";
import type { AgentEvent, ExecEvent, LevelView } from "../wire/decode.ts";
import type { EventName } from "../wire/names.ts";
import { escapeBytes, escapeText } from "./escape.ts";
import { schemaFor } from "./record-schema.ts";
import { type EventSchema, jsonObject, type RenderContext, slot1Data } from "./schema.ts";
import { jsonEscapeHidden } from "./writers.ts";

export { rfc3339Nano, slot1Data } from "./schema.ts";

export const TABLE_BANNER = "Monitoring dual-slot heap usage... press Ctrl+C to stop";
/**
 * The TYPE column: wide enough for every event's name but two, which would
 * widen every row by eight more columns (and cut FILE_INFO on a terminal).
 */
export const TYPE_WIDTH = 12;
const TYPE_LABELS: Readonly<Partial<Record<EventName, string>>> = {
  privilege_escalation: "PRIVESC",
  usermode_helper: "USERMODE",
};

/** An event's TYPE in the table: its name in capitals, or its short label. */
export function tableType(name: EventName): string {
  return TYPE_LABELS[name] ?? name.toUpperCase();
}

export const TABLE_HEADER =
  `${"TYPE".padEnd(TYPE_WIDTH)} ${"PID".padEnd(8)} ${"PPID".padEnd(8)} ${"EXEC".padEnd(16)} FILE_INFO\n` +
  `${"-".repeat(TYPE_WIDTH)} ${"-".repeat(8)} ${"-".repeat(8)} ${"-".repeat(16)} ${"-".repeat(32)}`;

/** Characters a shell word may hold without quotes. */
const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * One argument as a shell would need it typed: '...' when it must be quoted,
 * "..." when it holds a single quote and nothing a shell expands in "..."
 * (so no backslash is needed, which escapeText would show doubled).
 */
function shellWord(a: string): string {
  if (SHELL_SAFE.test(a)) return a;
  if (!a.includes("'")) return `'${a}'`;
  if (!/["\\$`]/.test(a)) return `"${a}"`;
  return `'${a.replace(/'/g, "'\\''")}'`;
}

/** Each argument's bytes: from the exact copy when argv was not valid UTF-8. */
function argWords(ev: ExecEvent): string[] {
  const raw = ev.raw?.args;
  if (raw === undefined) return ev.args.map(shellWord);
  const parts: string[] = [];
  let start = 0;
  const end = raw[raw.length - 1] === 0 ? raw.length - 1 : raw.length;
  while (start <= end && parts.length < ev.args.length) {
    let nul = raw.indexOf(0, start);
    if (nul < 0 || nul > end) nul = end;
    parts.push(shellWord(escapeBytes(raw.subarray(start, nul), Number.MAX_SAFE_INTEGER, false)));
    start = nul + 1;
  }
  return parts;
}

/**
 * The command line, escaped once: quoting is the shell's (not JSON's), and
 * escapeText only makes control bytes visible. Cut to `width` columns.
 */
function cmdline(ev: ExecEvent, width: number): string {
  const words = argWords(ev).join(" ");
  // Arguments from raw bytes are escaped already; the others are escaped here.
  const line = ev.raw?.args === undefined ? escapeText(words, width) : cut(words, width);
  return line + (ev.argsTruncated ? " …[truncated]" : "");
}

function cut(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, Math.max(0, width - 1))}…`;
}

function damage(ev: ExecEvent): string {
  return ev.levels
    .map((l, i) =>
      l.intact
        ? ""
        : ` L${i + 1}@${slotName(l)}:[${escapeBytes(l.dataExpected, 24)}]->[${escapeBytes(l.dataObserved, 24)}]`,
    )
    .join("");
}

function slotName(l: LevelView): string {
  return l.slot === null ? "ring" : `slot${l.slot}`;
}

let stdoutIsTerminal: boolean | undefined;

/** Terminal width for a table on a terminal (as it is now: it follows a resize); no limit for a file or a pipe. */
export function tableWidth(): number {
  stdoutIsTerminal ??= isTerminal(1);
  return stdoutIsTerminal ? (process.stdout.columns ?? 80) : Number.POSITIVE_INFINITY;
}

/** tableRow's fixed columns before FILE_INFO. */
export const TABLE_PREFIX = TYPE_WIDTH + 1 + 8 + 1 + 8 + 1 + 16 + 1;

/** One table row; FILE_INFO is cut so that the row fits `width` columns. */
export function tableRow(ev: AgentEvent, width = tableWidth()): string {
  const type = ev.corrupt ? "CORRUPT" : tableType(ev.type);
  let info = `slot1_data=[${slot1Data(ev)}] slot0_seq=${ev.seq}`;
  if (ev.type === "exit") {
    const code = ev.exitCode;
    info += ` exit_code=${(code >> 8) & 0xff} signal=${code & 0x7f}${code & 0x80 ? " core" : ""}`;
    info += ` runtime=${(Number(ev.runtimeNs) / 1e9).toFixed(3)}s`;
  } else if (!("levels" in ev)) {
    const summary = (schemaFor(ev.type) as EventSchema<typeof ev>).summary;
    if (summary !== undefined)
      info += ` ${escapeText(summary(ev), Math.max(16, width - TABLE_PREFIX - info.length - 1))}`;
  } else {
    if (ev.res !== 0) info += ` res=${ev.res}`;
    if (ev.corrupt) info += damage(ev);
    if (ev.clobbered) info += " CLOBBERED";
    if (ev.args.length > 0) info += ` cmd=${cmdline(ev, Math.max(16, width - TABLE_PREFIX - info.length - 5))}`;
  }
  const comm = ev.raw?.comm !== undefined ? escapeBytes(ev.raw.comm, 16) : escapeText(ev.comm, 16);
  return `${type.padEnd(TYPE_WIDTH)} ${String(ev.pid).padEnd(8)} ${String(ev.ppid).padEnd(8)} ${comm.padEnd(16)} ${info}`;
}

let host: string | undefined;

/** One NDJSON line. `bootWallNs` maps the kernel's monotonic clock to wall time. */
export function jsonLine(ev: AgentEvent, bootWallNs: bigint, hostName?: string): string {
  host ??= hostname();
  const ctx: RenderContext = { bootWallNs, host: hostName ?? host };
  return jsonEscapeHidden(JSON.stringify(jsonObject(schemaFor(ev.type) as EventSchema<AgentEvent>, ev, ctx)));
}
