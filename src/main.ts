#!/usr/bin/env bun
/**
 * dual-slot: Elkeid's two-slot per-CPU heap, shown on live exec events.
 *
 * Errors end the program with one line on stderr and a non-zero exit; a stack
 * trace is a bug. citty's own runMain prints stack traces, so this entry point
 * dispatches itself.
 *
 * Order matters, so the rest of the program is loaded only after the two
 * start-up decisions: the allocator restart (before any work that would be
 * thrown away by the execve) and the colour choice (citty reads NO_COLOR when
 * its module is evaluated).
 */
import type { ArgsDef } from "citty";
import { restartForAllocator } from "./cli/allocator.ts";
import { decideColor } from "./cli/color.ts";

restartForAllocator();
decideColor();

const { defineCommand, renderUsage, runCommand, showUsage } = await import("citty");
const { buildInfo } = await import("./assets.ts");
const { rejectUnknownFlags } = await import("./cli/args.ts");
const { subCommands } = await import("./commands.ts");
const { HostError, UsageError } = await import("./errors.ts");
const { LibbpfError } = await import("./ffi/libbpf.ts");
const { recentLibbpfLog } = await import("./ffi/libbpf-log.ts");

function versionLine(): string {
  return `dual-slot ${buildInfo.version} (libbpf ${buildInfo.libbpf === "system" ? "from the system" : `${buildInfo.libbpf} embedded`}, commit ${buildInfo.commit}, ${buildInfo.arch})`;
}

const main = defineCommand({
  meta: {
    name: "dual-slot",
    version: buildInfo.version,
    description:
      "Live exec events built the way Elkeid's HIDS driver builds them: a BPF_MAP_TYPE_PERCPU_ARRAY with two 16 KiB slots as heap past the 512-byte BPF stack. With no command, runs the agent (see `dual-slot run --help`).",
  },
  subCommands,
  default: "run",
});

async function dispatch(rawArgs: string[]): Promise<number> {
  if (rawArgs.length === 1 && (rawArgs[0] === "--version" || rawArgs[0] === "-v")) {
    process.stdout.write(`${versionLine()}\n`);
    return 0;
  }
  const name = rawArgs[0] !== undefined && !rawArgs[0].startsWith("-") ? rawArgs[0] : undefined;
  if (name !== undefined && !(name in subCommands))
    throw new UsageError(`unknown command '${name}' (commands: ${Object.keys(subCommands).join(", ")})`);
  const cmd = subCommands[name ?? "run"]!;
  const rest = name === undefined ? rawArgs : rawArgs.slice(1);
  if (rest.includes("--help") || rest.includes("-h")) {
    if (name === undefined) {
      // Bare `dual-slot --help`: the commands, then the default command's flags.
      await showUsage(main);
      process.stdout.write(`\n${await renderUsage(cmd, main)}\n`);
    } else {
      await showUsage(cmd, main);
    }
    return 0;
  }
  const argsDef = (typeof cmd.args === "function" ? await cmd.args() : cmd.args) ?? {};
  rejectUnknownFlags(rest, argsDef as ArgsDef);
  await runCommand(cmd, { rawArgs: rest });
  return 0;
}

function fail(e: unknown): number {
  if (e instanceof UsageError) {
    process.stderr.write(`dual-slot: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof HostError) {
    process.stderr.write(`dual-slot: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof LibbpfError) {
    const hint = recentLibbpfLog()
      .filter((l) => /error|invalid|denied|failed|unknown|not /i.test(l))
      .at(-1);
    process.stderr.write(`dual-slot: ${e.message}${hint ? `; libbpf: ${hint}` : ""}\n`);
    return 1;
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`dual-slot: ${msg.split("\n")[0]}\n`);
  return 1;
}

let code: number;
try {
  code = await dispatch(process.argv.slice(2));
} catch (e) {
  code = fail(e);
}
process.exit(code);
