/**
 * Release facts: which glibc an artifact needs, and which machine an ELF file
 * is for. `bun run release` prints them per artifact; the README states them.
 *
 * A glibc version is compared as a semver ("2.17" -> "2.17.0").
 */
import { existsSync, readFileSync } from "node:fs";
import { $ } from "bun";
import { LIBC_SYMBOLS } from "../src/ffi/libc.ts";

export function semverish(v: string): string {
  const p = v.split(".");
  while (p.length < 3) p.push("0");
  return p.slice(0, 3).join(".");
}

export const newestFirst = (a: string, b: string): number => Bun.semver.order(semverish(b), semverish(a));

/** The ELF header's e_machine (62 x86-64, 183 aarch64). */
export function elfMachine(path: string): number {
  const h = readFileSync(path).subarray(0, 20);
  if (h[0] !== 0x7f || h[1] !== 0x45 || h[2] !== 0x4c || h[3] !== 0x46) throw new Error(`${path} is not an ELF file`);
  return h.readUInt16LE(18);
}

/** objdump for a target triple (e.g. x86_64-linux-gnu), or null. */
function objdump(triple: string): string | null {
  return [`${triple}-objdump`, "llvm-objdump", "objdump"].find((t) => Bun.which(t) !== null) ?? null;
}

/** Newest GLIBC_x.y symbol version the file's dynamic symbols need (`objdump -T`). */
export async function glibcFloor(path: string, triple: string): Promise<string> {
  const tool = objdump(triple);
  if (tool === null) return "unknown (no objdump for this architecture)";
  const r = await $`${tool} -T ${path}`.nothrow().quiet();
  if (r.exitCode !== 0) return `unknown (${tool} -T failed)`;
  const versions = [...new Set(r.text().match(/GLIBC_[0-9.]+/g) ?? [])].map((s) => s.slice(6));
  return versions.sort(newestFirst)[0] ?? "none";
}

/**
 * glibc that the libc functions the TypeScript code binds with bun:ffi need:
 * they are looked up with dlsym at run time, so `objdump -T` of the
 * executable cannot see them. They are exactly the keys of src/ffi/libc.ts's
 * LIBC_SYMBOLS, the agent's one libc table. A symbol needs the oldest glibc
 * that has it at all (dlsym takes whatever version the host has); the answer
 * is the newest of those. Returns the floor, the symbols that set it, and the
 * bound symbols `libc` does not export at all.
 */
export async function ffiLibcFloor(
  libc: string,
  triple: string,
): Promise<{ floor: string; by: string[]; missing: string[] }> {
  const names = new Set<string>(Object.keys(LIBC_SYMBOLS));
  const tool = objdump(triple);
  if (tool === null || !existsSync(libc)) return { floor: "unknown", by: [], missing: [] };
  const oldest = new Map<string, string>();
  for (const line of (await $`${tool} -T ${libc}`.quiet()).text().split("\n")) {
    const m = /\(?GLIBC_([0-9.]+)\)?\s+(\S+)$/.exec(line.trim());
    if (!m || !names.has(m[2]!)) continue;
    const prev = oldest.get(m[2]!);
    if (prev === undefined || newestFirst(m[1]!, prev) > 0) oldest.set(m[2]!, m[1]!);
  }
  const floor = [...oldest.values()].sort(newestFirst)[0] ?? "2.0";
  return {
    floor,
    by: [...oldest].filter(([, v]) => v === floor).map(([k]) => k),
    missing: [...names].filter((n) => !oldest.has(n)),
  };
}

/** At most `target`, and a version at all (not "unknown ..."). */
export function atMost(v: string, target: string): boolean {
  return /^[0-9.]+$/.test(v) && Bun.semver.order(semverish(v), semverish(target)) <= 0;
}
