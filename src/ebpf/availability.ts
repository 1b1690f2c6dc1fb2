/**
 * Event types this kernel cannot report, and why, in one line each: the
 * agent drops them from the default set with a warning, refuses them when
 * named with --events, and doctor lists them.
 */
import { existsSync } from "node:fs";
import { HostError } from "../errors.ts";
import type { EventName } from "../wire/names.ts";

/** Why `name` cannot be captured here, or undefined when it can. */
export function unavailable(name: EventName, hasModules: boolean = existsSync("/proc/modules")): string | undefined {
  if (name === "load_module" && !hasModules)
    return "load_module is unavailable on this kernel: it has no module support (CONFIG_MODULES off: no init_module or finit_module syscalls to trace)";
  return undefined;
}

/**
 * The selected events this kernel can report. Named with --events
 * (`explicit`), an unavailable one is an error; from the default set it is
 * dropped and `warn` says so.
 */
export function availableEvents(
  events: readonly EventName[],
  explicit: boolean,
  warn: (line: string) => void,
  why: (name: EventName) => string | undefined = unavailable,
): EventName[] {
  const out: EventName[] = [];
  for (const e of events) {
    const reason = why(e);
    if (reason === undefined) out.push(e);
    else if (explicit) throw new HostError(reason);
    else warn(reason);
  }
  if (out.length === 0) throw new HostError("no selected event type is available on this kernel");
  return out;
}
