/**
 * Every subcommand, by name. Each lives in its own file; add new ones here.
 */
import type { ArgsDef, CommandDef } from "citty";
import run from "./run.ts";
import lab from "./lab.ts";
import mem from "./mem.ts";
import stats from "./stats.ts";
import doctor from "./doctor.ts";
import bench from "./bench.ts";

export const subCommands: Record<string, CommandDef<ArgsDef>> = {
  run: run as CommandDef<ArgsDef>,
  lab: lab as CommandDef<ArgsDef>,
  mem: mem as CommandDef<ArgsDef>,
  stats: stats as CommandDef<ArgsDef>,
  doctor: doctor as CommandDef<ArgsDef>,
  bench: bench as CommandDef<ArgsDef>,
};
