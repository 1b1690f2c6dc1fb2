/**
 * `dual-slot service install|uninstall|status`: the agent as a systemd
 * service. install copies the running executable to /usr/local/sbin
 * (atomically, root-owned 0755), writes the unit (src/service/unit.ts) and,
 * where systemd runs, enables and starts it; uninstall reverses that; status
 * says what is installed and whether it runs. `--root DIR` does the same
 * under another root (image builds, tests), enabling offline with
 * `systemctl --root` and never starting anything.
 */

import type { Stats } from "node:fs";
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { defineCommand } from "citty";
import { checkArgv } from "../cli/args.ts";
import { HostError, UsageError } from "../errors.ts";
import { checkTrustedDirectory } from "../output/trusted-path.ts";
import { checkRunWords, runArgs as runFlags } from "../run/command.ts";
import { BINARY_PATH, DEFAULT_ARGS, LOG_DIR, renderUnit, splitArgs, UNIT_NAME, UNIT_PATH, WANTS_PATH } from "./unit.ts";

/** Where things go and how systemd is reached; tests replace `source` and `systemd`. */
export interface ServiceEnv {
  /** The target root: "/" for this host. */
  root: string;
  /**
   * Whether the root is the running system (root "/"): then systemd is
   * driven live when it runs; otherwise it is enabled offline (--root).
   */
  live: boolean;
  /** The executable to install (the running one: /proc/self/exe). */
  source: string;
  /** Whether systemd manages this host (PID 1); only consulted when live. */
  systemdRunning: boolean;
  /** Runs systemctl; returns its exit code and output. */
  systemctl(args: readonly string[]): { code: number; output: string };
  /** One line of progress or status for the user. */
  say(line: string): void;
}

function isRootFs(root: string): boolean {
  return resolve(root) === "/";
}

function under(env: ServiceEnv, path: string): string {
  return join(resolve(env.root), path);
}

/** sd_booted(3): systemd is the init system when /run/systemd/system is a directory. */
export function systemdIsInit(): boolean {
  try {
    return statSync("/run/systemd/system").isDirectory();
  } catch {
    return false;
  }
}

export function realSystemctl(args: readonly string[]): { code: number; output: string } {
  const bin = Bun.which("systemctl", { PATH: `${process.env.PATH ?? ""}:/usr/bin:/bin:/usr/sbin:/sbin` });
  if (bin === null) throw new HostError("systemctl not found: install systemd, or use --no-start");
  const r = Bun.spawnSync([bin, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  return { code: r.exitCode ?? 1, output: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
}

function mustSystemctl(env: ServiceEnv, args: readonly string[]): void {
  const r = env.systemctl(args);
  if (r.code !== 0)
    throw new HostError(`systemctl ${args.join(" ")} failed (exit ${r.code}): ${r.output.split("\n")[0] ?? ""}`);
}

/** Same bytes? Sizes first: the binary is ~100 MB. */
function sameContent(path: string, content: Uint8Array): boolean {
  try {
    if (statSync(path).size !== content.length) return false;
    return Buffer.compare(readFileSync(path), content) === 0;
  } catch {
    return false;
  }
}

/**
 * Writes `content` to `dest` atomically: a new file beside it, made
 * root-owned with `mode`, synced, then renamed over. A running agent keeps
 * its old image; nobody ever sees half a file. Returns whether anything
 * changed.
 */
function installFile(dest: string, content: Uint8Array, mode: number): boolean {
  const dir = dirname(dest);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  checkTrustedDirectory(dir);
  try {
    const st = lstatSync(dest);
    if (st.isFile() && (st.mode & 0o7777) === mode && st.uid === 0 && sameContent(dest, content)) return false;
  } catch {
    // Not there yet.
  }
  const tmp = join(dir, `.${basename(dest)}.new`);
  rmSync(tmp, { force: true }); // a leftover of an interrupted install; the directory is trusted
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    for (let off = 0; off < content.length; ) off += writeSync(fd, content, off, content.length - off);
    if (process.geteuid?.() === 0) fchownSync(fd, 0, 0);
    fchmodSync(fd, mode);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, dest);
  const dfd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
  return true;
}

/** The executable as bytes, read through its descriptor so a replaced path cannot change what is copied. */
function readExecutable(path: string): Uint8Array {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    const size = statSync(path).size;
    if (size < 1024) throw new HostError(`${path}: ${size} bytes is not the agent's executable`);
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    if (off !== size) throw new HostError(`${path}: short read (${off} of ${size} bytes)`);
    return buf;
  } finally {
    closeSync(fd);
  }
}

export interface InstallOptions {
  /** The run flags, as one string (split like a shell, without expansion). */
  args: string;
  /** Enable and start the service (offline enable under --root). */
  start: boolean;
}

/** Throws a HostError (exit 1) when it could not start the service it was asked to start. */
export function install(env: ServiceEnv, opts: InstallOptions): void {
  const runArgs = splitArgs(opts.args);
  if (runArgs[0] === "run") runArgs.shift();
  // What `run` would refuse must fail the install, not every start (a usage error's exit 2 is never
  // restarted: the agent would stay down). Files the flags name (--allow-exe, a cgroup, credentials) are
  // checked only on this host's own root: under --root they are the image's.
  if (env.live) checkRunWords(runArgs);
  else checkArgv(runArgs, runFlags, "run");
  const unit = renderUnit({ binary: BINARY_PATH, args: runArgs });
  const bin = under(env, BINARY_PATH);
  const unitPath = under(env, UNIT_PATH);
  const binChanged = installFile(bin, readExecutable(env.source), 0o755);
  env.say(`${binChanged ? "installed" : "unchanged"}: ${bin} (root, 0755)`);
  const unitChanged = installFile(unitPath, Buffer.from(unit), 0o644);
  env.say(`${unitChanged ? "wrote" : "unchanged"}: ${unitPath}`);

  if (!env.live) {
    if (opts.start) {
      mustSystemctl(env, [`--root=${resolve(env.root)}`, "enable", UNIT_NAME]);
      env.say(`enabled: ${UNIT_NAME} in ${resolve(env.root)} (starts when that system boots)`);
    }
    return;
  }
  if (!env.systemdRunning) {
    if (!opts.start) return;
    throw new HostError(
      "service not started: systemd is not running on this host (PID 1 is not systemd); the files are in place (--no-start writes only them)",
    );
  }
  mustSystemctl(env, ["daemon-reload"]);
  if (!opts.start) {
    env.say(`not started (--no-start): systemctl enable --now ${UNIT_NAME}`);
    return;
  }
  mustSystemctl(env, ["enable", UNIT_NAME]);
  // A running agent keeps its old image and unit until restarted.
  mustSystemctl(env, [binChanged || unitChanged ? "restart" : "start", UNIT_NAME]);
  env.say(`running: ${UNIT_NAME} (systemctl status ${UNIT_NAME}; journalctl -u ${UNIT_NAME})`);
}

/** Idempotent: what is already gone is reported, not an error. */
export function uninstall(env: ServiceEnv): void {
  const bin = under(env, BINARY_PATH);
  const unitPath = under(env, UNIT_PATH);
  const wants = under(env, WANTS_PATH);
  const unitThere = existsSync(unitPath);
  if (env.live && env.systemdRunning) {
    if (unitThere) {
      // Stop first: the running agent detaches its programs on SIGTERM.
      mustSystemctl(env, ["disable", "--now", UNIT_NAME]);
      env.say(`stopped and disabled: ${UNIT_NAME}`);
    }
  } else if (unitThere || lstatOrNull(wants) !== null) {
    mustSystemctl(env, [`--root=${resolve(env.root)}`, "disable", UNIT_NAME]);
    env.say(`disabled: ${UNIT_NAME}${env.live ? "" : ` in ${resolve(env.root)}`}`);
  }
  for (const path of [unitPath, bin]) {
    const st = lstatOrNull(path);
    if (!st) {
      env.say(`not installed: ${path}`);
      continue;
    }
    if (st.uid !== 0 && process.geteuid?.() === 0)
      throw new HostError(`${path} is owned by uid ${st.uid}, not by the installer: left alone`);
    // As install checks where it writes: a --root tree whose etc or usr is another user's symlink would
    // have this remove the host's own unit and binary.
    checkTrustedDirectory(dirname(path));
    rmSync(path);
    env.say(`removed: ${path}`);
  }
  if (env.live && env.systemdRunning && unitThere) mustSystemctl(env, ["daemon-reload"]);
  if (existsSync(under(env, LOG_DIR))) env.say(`kept: ${under(env, LOG_DIR)} (the agent's events; remove it yourself)`);
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/**
 * Root's processes whose executable is `bin` (any agent started from the
 * installed copy, by systemd or not). Root's only: anyone may run the
 * installed binary (`dual-slot --help`, stopped with SIGSTOP), and status
 * must not then say the agent runs while the service is down.
 */
export function processesOf(bin: string, proc = "/proc"): number[] {
  const pids: number[] = [];
  for (const ent of readdirSync(proc)) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      if (readlinkSync(`${proc}/${ent}/exe`) !== bin) continue;
      // Uid: real, effective, saved, filesystem: the agent needs the effective one to be root.
      const uids = /^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`${proc}/${ent}/status`, "utf8"));
      if (uids?.[2] === "0") pids.push(Number(ent));
    } catch {
      // Gone, or a kernel thread.
    }
  }
  return pids;
}

/** Prints the state; returns what it found (the command exits 1 unless both). */
export function status(env: ServiceEnv): { installed: boolean; running: boolean } {
  const bin = under(env, BINARY_PATH);
  const unitPath = under(env, UNIT_PATH);
  const b = lstatOrNull(bin);
  if (!b) env.say(`binary: ${bin}: not installed`);
  else {
    const same = sameContent(bin, readExecutable(env.source)) ? "same as this executable" : "differs from this one";
    env.say(
      `binary: ${bin}: uid ${b.uid}, mode ${(b.mode & 0o7777).toString(8).padStart(4, "0")}, ${b.size} bytes, ${same}`,
    );
  }
  let installed = b !== null;
  if (!existsSync(unitPath)) {
    env.say(`unit: ${unitPath}: not installed`);
    installed = false;
  } else {
    const exec = /^ExecStart=(.*)$/m.exec(readFileSync(unitPath, "utf8"))?.[1] ?? "(no ExecStart)";
    const enabled = lstatOrNull(under(env, WANTS_PATH))?.isSymbolicLink() === true;
    env.say(`unit: ${unitPath}: ${enabled ? "enabled" : "not enabled"}; ExecStart=${exec}`);
  }
  let running = false;
  if (env.live && env.systemdRunning) {
    const r = env.systemctl(["is-active", UNIT_NAME]);
    running = r.code === 0;
    env.say(`service: ${r.output || "unknown"}`);
  } else if (env.live) {
    env.say("service: systemd is not running on this host");
  }
  const pids = processesOf(bin);
  if (pids.length > 0) running = true;
  env.say(
    pids.length > 0 ? `processes: ${pids.join(" ")}` : "processes: none of root's running from the installed binary",
  );
  return { installed, running };
}

const rootArg = {
  root: {
    type: "string",
    description:
      "work under DIR instead of / (image builds, tests): files only, enabled offline with systemctl --root, never started",
  },
} as const;
const installArgs = {
  ...rootArg,
  args: { type: "string", description: `run flags for the service (default: "${DEFAULT_ARGS}")` },
  start: {
    type: "boolean",
    default: true,
    description: "enable and start the service (--no-start: write the files only)",
  },
} as const;

function envFor(root: unknown): ServiceEnv {
  if (process.geteuid?.() !== 0) throw new HostError("service: run as root (it writes system files)");
  // Compiled, the entry is in Bun's embedded filesystem and /proc/self/exe is
  // the agent; from source it is bun itself, which must not be installed.
  if (process.argv[1]?.startsWith("/$bunfs/") !== true)
    throw new UsageError("service: run the compiled executable (./dual-slot service ...), not the sources");
  const r = typeof root === "string" && root !== "" ? root : "/";
  if (!isRootFs(r) && !existsSync(r)) throw new UsageError(`--root ${r}: no such directory`);
  return {
    root: r,
    live: isRootFs(r),
    source: "/proc/self/exe",
    systemdRunning: systemdIsInit(),
    systemctl: realSystemctl,
    say: (line) => process.stdout.write(`${line}\n`),
  };
}

const installCmd = defineCommand({
  meta: {
    name: "install",
    description: `copy this executable to ${BINARY_PATH}, write ${UNIT_PATH}, enable and start it`,
  },
  args: installArgs,
  run({ args }) {
    install(envFor(args.root), { args: typeof args.args === "string" ? args.args : DEFAULT_ARGS, start: args.start });
  },
});

const uninstallCmd = defineCommand({
  meta: {
    name: "uninstall",
    description: "stop and disable the service, remove the unit and the executable (logs stay)",
  },
  args: rootArg,
  run({ args }) {
    uninstall(envFor(args.root));
  },
});

const statusCmd = defineCommand({
  meta: { name: "status", description: "what is installed, and whether it runs (exit 1 unless both)" },
  args: rootArg,
  run({ args }) {
    const s = status(envFor(args.root));
    if (!s.installed) throw new HostError("service not installed");
    if (!s.running) throw new HostError("service installed but not running");
  },
});

export default defineCommand({
  meta: {
    name: "service",
    description: "run the agent as a systemd service: install, uninstall, status",
  },
  subCommands: { install: installCmd, uninstall: uninstallCmd, status: statusCmd },
  // Reached only without a subcommand: main.ts resolves `service install` to install itself.
  run() {
    throw new UsageError("service expects a command: install, uninstall or status (dual-slot service --help)");
  },
});
