/**
 * `dual-slot mem`: what the dual-slot heap and its event buffers cost on this
 * host according to the kernel, and what they would cost elsewhere.
 */
import { defineCommand } from "citty";
import { prepareHost } from "../agent/prepare.ts";
import { setVerbose } from "../log.ts";
import { untilReaderGone, writeStdout } from "../output/stdout.ts";
import { memArgs, memOptions } from "./options.ts";
import { measureMemory, memJson, memTable } from "./report.ts";

export default defineCommand({
  meta: {
    name: "mem",
    description:
      "Memory of the dual-slot heap, read from the kernel: loads the object without attaching, reports every map (type, sizes, entries, id, fdinfo memlock) and the perf buffers as mapped, then projects the heap to 2-256 CPUs. The heap costs possible CPUs x slots x 16 KiB.",
  },
  args: memArgs,
  async run({ args }) {
    setVerbose(args.verbose === true);
    const opts = memOptions(args);
    const image = prepareHost();
    const report = measureMemory(image, opts);
    await untilReaderGone(() => writeStdout(`${args.json ? memJson(report) : memTable(report).join("\n")}\n`));
  },
});
