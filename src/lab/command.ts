/**
 * `dual-slot lab`: every slot experiment on this host, one table.
 */
import { defineCommand } from "citty";
import { prepareHost } from "../agent/prepare.ts";
import { agentArgs, sessionOptions } from "../cli/agent-args.ts";
import { intArg } from "../cli/args.ts";
import { log, setVerbose } from "../log.ts";
import { writeStdout } from "../output/stdout.ts";
import { EXPERIMENTS, IRQ_EXECS, type LabRow, labTable, runExperiment } from "./experiments.ts";

const { mode: _m, slots: _s, guard: _g, "inject-clobber": _i, ...shared } = agentArgs;

export default defineCommand({
  meta: {
    name: "lab",
    description:
      "Run every slot experiment here: dual, single (one slot: collision), nest3 with 2 and 3 slots, the guard with and without an injected clobber, and interrupt context (the tick and softirqs taking slots) on Elkeid's shared pair and on a pair per context. Each attaches, execs its own no-op N times and counts corrupt events, guard detections and BPF run time per event.",
  },
  args: {
    execs: { type: "string", default: "200", description: "execs each experiment triggers" },
    "irq-execs": {
      type: "string",
      default: String(IRQ_EXECS),
      description:
        "execs of each interrupt-context experiment: an interrupt lands inside an exec program rarely, so these run longer",
    },
    json: { type: "boolean", default: false, description: "one JSON document with every row" },
    ...shared,
  },
  async run({ args }) {
    setVerbose(args.verbose === true);
    const execs = intArg("execs", args.execs, 1, 1_000_000);
    const irqExecs = intArg("irq-execs", args["irq-execs"], 1, 1_000_000);
    const base = sessionOptions(args);
    const image = prepareHost();
    const rows: LabRow[] = [];
    for (const exp of EXPERIMENTS) {
      const n = exp.irq === true ? irqExecs : execs;
      log.info(`lab: ${exp.name} (${n} execs)`);
      rows.push(await runExperiment(image, base, exp, n));
    }
    await writeStdout(
      args.json
        ? `${JSON.stringify({ execs, transport: base.transport, encoding: base.encoding, rows })}\n`
        : `${labTable(rows)}\n`,
    );
  },
});
