/**
 * Logs go to stderr, always: stdout carries events (a table or NDJSON) that
 * users pipe into other tools. consola writes info to stdout by default.
 *
 * On a terminal consola draws its usual look. Anywhere else (a journal, a
 * file, a pipe) every message is one line with an ISO time and a level and no
 * colour, so services and log shippers can read it:
 * `2026-12-02T21:50:00.123Z INFO attached ...`.
 */
import { writeSync } from "node:fs";
import type { ConsolaOptions } from "consola";
import { type ConsolaInstance, type ConsolaReporter, createConsola, type LogObject, type LogType } from "consola/core";
import { isTerminal } from "./ffi/libc.ts";

const LEVELS: Record<LogType, string> = {
  silent: "INFO",
  fatal: "ERROR",
  error: "ERROR",
  fail: "ERROR",
  warn: "WARN",
  log: "INFO",
  info: "INFO",
  success: "INFO",
  ready: "INFO",
  start: "INFO",
  box: "INFO",
  debug: "DEBUG",
  trace: "TRACE",
  verbose: "TRACE",
};

/**
 * One log line for a service. Messages can carry bytes from the kernel or
 * from other processes (libbpf's log, names), so control characters are
 * escaped and a multi-line message stays on one line.
 */
export function serviceLine(date: Date, type: LogType, args: readonly unknown[]): string {
  const text = typeof args[0] === "string" && args.length === 1 ? args[0] : formatted(args);
  const oneLine = text.replace(/[\x00-\x1f\x7f]/g, (c) =>
    c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return `${date.toISOString()} ${LEVELS[type] ?? "INFO"} ${oneLine}\n`;
}

/**
 * util.format's text for anything but one string, which it returns as it is: its first call loads
 * node:util's inspector (1.5 ms of a start), and the agent's own lines are single strings.
 */
function formatted(args: readonly unknown[]): string {
  const { formatWithOptions } = require("node:util") as typeof import("node:util");
  return formatWithOptions(
    { colors: false, breakLength: Number.POSITIVE_INFINITY },
    ...args.map((a) => (a instanceof Error ? a.message : a)),
  );
}

/**
 * While a start is on (the run command, until it has attached), lines go to fd 2 by write(2): Bun's
 * process.stderr costs 5-6 ms to create, a tenth of a start, and a start writes a line or two. A
 * line write(2) cannot take whole (a non-blocking stderr that is full, any error) goes on through
 * process.stderr as before, and so does every later one, in order. Off again once attached, and in
 * every other command: the stream buffers a stalled reader (journald, a pipe) where write(2) on a
 * blocking descriptor would hold the event loop.
 */
let direct = false;

export function writeStartDirectly(on: boolean): void {
  direct = on;
}

/** A line to stderr: straight to fd 2 during a start (see writeStartDirectly), else through process.stderr. */
export function writeStderr(text: string): void {
  if (direct) {
    const buf = Buffer.from(text);
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(2, buf, off, buf.length - off);
      return;
    } catch {
      direct = false;
      process.stderr.write(buf.subarray(off));
      return;
    }
  }
  process.stderr.write(text);
}

/**
 * util.format's first call, made by the warm-up: it loads node:util's inspector, and measured, an
 * agent whose start had not loaded it spent twice the CPU per event in its first storm (table: 7.0
 * against 3.4 µs; the cause inside Bun not found). The start's own lines no longer load it (1.5 ms).
 */
export function loadLogFormatter(): void {
  formatted(["%s", "warm-up"]);
}

const serviceReporter: ConsolaReporter = {
  log(o: LogObject) {
    writeStderr(serviceLine(o.date, o.type, o.args));
  },
};

/**
 * consola's own look on a terminal, loaded at the first line shown there:
 * consola's full entry point costs 3-4 ms to load, its core 0.1, and a
 * service (no terminal) never needs the rest.
 */
let terminal: ConsolaReporter | null = null;
export const terminalReporter: ConsolaReporter = {
  log(o: LogObject, ctx: { options: ConsolaOptions }) {
    if (terminal === null) {
      const full = require("consola") as typeof import("consola");
      terminal = full.createConsola({ stdout: process.stderr, stderr: process.stderr }).options.reporters[0]!;
    }
    // The log has no streams of its own (see below): consola's reporter writes to the options' stdout.
    terminal.log(o, { options: { ...ctx.options, stdout: process.stderr, stderr: process.stderr } });
  },
};

// No stdout or stderr for consola: its core uses them only to wrap the console, which this never
// asks, and naming them would create both streams at import. The terminal reporter adds them.
export const log: ConsolaInstance = createConsola({
  level: 3,
  formatOptions: { date: false, compact: true },
  reporters: [isTerminal(2) ? terminalReporter : serviceReporter],
});

export function setVerbose(on: boolean): void {
  log.level = on ? 4 : 3;
}
