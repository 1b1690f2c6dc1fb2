import { expect, test } from "bun:test";
import { parseFlags } from "../../benchmarks/flags.ts";

test("benchmark flags split at the first '=': a value may hold one; a bare flag is present without a value", () => {
  const f = parseFlags(["--compare-env=MIMALLOC_PURGE_DELAY=-1", "--rounds=3", "--update"]);
  expect(f.get("compare-env")).toBe("MIMALLOC_PURGE_DELAY=-1");
  expect(f.get("rounds")).toBe("3");
  expect(f.has("update")).toBe(true);
  expect(f.get("update")).toBeUndefined();
});
