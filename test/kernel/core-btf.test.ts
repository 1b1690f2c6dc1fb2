/**
 * The cut of the kernel's BTF (src/ebpf/core-btf.ts) against libbpf on its own:
 * the object is loaded twice in this process, once with libbpf resolving every
 * CO-RE relocation in the whole of the kernel's BTF and once in the cut, and
 * every instruction libbpf patched must be patched the same way both times.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ConsolaReporter, LogObject } from "consola";
import { prepareHost } from "../../src/agent/prepare.ts";
import { unavailable } from "../../src/ebpf/availability.ts";
import { cachedKernelTypes } from "../../src/ebpf/core-btf-cache.ts";
import { kernelAtLeast } from "../../src/ebpf/host-facts.ts";
import { BpfObject, DEFAULT_CONFIG } from "../../src/ebpf/object.ts";
import { log } from "../../src/log.ts";
import { EVENTS } from "../../src/wire/events.ts";
import { coreRoots } from "../../src/wire/layout.gen.ts";
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
    const load = (kernelBtf: "cut" | "whole") =>
      libbpfLog(() => BpfObject.load(image, { ...DEFAULT_CONFIG, events, kernelBtf }).close());
    const whole = load("whole");
    const cut = load("cut");
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
      expect(types.funcs.has("bpf_rdonly_cast")).toBe(kernelAtLeast([6, 2]));
      expect(types.total).toBeGreaterThan(10_000);
      expect(types.kept).toBeGreaterThanOrEqual(coreRoots.length);
      expect(types.kept).toBeLessThan(types.total / 10);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
