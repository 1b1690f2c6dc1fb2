/**
 * The agent drains in bursts and sleeps in between. mimalloc (Bun's allocator)
 * returns freed pages to the kernel ~10 ms after they fall idle, so every burst
 * faults them back in: measured, that was about half of the agent's CPU per
 * event, all of it system time. MIMALLOC_PURGE_DELAY=-1 keeps them; mimalloc
 * reads it only at start, so the process re-executes itself once with it set
 * (execve: same pid, same fds, nothing left behind).
 */
import { dlopen, ptr } from "bun:ffi";

const KEY = "MIMALLOC_PURGE_DELAY";

function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(`${s}\0`);
}

const compiled = process.argv[1]?.startsWith("/$bunfs/") === true;
// As in main.ts: a command, if any, is the first argument and not a flag.
const first = process.argv[2];
const command = first !== undefined && !first.startsWith("-") ? first : undefined;
// Only the commands that stream events pay for the restart; run is the default.
const streams = command === undefined || command === "run" || command === "lab" || command === "bench";
const informational =
  process.argv.includes("--help") || process.argv.includes("-h") || process.argv.includes("--version");

if (process.env[KEY] === undefined && process.platform === "linux" && streams && !informational) {
  const argv = [process.execPath, ...process.argv.slice(compiled ? 2 : 1)];
  const env = Object.entries({ ...process.env, [KEY]: "-1" }).map(([k, v]) => `${k}=${v ?? ""}`);
  const keep: Uint8Array[] = [];
  const table = (xs: string[]) => {
    const t = new BigUint64Array(xs.length + 1);
    xs.forEach((x, i) => {
      const b = cstr(x);
      keep.push(b);
      t[i] = BigInt(ptr(b));
    });
    return t;
  };
  const { execve } = dlopen("libc.so.6", { execve: { args: ["ptr", "ptr", "ptr"], returns: "i32" } }).symbols;
  const path = cstr(process.execPath);
  // Returns only on failure; then the agent just runs with the default setting.
  execve(ptr(path), ptr(table(argv)), ptr(table(env)));
}
