/**
 * When JavaScriptCore's compiler threads have gone quiet.
 *
 * The warm-up's last step leaves the JIT compiling what it ran for a while on
 * its own threads ("JITWorker"), and their compilers' code is resident while
 * they do. The agent hands the executable's pages back once more after that
 * (src/run/code-pages.ts), so an idle agent keeps only what it runs idle; it
 * waits here first, since a compile still going would fault its compiler back.
 */
import { readdirSync, readFileSync } from "node:fs";

/** JavaScriptCore's name for its compiler threads (at most 15 bytes, as the kernel keeps them). */
const JIT_THREAD = "JITWorker";
const POLL_MS = 50;
/** Polls in a row with no compiling: one quiet poll happens between two compiles. */
const QUIET_POLLS = 2;
/** CPU a poll may show and still be quiet: a thread's wake-up to find its queue empty. */
const QUIET_NS = 500_000;

/**
 * CPU time in ns of the compiler threads among `taskDir`'s (a process's
 * /proc/PID/task), summed; null when it has none (another runtime's names,
 * or no /proc), which callers take as nothing to wait for. A thread that
 * exits between the listing and the read is skipped.
 */
export function jitCpuNs(taskDir = "/proc/self/task"): number | null {
  let tids: string[];
  try {
    tids = readdirSync(taskDir);
  } catch {
    return null;
  }
  let ns: number | null = null;
  for (const tid of tids) {
    try {
      if (!readFileSync(`${taskDir}/${tid}/comm`, "latin1").startsWith(JIT_THREAD)) continue;
      const run = Number(readFileSync(`${taskDir}/${tid}/schedstat`, "latin1").split(" ")[0]);
      if (Number.isFinite(run)) ns = (ns ?? 0) + run;
    } catch {
      // Exited since the listing.
    }
  }
  return ns;
}

/**
 * Resolves once the compiler threads have used no more than QUIET_NS in each
 * of QUIET_POLLS polls in a row, or after `maxMs` however busy they are (a
 * loaded host's compiles must not hold the agent's warm-up). Returns how many
 * times it read their CPU time.
 */
export async function jitIdle(maxMs: number, read: () => number | null = jitCpuNs): Promise<number> {
  const end = performance.now() + maxMs;
  let last = read();
  let reads = 1;
  if (last === null) return reads;
  for (let quiet = 0; quiet < QUIET_POLLS && performance.now() < end; ) {
    await Bun.sleep(POLL_MS);
    const now = read();
    reads++;
    if (now === null) return reads;
    quiet = now - last <= QUIET_NS ? quiet + 1 : 0;
    last = now;
  }
  return reads;
}
