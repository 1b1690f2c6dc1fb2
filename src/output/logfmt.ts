/**
 * logfmt for the summary line: `key=value` pairs a log pipeline can split
 * without guessing. A value with a space, a quote, an `=` or a control
 * character is quoted, with `"` and `\` escaped as in JSON (and C1 controls,
 * bidi marks and line separators as \uXXXX: see jsonEscapeHidden).
 */
import { hasHidden, jsonEscapeHidden } from "../render/writers.ts";

export type LogfmtValue = string | number | boolean;

export function logfmtValue(v: LogfmtValue): string {
  const s = String(v);
  if (s !== "" && !/[\s"=\\\x00-\x1f\x7f]/.test(s) && !hasHidden(s)) return s;
  return jsonEscapeHidden(JSON.stringify(s));
}

/** `a=1 b="two words"`, in the order given. */
export function logfmt(pairs: ReadonlyArray<readonly [string, LogfmtValue]>): string {
  return pairs.map(([k, v]) => `${k}=${logfmtValue(v)}`).join(" ");
}

/** The inverse, for tests and tools: quoted values unescaped, bare values up to the next space. */
export function parseLogfmt(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const raw = m[2]!;
    out[m[1]!] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  }
  return out;
}
