/**
 * Decides whether kernel tests can run here, and wraps their suites so that a
 * machine that cannot run them never passes by not running them: under CI
 * (`CI` set) a missing prerequisite registers a failing test naming it;
 * elsewhere the suite is skipped with the reason in the skipped test's name.
 */
import { describe, test } from "bun:test";
import { accessSync, constants, readFileSync } from "node:fs";
import { release } from "node:os";
import { BIN } from "./agent.ts";

/** What a suite needs beyond what every kernel test needs (root, BTF, a recent kernel, ./dual-slot). */
export interface KernelNeeds {
  /** Files that must exist and be executable (e.g. a second build of the binary). */
  executables?: string[];
  /** Commands the suite spawns by bare name, looked up on $PATH as Bun.spawn will. */
  commands?: string[];
  /** CPUs that must be online (the suite pins processes to them). */
  cpus?: number[];
}

/** The agent refuses older kernels (bpf_loop, dynptr, ring buffer). */
const MIN_KERNEL: readonly [number, number] = [5, 19];
const VMLINUX = "/sys/kernel/btf/vmlinux";

function can(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** CPU numbers in a sysfs list such as "0-3,8"; empty when unreadable. */
function onlineCpus(): Set<number> {
  const out = new Set<number>();
  let text = "";
  try {
    text = readFileSync("/sys/devices/system/cpu/online", "utf8").trim();
  } catch {
    return out;
  }
  for (const part of text.split(",")) {
    const [lo, hi] = part.split("-").map(Number);
    if (lo === undefined || !Number.isInteger(lo)) continue;
    for (let c = lo; c <= (hi ?? lo); c++) out.add(c);
  }
  return out;
}

/** Every prerequisite that is missing, one short reason each; empty when the tests can run. */
export function missingKernelPrerequisites(needs: KernelNeeds = {}): string[] {
  const missing: string[] = [];
  const euid = process.geteuid?.();
  if (euid !== 0) missing.push(`not root (euid ${euid ?? "unknown"})`);
  if (!can(VMLINUX, constants.R_OK)) missing.push(`${VMLINUX} not readable (kernel without CONFIG_DEBUG_INFO_BTF?)`);
  const m = /^(\d+)\.(\d+)/.exec(release());
  const [maj, min] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (maj < MIN_KERNEL[0] || (maj === MIN_KERNEL[0] && min < MIN_KERNEL[1]))
    missing.push(`kernel ${release()} older than ${MIN_KERNEL.join(".")}`);
  for (const exe of [BIN, ...(needs.executables ?? [])])
    if (!can(exe, constants.X_OK)) missing.push(`${exe} missing or not executable (run \`bun run build\`)`);
  const absent = (needs.commands ?? []).filter((c) => Bun.which(c) === null);
  if (absent.length > 0) missing.push(`not on $PATH: ${absent.join(", ")} (run .ci/setup)`);
  const online = onlineCpus();
  const offline = (needs.cpus ?? []).filter((c) => !online.has(c));
  if (offline.length > 0) missing.push(`CPU ${offline.join(", ")} not online`);
  return missing;
}

/** CI=true, CI=1, ...: set and not explicitly off. */
/**
 * A unit test that needs root (chown, files of other users): it runs as root,
 * fails under CI without root (it throws), and is skipped, by name, elsewhere.
 */
export function rootTest(name: string, body: () => void | Promise<void>, timeout?: number): void {
  const isRoot = process.geteuid?.() === 0;
  const run = async () => {
    if (!isRoot) throw new Error("needs root (run the tests as root)");
    await body();
  };
  if (isRoot || inCi()) test(name, run, timeout);
  else test.skip(`${name} (needs root)`, run);
}

export function inCi(env: Record<string, string | undefined> = process.env): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v !== undefined && v !== "" && v !== "0" && v !== "false";
}

/**
 * `describe` for a suite that needs the real kernel. When a prerequisite is
 * missing the body is not even collected (it may read the kernel's BTF or
 * create files), and one test stands in for the suite: failing under CI,
 * skipped elsewhere, named with the reason either way.
 */
export function describeKernel(name: string, body: () => void): void;
export function describeKernel(name: string, needs: KernelNeeds, body: () => void): void;
export function describeKernel(name: string, a: KernelNeeds | (() => void), b?: () => void): void {
  const [needs, body] = typeof a === "function" ? [{}, a] : [a, b];
  if (body === undefined) throw new Error("describeKernel: no suite body");
  const missing = missingKernelPrerequisites(needs);
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const reason = missing.join("; ");
  describe(name, () => {
    if (inCi()) {
      test(`cannot run: ${reason}`, () => {
        throw new Error(`kernel suite "${name}" cannot run under CI: ${reason}`);
      });
    } else {
      test.skip(`skipped: ${reason}`, () => {});
    }
  });
}
