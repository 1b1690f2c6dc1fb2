/**
 * Flag parsing that fails loudly: citty hands every value over as a string, so
 * each number is checked here and a bad one becomes a one-line UsageError.
 */
import type { ArgsDef } from "citty";
import { UsageError } from "../errors.ts";

export function intArg(name: string, raw: unknown, min: number, max: number): number {
  const s = String(raw).trim();
  if (!/^\d+$/.test(s)) throw new UsageError(`--${name} expects a whole number, got '${String(raw)}'`);
  const n = Number(s);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function optionalInt(name: string, raw: unknown, min: number, max: number): number | undefined {
  return raw === undefined || raw === "" ? undefined : intArg(name, raw, min, max);
}

export function powerOfTwoArg(name: string, raw: unknown, min: number, max: number): number {
  const n = intArg(name, raw, min, max);
  if ((n & (n - 1)) !== 0) throw new UsageError(`--${name} must be a power of two, got ${n}`);
  return n;
}

export function secondsArg(name: string, raw: unknown): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  const s = String(raw).trim();
  if (!/^\d+(\.\d+)?$/.test(s) || Number(s) <= 0)
    throw new UsageError(`--${name} expects seconds > 0, got '${String(raw)}'`);
  return Number(s);
}

export function choiceArg<T extends string>(name: string, raw: unknown, choices: readonly T[]): T {
  const s = String(raw);
  if (!(choices as readonly string[]).includes(s))
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got '${s}'`);
  return s as T;
}

/**
 * citty accepts unknown flags silently; a typo like --duraton would then run
 * forever. Reject anything the command does not declare.
 */
export function rejectUnknownFlags(rawArgs: readonly string[], def: ArgsDef): void {
  const known = new Set<string>(["help", "h", "version", "v"]);
  for (const [name, a] of Object.entries(def)) {
    known.add(name);
    known.add(name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`));
    if (a.type === "boolean") known.add(`no-${name}`);
    const alias = "alias" in a ? a.alias : undefined;
    for (const al of alias === undefined ? [] : Array.isArray(alias) ? alias : [alias]) known.add(al);
  }
  for (const raw of rawArgs) {
    if (raw === "--") break;
    // Negative numbers are values (rejected by their own check), not flags.
    if (!raw.startsWith("-") || raw === "-" || /^-\d/.test(raw)) continue;
    const name = raw.replace(/^--?/, "").split("=")[0]!;
    if (!known.has(name)) throw new UsageError(`unknown flag '${raw}' (see --help)`);
  }
}
