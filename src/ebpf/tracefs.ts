/**
 * Classic tracepoints (syscalls/sys_enter_*, ...) are attached by id, and
 * libbpf reads that id from tracefs: /sys/kernel/tracing, or
 * /sys/kernel/debug/tracing. Minimal hosts often have neither mounted (this
 * project's CI VM, an initramfs, many container hosts). The id is only needed
 * while attaching, so a missing tracefs is mounted for the attach and detached
 * right after: the run leaves no mount behind.
 */
import { existsSync } from "node:fs";
import { HostError } from "../errors.ts";
import { detachMount, errnoText, mountFs } from "../ffi/libc.ts";

const TRACING = "/sys/kernel/tracing";
const DEBUG_TRACING = "/sys/kernel/debug/tracing";

export function tracefsMounted(): boolean {
  return existsSync(`${TRACING}/events`) || existsSync(`${DEBUG_TRACING}/events`);
}

/** Runs `attach` with tracefs reachable where libbpf looks for it. */
export function withTracefs<T>(attach: () => T): T {
  if (tracefsMounted()) return attach();
  const err = mountFs("tracefs", TRACING, 0);
  if (err < 0) {
    throw new HostError(
      `tracefs is not mounted and mounting it at ${TRACING} failed: ${errnoText(-err)} (syscall tracepoints are found by id there; mount it with \`mount -t tracefs none ${TRACING}\`)`,
    );
  }
  try {
    return attach();
  } finally {
    detachMount(TRACING);
  }
}
