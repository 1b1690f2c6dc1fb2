/**
 * Logs go to stderr, always: stdout carries events (a table or NDJSON) that
 * users pipe into other tools. consola writes info to stdout by default.
 */
import { type ConsolaInstance, createConsola } from "consola";

export const log: ConsolaInstance = createConsola({
  level: 3,
  stdout: process.stderr,
  stderr: process.stderr,
  formatOptions: { date: false, compact: true },
});

export function setVerbose(on: boolean): void {
  log.level = on ? 4 : 3;
}
