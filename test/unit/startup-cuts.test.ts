import { afterEach, beforeEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withoutCutCache } from "../../benchmarks/startup.ts";

let root = "";
let dir = "";

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "ds-cuts-"));
  dir = join(root, "dual-slot");
  mkdirSync(dir);
  writeFileSync(join(dir, "core-btf-this"), "this build's cut");
  writeFileSync(join(dir, "core-btf-other"), "another build's cut");
  writeFileSync(join(dir, "unrelated"), "kept in place");
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

test("the first start of a boot finds no cut, and every build's cut is back after it", async () => {
  const seen = await withoutCutCache(async () => {
    const during = readdirSync(dir).sort();
    // The start makes its own build's cut again.
    writeFileSync(join(dir, "core-btf-this"), "made again");
    return during;
  }, dir);
  expect(seen).toEqual(["unrelated"]);
  expect(readdirSync(dir).sort()).toEqual(["core-btf-other", "core-btf-this", "unrelated"]);
  expect(readFileSync(join(dir, "core-btf-other"), "utf8")).toBe("another build's cut");
  expect(readFileSync(join(dir, "core-btf-this"), "utf8")).toBe("this build's cut");
  // Nothing is left beside the directory.
  expect(readdirSync(root)).toEqual(["dual-slot"]);
});

test("a start that fails still puts the cuts back", async () => {
  const failing = withoutCutCache(async () => {
    throw new Error("did not attach");
  }, dir);
  await expect(failing).rejects.toThrow("did not attach");
  expect(readdirSync(dir).sort()).toEqual(["core-btf-other", "core-btf-this", "unrelated"]);
  expect(readdirSync(root)).toEqual(["dual-slot"]);
});

test("with no cache directory the start runs as it is", async () => {
  rmSync(dir, { recursive: true });
  expect(await withoutCutCache(async () => 7, dir)).toBe(7);
  expect(existsSync(dir)).toBe(false);
});

test("a cut that cannot go back is named, and left where it was set aside", async () => {
  const failing = withoutCutCache(async () => {
    // The start took the directory away: nothing can be put back into it.
    rmSync(dir, { recursive: true });
  }, dir);
  await expect(failing).rejects.toThrow(/CO-RE cuts left in .*\.startup-cuts-.*core-btf-/);
  const aside = readdirSync(root).filter((f) => f.startsWith(".startup-cuts-"));
  expect(aside.length).toBe(1);
  expect(readdirSync(join(root, aside[0]!)).sort()).toEqual(["core-btf-other", "core-btf-this"]);
});

test("a start that fails and leaves its cuts stranded reports both", async () => {
  const failing = withoutCutCache(async () => {
    rmSync(dir, { recursive: true });
    throw new Error("did not attach");
  }, dir);
  const e = await failing.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(AggregateError);
  const errors = (e as AggregateError).errors.map((x: unknown) => (x as Error).message);
  expect(errors[0]).toBe("did not attach");
  expect(errors[1]).toMatch(/CO-RE cuts left in /);
});
