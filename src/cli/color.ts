/**
 * citty colours its help unconditionally; escape codes in a pipe or a log file
 * are noise. citty (0.2) decides once, from NO_COLOR, when its module is
 * evaluated, so main.ts calls this before it loads citty or anything that
 * imports it.
 */
import { isTerminal } from "../ffi/libc.ts";

export function decideColor(): void {
  if (!isTerminal(1) && process.env.NO_COLOR === undefined) process.env.NO_COLOR = "1";
}
