/**
 * Every subcommand, by name. Each lives in its own folder (src/<name>/command.ts);
 * add new ones here.
 */
import type { ArgsDef, CommandDef } from "citty";
import bench from "./bench/command.ts";
import doctor from "./doctor/command.ts";
import sink from "./fleet/command.ts";
import lab from "./lab/command.ts";
import mem from "./mem/command.ts";
import run from "./run/command.ts";
import service from "./service/command.ts";
import stats from "./stats/command.ts";

export const subCommands: Record<string, CommandDef<ArgsDef>> = {
  run: run as CommandDef<ArgsDef>,
  lab: lab as CommandDef<ArgsDef>,
  mem: mem as CommandDef<ArgsDef>,
  stats: stats as CommandDef<ArgsDef>,
  doctor: doctor as CommandDef<ArgsDef>,
  bench: bench as CommandDef<ArgsDef>,
  service: service as CommandDef<ArgsDef>,
  sink: sink as CommandDef<ArgsDef>,
};
