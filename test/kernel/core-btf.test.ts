/**
 * The cut of the kernel's BTF (src/ebpf/core-btf.ts) against libbpf on its own:
 * the object is loaded twice in this process, once with libbpf resolving every
 * CO-RE relocation in the whole of the kernel's BTF and once in the cut, and
 * every instruction libbpf patched must be patched the same way both times.
 */
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ConsolaReporter, LogObject } from "consola";
import { prepareHost } from "../../src/agent/prepare.ts";
import { unavailable } from "../../src/ebpf/availability.ts";
import {
  CACHE_DIR,
  cachedKernelTypes,
  cacheKey,
  formatEntry,
  runningKernelTypes,
} from "../../src/ebpf/core-btf-cache.ts";
import { kernelAtLeast } from "../../src/ebpf/host-facts.ts";
import { CUT_REQUEST } from "../../src/ebpf/loader-types.ts";
import { BpfObject, DEFAULT_CONFIG } from "../../src/ebpf/object.ts";
import { log } from "../../src/log.ts";
import { EVENTS } from "../../src/wire/events.ts";
import { coreRoots } from "../../src/wire/layout.gen.ts";
import { BIN, BPFTOOL, spawnProc } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

/** libbpf's log lines (its debug level included) while `body` runs. */
function libbpfLog(body: () => void): string[] {
  const lines: string[] = [];
  const capture: ConsolaReporter = {
    log(o: LogObject) {
      const text = o.args.map(String).join(" ");
      if (text.startsWith("libbpf: ")) lines.push(...text.split("\n"));
    },
  };
  const { level } = log;
  const reporters = log.options.reporters;
  log.setReporters([capture]);
  log.level = 5;
  try {
    body();
  } finally {
    log.level = level;
    log.setReporters(reporters);
  }
  return lines;
}

/** "prog 'ds_exec': relo #3: patched insn #43 (ALU/ALU64) imm 44 -> 44", sorted: what the programs will run. */
function patched(lines: readonly string[]): string[] {
  return lines.filter((l) => / relo #\d+: patched insn #\d+ /.test(l)).sort();
}

describeKernel("CO-RE against the cut of the kernel's BTF", () => {
  const events = EVENTS.map((e) => e.name).filter((e) => unavailable(e) === undefined);
  /** "[114] struct task_struct": the target id libbpf matched task_struct to in each task_struct relocation. */
  const taskIds = (lines: readonly string[]) =>
    lines
      .map((l) => /matching candidate #0 <byte_off> \[(\d+)\] struct task_struct\b/.exec(l)?.[1])
      .filter((x) => x !== undefined);

  test("every relocation comes out as libbpf resolves it in the whole BTF, and the cast ids are the kernel's", () => {
    const image = prepareHost();
    // This process's cut, made now by this code, not one a earlier build left in /run/dual-slot.
    const own = mkdtempSync(path.join(tmpdir(), "ds-core-btf-own-"));
    try {
      runningKernelTypes(CUT_REQUEST, own);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
    const load = (kernelBtf: "cut" | "whole") =>
      libbpfLog(() => BpfObject.load(image, { ...DEFAULT_CONFIG, events, kernelBtf }).close());
    const whole = load("whole");
    const cut = load("cut");
    // libbpf reads the kernel's BTF only when told to resolve in the whole of it: the kfunc's id is the loader's.
    const readsKernelBtf = (lines: readonly string[]) => lines.some((l) => l.includes("loading kernel BTF"));
    expect(readsKernelBtf(whole)).toBe(true);
    expect(readsKernelBtf(cut)).toBe(false);
    const wholePatched = patched(whole);
    // Every event type's programs: over 900 relocations on 6.18.
    expect(wholePatched.length).toBeGreaterThan(500);
    expect(patched(cut)).toEqual(wholePatched);

    // The cut was used: its task_struct is its own small id, not the kernel's.
    const [kernelId] = new Set(taskIds(whole));
    const [cutId] = new Set(taskIds(cut));
    expect(kernelId).toBeDefined();
    expect(cutId).toBeDefined();
    expect(cutId).not.toBe(kernelId);

    // bpf_rdonly_cast takes the kernel's numbering, which the cut does not keep: the ids come from the walk.
    const dir = mkdtempSync(path.join(tmpdir(), "ds-core-btf-"));
    try {
      const types = cachedKernelTypes({ roots: coreRoots, structs: ["task_struct"], funcs: ["bpf_rdonly_cast"] }, dir);
      expect(types.ids.get("task_struct")).toBe(Number(kernelId));
      // The kfunc's id, which the loader writes into the object's calls, as bpftool reads it in the kernel's BTF.
      const dump = Bun.spawnSync([BPFTOOL, "btf", "dump", "file", "/sys/kernel/btf/vmlinux"]).stdout.toString();
      const listed = /^\[(\d+)\] FUNC 'bpf_rdonly_cast' /m.exec(dump)?.[1];
      expect(types.funcs.get("bpf_rdonly_cast")).toBe(listed === undefined ? undefined : Number(listed));
      expect(types.funcs.has("bpf_rdonly_cast")).toBe(kernelAtLeast([6, 2]));
      expect(types.total).toBeGreaterThan(10_000);
      expect(types.kept).toBeGreaterThanOrEqual(coreRoots.length);
      expect(types.kept).toBeLessThan(types.total / 10);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a cut that misleads libbpf costs a second load, not the agent: the executable retries with the whole BTF", async () => {
    // This build's entry in /run/dual-slot, replaced by a cut whose task_struct has no members: every
    // task_struct relocation fails, the verifier refuses the poisoned instructions, the load fails.
    const key = cacheKey(CUT_REQUEST);
    const entry = path.join(CACHE_DIR, `core-btf-${key.slice(0, 16)}`);
    const good = cachedKernelTypes(CUT_REQUEST);
    const saved = existsSync(entry) ? readFileSync(entry) : null;
    const empty = new Uint8Array(24 + 12 + 13);
    const v = new DataView(empty.buffer);
    v.setUint16(0, 0xeb9f, true);
    empty[2] = 1;
    v.setUint32(4, 24, true);
    v.setUint32(12, 12, true); // one type: struct task_struct, size 16, no members
    v.setUint32(16, 12, true);
    v.setUint32(20, 13, true);
    v.setUint32(24, 1, true);
    v.setUint32(28, 4 << 24, true);
    v.setUint32(32, 16, true);
    empty.set(new TextEncoder().encode("\0task_struct\0"), 36);
    writeFileSync(entry, formatEntry({ ...good, btf: empty, unmatched: [], kept: 1 }, key), { mode: 0o600 });
    try {
      const p = spawnProc([BIN, "run", "--json", "--events", "exec", "--duration", "1"]);
      const { stderr, code } = await p.finish(undefined, 60_000);
      expect(stderr).toMatch(/bpf_object__load failed: .*; loading once more with libbpf reading the whole kernel BTF/);
      expect(stderr).toMatch(/INFO attached exec in /);
      expect(code).toBe(0);
    } finally {
      if (saved === null) rmSync(entry, { force: true });
      else writeFileSync(entry, saved, { mode: 0o600 });
    }
  }, 90_000);
});
