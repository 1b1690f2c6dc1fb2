/**
 * The exec storm the benchmarks time: a static no-op copied into a root-only
 * directory and exec'd by path, so every exec's comm is a random name of
 * ours (the agents under test filter on it with --comm).
 */
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";

export interface ExecStorm {
  /** The root-only directory the target lives in (callers may put more there). */
  dir: string;
  /** The target's name, and so its comm. */
  comm: string;
  /** Runs one storm; resolves to its rate in execs per second. */
  run(): Promise<number>;
  /** Removes the directory. */
  remove(): void;
}

/** `tools`: out/workloads/ARCH (storm, noop); `name`: the directory's (/run/dual-slot-NAME-*); `tag`: the comm's start. */
export function execStorm(tools: string, name: string, tag: string, execs: number, workers: number): ExecStorm {
  const dir = mkdtempSync(`/run/dual-slot-${name}-`);
  chmodSync(dir, 0o700);
  const comm = `${tag}${Math.random().toString(36).slice(2, 9)}`;
  const target = join(dir, comm);
  copyFileSync(join(tools, "noop"), target);
  chmodSync(target, 0o700);
  return {
    dir,
    comm,
    async run() {
      const p = Bun.spawn(
        [join(tools, "storm"), "--execs", String(execs), "--workers", String(workers), "--quiet", "--", target],
        { stdout: "pipe" },
      );
      const out = await new Response(p.stdout).text();
      if ((await p.exited) !== 0) throw new Error("storm failed");
      return (JSON.parse(out) as { rate_per_s: number }).rate_per_s;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
