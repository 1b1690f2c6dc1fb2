/**
 * `dual-slot doctor`: tells a user why this binary cannot run on their host,
 * before they file a bug. Runs unprivileged too, and never needs the host to
 * pass the checks it is reporting on (so no prepareHost() here).
 */
import { defineCommand } from "citty";
import { HostError } from "../errors.ts";
import type { Libbpf } from "../ffi/libbpf.ts";
import { installLibbpfPrint } from "../ffi/libbpf-log.ts";
import { openLibbpf } from "../ffi/libpath.ts";
import { setVerbose } from "../log.ts";
import { untilReaderGone, writeStdout } from "../output/stdout.ts";
import { doctorChecks } from "./checks.ts";
import { doctorJson, doctorTable, requiredFailures } from "./report.ts";

export const doctorArgs = {
  json: {
    type: "boolean",
    default: false,
    description: "the checklist as one JSON document ({ready, failed, checks[]}); the exit status is the same",
  },
  verbose: {
    type: "boolean",
    default: false,
    description: "debug logs, including libbpf's own messages from the probes",
  },
} as const;

export default defineCommand({
  meta: {
    name: "doctor",
    description:
      "Can this host run dual-slot? Checks privileges, kernel version, BTF, raw tracepoint / per-CPU array / ring buffer support (by loading tiny probes), lockdown, bpffs, perf_event_paranoid, bpf_stats_enabled and the locked-memory limit, with a fix for each failure. Exits 1 when a required check fails.",
  },
  args: doctorArgs,
  async run({ args }) {
    setVerbose(args.verbose === true);
    let l: Libbpf | null = null;
    let libErr: string | null = null;
    try {
      l = openLibbpf();
      installLibbpfPrint();
    } catch (e) {
      libErr = e instanceof Error ? e.message : String(e);
    }
    const checks = doctorChecks(l, libErr);
    // A reader that went away is no reason to hide the verdict: the exit status still says it.
    await untilReaderGone(() => writeStdout(`${args.json ? doctorJson(checks) : doctorTable(checks).join("\n")}\n`));
    const failed = requiredFailures(checks);
    if (failed.length > 0) {
      const first = failed[0]!;
      throw new HostError(
        `doctor: ${failed.length} required check${failed.length === 1 ? "" : "s"} failed; first: ${first.name}: ${first.detail}${first.fix ? `; fix: ${first.fix}` : ""}`,
      );
    }
  },
});
