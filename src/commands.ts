/**
 * Every subcommand, by name. Each lives in its own folder (src/<name>/command.ts);
 * add new ones here. Loaded when named: a start evaluates the run command's
 * modules, not the benchmark's, the lab's or the fleet sink's.
 */
import type { ArgsDef, CommandDef } from "citty";

type Command = CommandDef<ArgsDef>;
const load = (m: Promise<{ default: unknown }>): Promise<Command> => m.then((x) => x.default as Command);

export const subCommands: Record<string, () => Promise<Command>> = {
  run: () => load(import("./run/command.ts")),
  lab: () => load(import("./lab/command.ts")),
  mem: () => load(import("./mem/command.ts")),
  stats: () => load(import("./stats/command.ts")),
  doctor: () => load(import("./doctor/command.ts")),
  bench: () => load(import("./bench/command.ts")),
  service: () => load(import("./service/command.ts")),
  sink: () => load(import("./fleet/command.ts")),
};
