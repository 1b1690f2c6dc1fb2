/**
 * The agent drains in bursts and sleeps in between. mimalloc (Bun's allocator)
 * returns freed pages to the kernel ~10 ms after they fall idle, so every burst
 * faults them back in: measured, that was about half of the agent's CPU per
 * event, all of it system time. MIMALLOC_PURGE_DELAY=-1 keeps them; mimalloc
 * reads it only at start, so the process re-executes itself once with it set
 * (execve: same pid, same fds, nothing left behind).
 */
import { execve } from "../ffi/libc.ts";

const KEY = "MIMALLOC_PURGE_DELAY";

/**
 * Whether this invocation restarts: only the commands that stream events pay
 * for it (run is the default), never for help or the version, and only once.
 * `args` are the user's arguments (process.argv after the script).
 */
export function restartsForAllocator(args: readonly string[], env: NodeJS.ProcessEnv): boolean {
  // As in main.ts: a command, if any, is the first argument and not a flag.
  const first = args[0];
  const command = first !== undefined && !first.startsWith("-") ? first : undefined;
  const streams = command === undefined || command === "run" || command === "lab" || command === "bench";
  const informational = ["--help", "-h", "--version", "-V", "-v"].some((f) => args.includes(f));
  return env[KEY] === undefined && process.platform === "linux" && streams && !informational;
}

/**
 * Re-executes this process with MIMALLOC_PURGE_DELAY=-1 when it should (see
 * restartsForAllocator). Call it first thing, before any other work: on
 * success it does not return. On failure the agent just runs with the
 * default setting.
 */
export function restartForAllocator(): void {
  if (!restartsForAllocator(process.argv.slice(2), process.env)) return;
  const compiled = process.argv[1]?.startsWith("/$bunfs/") === true;
  const argv = [process.execPath, ...process.argv.slice(compiled ? 2 : 1)];
  const env = Object.entries({ ...process.env, [KEY]: "-1" }).map(([k, v]) => `${k}=${v ?? ""}`);
  // The running image itself, not process.execPath: the file at that path
  // may have been replaced since this process started (by anyone who can
  // write its directory), and this process runs as root.
  execve("/proc/self/exe", argv, env);
}
