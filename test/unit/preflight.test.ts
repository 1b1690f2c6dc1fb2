/**
 * Preflight on hosts we cannot boot here: an old kernel, a kernel without
 * BTF. Each must come out as one line that names what is missing and the fix.
 */
import { describe, expect, test } from "bun:test";
import { type Check, checkBtf, checkKernel, firstFailure, MIN_KERNEL } from "../../src/agent/preflight.ts";
import { kernelAtLeast, kernelVersion } from "../../src/ebpf/host-facts.ts";

const ok = (name: string): Check => ({ name, ok: true, required: true, detail: `${name} fine` });

describe("checkKernel", () => {
  test("5.4.0-generic fails, naming 5.19 and the features that need it", () => {
    const c = checkKernel("5.4.0-generic");
    expect(c.ok).toBe(false);
    expect(c.required).toBe(true);
    expect(c.detail).toContain("5.4.0-generic");
    expect(c.detail).toContain("5.19");
    // What is missing, not just a number.
    expect(c.detail).toMatch(/bpf_loop/);
    expect(c.detail).toMatch(/ring buffer/);

    const line = firstFailure([ok("privileges"), c, ok("btf")]);
    expect(line).not.toBeNull();
    expect(line!.split("\n")).toHaveLength(1);
    expect(line).toStartWith("kernel: 5.4.0-generic: needs 5.19+");
    expect(line).toContain("fix: boot a kernel 5.19 or newer");
  });

  test.each([
    ["5.18.19", false],
    ["4.19.0-25-amd64", false],
    ["5.19.0", true],
    ["5.19.0-46-generic", true],
    ["6.1.0-18-amd64", true],
    ["6.18.44-fc-v782", true],
    ["10.0", true],
  ] as const)("%s: ok=%p", (rel, want) => {
    expect(checkKernel(rel).ok).toBe(want);
  });

  test("kernelAtLeast compares major, then minor", () => {
    expect(kernelAtLeast([6, 10], "6.10.0-1-amd64")).toBe(true);
    expect(kernelAtLeast([6, 10], "6.9.12")).toBe(false);
    expect(kernelAtLeast([6, 10], "6.12.117+deb12-rt-amd64")).toBe(true);
    expect(kernelAtLeast([6, 10], "6.1.0-53-cloud-amd64")).toBe(false);
    expect(kernelAtLeast([6, 10], "7.0.1")).toBe(true);
    expect(kernelAtLeast([6, 10], "garbage")).toBe(false);
  });

  test("a release string with no version fails rather than passing", () => {
    expect(kernelVersion("garbage")).toBeNull();
    const c = checkKernel("garbage");
    expect(c.ok).toBe(false);
    expect(c.detail).toContain(MIN_KERNEL.join("."));
  });
});

describe("checkBtf", () => {
  test("a missing BTF file fails, naming CONFIG_DEBUG_INFO_BTF", () => {
    const c = checkBtf("/nonexistent");
    expect(c.ok).toBe(false);
    expect(c.required).toBe(true);
    expect(c.detail).toContain("/nonexistent");
    expect(c.detail).toContain("CONFIG_DEBUG_INFO_BTF");

    const line = firstFailure([ok("privileges"), ok("kernel"), c]);
    expect(line).not.toBeNull();
    expect(line!.split("\n")).toHaveLength(1);
    expect(line).toStartWith("btf: /nonexistent missing: the kernel was built without CONFIG_DEBUG_INFO_BTF");
    expect(line).toContain("fix: use a kernel built with CONFIG_DEBUG_INFO_BTF=y");
  });

  test("a readable file passes", () => {
    const c = checkBtf(import.meta.path);
    expect(c.ok).toBe(true);
    expect(firstFailure([c])).toBeNull();
  });
});

describe("firstFailure", () => {
  test("reports the first failing required check only", () => {
    const line = firstFailure([ok("privileges"), checkKernel("5.4.0"), checkBtf("/nonexistent")]);
    expect(line).toStartWith("kernel:");
    expect(line).not.toContain("CONFIG_DEBUG_INFO_BTF");
  });

  test("ignores failing advice checks", () => {
    expect(firstFailure([{ name: "advice", ok: false, required: false, detail: "meh" }])).toBeNull();
  });
});
