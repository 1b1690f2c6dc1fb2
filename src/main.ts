#!/usr/bin/env bun
/**
 * dual-slot: Elkeid's two-slot per-CPU heap, shown on live exec events.
 *
 * Errors end the program with one line on stderr and a non-zero exit; a stack
 * trace is a bug. citty's own runMain prints stack traces, so this entry point
 * dispatches itself.
 *
 * Order matters, so the rest of the program is loaded only after the colour
 * choice (citty reads NO_COLOR when its module is evaluated).
 */
import type { ArgsDef, CommandDef } from "citty";
import { decideColor } from "./cli/color.ts";

decideColor();

const { runCommand } = await import("citty");
const { buildInfo } = await import("./assets.ts");
const { checkArgv } = await import("./cli/args.ts");
const { commandHelp, helpWidth, rootHelp } = await import("./cli/help.ts");
const { subCommands } = await import("./commands.ts");
const { HostError, UsageError } = await import("./errors.ts");
const { LibbpfError } = await import("./ffi/libbpf.ts");
const { recentLibbpfLog } = await import("./ffi/libbpf-log.ts");
const { writeStderr } = await import("./log.ts");

type Command = CommandDef<ArgsDef>;

const DEFAULT_COMMAND = "run";

function versionLine(): string {
  return `dual-slot ${buildInfo.version} (libbpf ${buildInfo.libbpf === "system" ? "from the system" : `${buildInfo.libbpf} embedded`}, commit ${buildInfo.commit}, ${buildInfo.arch})`;
}

async function resolved<T>(v: T | Promise<T> | (() => T | Promise<T>)): Promise<T> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : await v;
}

async function argsOf(cmd: Command): Promise<ArgsDef> {
  return (cmd.args === undefined ? {} : await resolved(cmd.args)) as ArgsDef;
}

/** Commands by name, each loaded when it is looked up (src/commands.ts). */
type Commands = Record<string, Command | (() => Promise<Command>)>;

async function commandsOf(cmd: Command): Promise<Commands> {
  return (cmd.subCommands === undefined ? {} : await resolved(cmd.subCommands)) as Commands;
}

async function descriptions(cmds: Commands): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, sub] of Object.entries(cmds)) {
    const c = (await resolved(sub)) as Command;
    const meta = c.meta === undefined ? undefined : await resolved(c.meta);
    if (meta?.hidden !== true) out[name] = meta?.description ?? "";
  }
  return out;
}

/**
 * The command the arguments name (`run`, or `service install` for a command
 * with commands of its own) and the arguments left for it. An unknown name
 * is a usage error, not a positional argument.
 */
async function resolveCommand(args: readonly string[]): Promise<{ cmd: Command; path: string[]; rest: string[] }> {
  let cmds: Commands = subCommands;
  let cmd: Command | undefined;
  const path: string[] = [];
  let rest = [...args];
  for (;;) {
    const name = rest[0];
    if (name === undefined || name.startsWith("-")) break;
    // Own names only: "constructor" or "toString" is not a command because every object has one.
    const next = Object.hasOwn(cmds, name) ? cmds[name] : undefined;
    if (next === undefined) {
      if (cmd !== undefined && Object.keys(cmds).length === 0) break; // a positional argument of cmd
      const where = path.length === 0 ? "" : ` of ${path.join(" ")}`;
      throw new UsageError(`unknown command '${name}'${where} (commands: ${Object.keys(cmds).join(", ")})`);
    }
    cmd = (await resolved(next)) as Command;
    path.push(name);
    rest = rest.slice(1);
    cmds = await commandsOf(cmd);
  }
  return { cmd: cmd ?? (await subCommands[DEFAULT_COMMAND]!()), path, rest };
}

async function help(cmd: Command, path: string[]): Promise<string> {
  const width = helpWidth();
  if (path.length === 0) return rootHelp(await descriptions(subCommands), DEFAULT_COMMAND, await argsOf(cmd), width);
  const meta = cmd.meta === undefined ? undefined : await resolved(cmd.meta);
  return commandHelp(
    path.join(" "),
    {
      name: path.join(" "),
      description: meta?.description ?? "",
      args: await argsOf(cmd),
      subCommands: await descriptions(await commandsOf(cmd)),
    },
    width,
  );
}

/**
 * --help and --version, written as the report commands write theirs: a full
 * disk is one line and exit 1, a reader gone a quiet end (process.stdout
 * dropped the error and exited 0 with nothing written).
 */
async function print(text: string): Promise<void> {
  const { untilReaderGone, writeStdout } = await import("./output/stdout.ts");
  await untilReaderGone(() => writeStdout(text));
}

async function dispatch(rawArgs: string[]): Promise<number> {
  if (rawArgs.length === 1 && ["--version", "-V", "-v"].includes(rawArgs[0]!)) {
    await print(`${versionLine()}\n`);
    return 0;
  }
  if (rawArgs[0] === "help") {
    // `help help` is help about help: the overview, which says how to ask.
    const { cmd, path, rest } = await resolveCommand(rawArgs.slice(rawArgs[1] === "help" ? 2 : 1));
    if (rest.length > 0) throw new UsageError(`help takes a command name, got '${rest[0]}'`);
    await print(await help(cmd, path));
    return 0;
  }
  const { cmd, path, rest } = await resolveCommand(rawArgs);
  const beforeDashes = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (beforeDashes.includes("--help") || beforeDashes.includes("-h")) {
    await print(await help(cmd, path));
    return 0;
  }
  const args = checkArgv(rest, await argsOf(cmd), `dual-slot${path.map((p) => ` ${p}`).join("")}`);
  await runCommand(cmd, { rawArgs: args });
  return 0;
}

function fail(e: unknown): number {
  if (e instanceof UsageError) {
    writeStderr(`dual-slot: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof HostError) {
    writeStderr(`dual-slot: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof LibbpfError) {
    // libbpf prefixes its own lines; its closing "failed to load object '<address>'" names nothing useful.
    const hint = recentLibbpfLog()
      .map((l) => l.replace(/^libbpf:\s*/, ""))
      .filter((l) => /error|invalid|denied|failed|unknown|not /i.test(l) && !/^failed to load object /.test(l))
      .at(-1);
    writeStderr(`dual-slot: ${e.message}${hint ? `; libbpf: ${hint}` : ""}\n`);
    return 1;
  }
  const msg = e instanceof Error ? e.message : String(e);
  writeStderr(`dual-slot: ${msg.split("\n")[0]}\n`);
  return 1;
}

let code: number;
try {
  code = await dispatch(process.argv.slice(2));
} catch (e) {
  code = fail(e);
}
process.exit(code);
