/**
 * Flag parsing that fails loudly. citty hands every value over as a string and
 * accepts what it does not know (unknown flags, stray words, a flag whose value
 * is missing, `--guard=no` read as on), so checkArgv validates the command line
 * against the command's args definition first, and the value checks here turn
 * each bad number into a one-line UsageError.
 */
import type { ArgsDef } from "citty";
import { UsageError } from "../errors.ts";

export function intArg(name: string, raw: unknown, min: number, max: number): number {
  const s = String(raw).trim();
  if (!/^\d+$/.test(s)) throw new UsageError(`--${name} expects a whole number, got '${String(raw)}'`);
  const n = Number(s);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${s}`);
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

/**
 * The longest duration a timer holds: setTimeout takes a signed 32-bit count
 * of milliseconds and fires at once past it, so a longer --duration would stop
 * the agent immediately. A service that runs for months leaves --duration out.
 */
export const MAX_DURATION_S = Math.floor(0x7fffffff / 1000);

export function secondsArg(name: string, raw: unknown, max: number = MAX_DURATION_S): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  const s = String(raw).trim();
  if (!/^\d+(\.\d+)?$/.test(s) || Number(s) <= 0)
    throw new UsageError(`--${name} expects seconds > 0, got '${String(raw)}'`);
  const n = Number(s);
  if (n > max) {
    throw new UsageError(
      `--${name} must be at most ${max} seconds (${(max / 86400).toFixed(1)} days), got ${s}; to run longer, leave --${name} out`,
    );
  }
  return n;
}

export function choiceArg<T extends string>(name: string, raw: unknown, choices: readonly T[]): T {
  const s = String(raw);
  if (!(choices as readonly string[]).includes(s))
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got '${s}'`);
  return s as T;
}

/**
 * List flags that may be given more than once (`--allow-argv A --allow-argv B`):
 * checkArgv hands citty, which keeps only the last, one value with the
 * repeats joined by a line feed. No value of theirs may hold one.
 */
export const REPEATABLE: ReadonlySet<string> = new Set(["uid", "cgroup", "allow-exe", "allow-argv"]);

type Kind = "string" | "boolean";

interface Flag {
  /** The key in the args definition, as citty reads it back. */
  key: string;
  kind: Kind;
  /** `--no-<key>`: a boolean switched off. */
  negated: boolean;
  /** An enum's values. */
  options?: readonly string[];
}

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function flagTable(def: ArgsDef): { long: Map<string, Flag>; short: Map<string, Flag>; positionals: number } {
  const long = new Map<string, Flag>();
  const short = new Map<string, Flag>();
  let positionals = 0;
  for (const [key, a] of Object.entries(def)) {
    if (a.type === "positional") {
      positionals++;
      continue;
    }
    const kind: Kind = a.type === "boolean" ? "boolean" : "string";
    const options = a.type === "enum" ? a.options : undefined;
    const alias = "alias" in a ? a.alias : undefined;
    const aliases = alias === undefined ? [] : Array.isArray(alias) ? alias : [alias];
    for (const n of new Set([key, kebab(key), ...aliases])) {
      const table = n.length === 1 ? short : long;
      table.set(n, { key, kind, negated: false, ...(options ? { options } : {}) });
      if (kind === "boolean" && n.length > 1) long.set(`no-${n}`, { key, kind, negated: true });
    }
  }
  return { long, short, positionals };
}

/** Whether `arg` names one of the command's flags (with or without =value). */
function isFlag(arg: string, long: Map<string, Flag>, short: Map<string, Flag>): boolean {
  if (!arg.startsWith("-") || /^-\d/.test(arg)) return false;
  const isLong = arg.startsWith("--");
  const eq = arg.indexOf("=");
  const name = arg.slice(isLong ? 2 : 1, eq < 0 ? undefined : eq);
  return (isLong ? long : short).has(name) || ["--help", "-h"].includes(arg);
}

/**
 * Checks a command line against the command's args definition and returns it
 * normalised for citty: every value attached (`--name=value`, so a value that
 * starts with a dash stays a value) and every switch bare (`--x` / `--no-x`).
 *
 * Rejects, with one line naming the flag: unknown flags; a string flag with
 * no value or an empty one; a value on a switch other than true/false
 * (`--guard=no` would otherwise turn the guard on); the same flag twice
 * (which one wins is not obvious); arguments the command does not take.
 * `--switch=true` and `--switch=false` are honoured. `command` names the
 * command in the messages.
 */
export function checkArgv(rawArgs: readonly string[], def: ArgsDef, command = "dual-slot"): string[] {
  const { long, short, positionals } = flagTable(def);
  const out: string[] = [];
  const seen = new Map<string, string>();
  let positional = 0;
  const see = (f: Flag, spelled: string) => {
    const before = seen.get(f.key);
    if (before !== undefined && !REPEATABLE.has(f.key))
      throw new UsageError(`${spelled} given after ${before}: give each flag once (${command} --help)`);
    seen.set(f.key, spelled);
  };
  const takePositional = (a: string) => {
    if (positional >= positionals) {
      const takes = positionals === 0 ? "takes no arguments" : `takes ${positionals} argument(s)`;
      throw new UsageError(`unexpected argument '${a}': ${command} ${takes} (see ${command} --help)`);
    }
    positional++;
    out.push(a);
  };

  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") {
      out.push("--");
      for (const p of rawArgs.slice(i + 1)) takePositional(p);
      break;
    }
    // A lone dash and negative numbers are arguments, not flags.
    if (!a.startsWith("-") || a === "-" || /^-\d/.test(a)) {
      takePositional(a);
      continue;
    }
    const isLong = a.startsWith("--");
    const eq = a.indexOf("=");
    const name = a.slice(isLong ? 2 : 1, eq < 0 ? undefined : eq);
    const inline = eq < 0 ? undefined : a.slice(eq + 1);
    const f = (isLong ? long : short).get(name);
    const spelled = eq < 0 ? a : a.slice(0, eq);
    if (f === undefined) throw new UsageError(`unknown flag '${spelled}' (see ${command} --help)`);
    see(f, spelled);
    if (f.kind === "boolean") {
      if (inline === undefined) {
        out.push(f.negated ? `--no-${f.key}` : `--${f.key}`);
        continue;
      }
      if (f.negated || (inline !== "true" && inline !== "false")) {
        throw new UsageError(
          `${spelled} is a switch: use --${f.key} or --no-${f.key} (or --${f.key}=true / --${f.key}=false), got '${a}'`,
        );
      }
      out.push(inline === "true" ? `--${f.key}` : `--no-${f.key}`);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = rawArgs[i + 1];
      // `--count --json` is a forgotten value, not a count of "--json"; a
      // value that is not one of the command's flags may start with dashes
      // (service's `--args "--json --duration 60"`), and --name=VALUE takes anything.
      if (next === undefined || isFlag(next, long, short))
        throw new UsageError(`${spelled} needs a value (${spelled} VALUE or ${spelled}=VALUE)`);
      value = next;
      i++;
    }
    if (value.trim() === "") throw new UsageError(`${spelled} needs a value, got an empty one`);
    if (f.options !== undefined && !f.options.includes(value))
      throw new UsageError(`--${f.key} must be one of ${f.options.join(", ")}, got '${value}'`);
    if (REPEATABLE.has(f.key)) {
      if (value.includes("\n")) throw new UsageError(`${spelled}: a line feed in '${JSON.stringify(value)}'`);
      const at = out.findIndex((o) => o.startsWith(`--${f.key}=`));
      if (at >= 0) {
        out[at] = `${out[at]}\n${value}`;
        continue;
      }
    }
    out.push(`--${f.key}=${value}`);
  }
  return out;
}

/**
 * For a command that checks its own arguments (main.ts already runs
 * checkArgv on every command it dispatches to): the same checks, nothing
 * returned.
 */
export function rejectUnknownFlags(rawArgs: readonly string[], def: ArgsDef): void {
  checkArgv(rawArgs, def);
}
