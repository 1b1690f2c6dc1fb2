/**
 * The checks the agent needs to pass before it touches libbpf, shared with
 * `dual-slot doctor`. Each says what it found and how to fix a failure.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { release } from "node:os";
import { kernelAtLeast } from "../ebpf/host-facts.ts";

export interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
  fix?: string;
}

const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

/** Effective capability mask of this process, from /proc/self/status. */
export function effectiveCaps(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

export const hasCapability = (caps: bigint, bit: number): boolean => (caps & (1n << BigInt(bit))) !== 0n;
const has = hasCapability;

export function checkPrivileges(): Check {
  const caps = effectiveCaps();
  const euid = process.geteuid?.() ?? -1;
  const ok = has(caps, CAP_SYS_ADMIN) || (has(caps, CAP_BPF) && has(caps, CAP_PERFMON));
  return {
    name: "privileges",
    ok,
    required: true,
    detail: ok
      ? `euid ${euid}, CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN present`
      : `euid ${euid} without CAP_BPF+CAP_PERFMON`,
    // Not "setcap the binary": a Bun executable started with BUN_BE_BUN=1 runs
    // arbitrary code, so file capabilities would hand them to every user.
    fix: "run as root (sudo ./dual-slot), or from a process that already holds CAP_BPF and CAP_PERFMON",
  };
}

export const MIN_KERNEL: readonly [number, number] = [5, 19];

export function checkKernel(rel = release()): Check {
  const ok = kernelAtLeast(MIN_KERNEL, rel);
  return {
    name: "kernel",
    ok,
    required: true,
    detail: `${rel}${ok ? "" : `: needs ${MIN_KERNEL.join(".")}+ (bpf_loop, dynptr, ring buffer)`}`,
    fix: `boot a kernel ${MIN_KERNEL.join(".")} or newer`,
  };
}

export function checkBtf(path = "/sys/kernel/btf/vmlinux"): Check {
  let ok = true;
  try {
    accessSync(path, constants.R_OK);
  } catch {
    ok = false;
  }
  return {
    name: "btf",
    ok,
    required: true,
    detail: ok ? `${path} present` : `${path} missing: the kernel was built without CONFIG_DEBUG_INFO_BTF`,
    fix: "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (all major distributions since 2020)",
  };
}

/** The agent's required checks, cheapest and most likely to fail first. */
export function requiredChecks(): Check[] {
  return [checkPrivileges(), checkKernel(), checkBtf()];
}

/** One line for the first failing check, or null when the host can run the agent. */
export function firstFailure(checks: Check[] = requiredChecks()): string | null {
  const bad = checks.find((c) => c.required && !c.ok);
  return bad ? `${bad.name}: ${bad.detail}; fix: ${bad.fix}` : null;
}
