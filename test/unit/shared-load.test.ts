/**
 * How a load's programs are split across threads (src/ebpf/shared-load.ts):
 * every program in exactly one group, no group empty, the heaviest apart.
 */
import { describe, expect, test } from "bun:test";
import { splitByWeight } from "../../src/ebpf/shared-load.ts";

const programs = (weights: number[]) => weights.map((weight, i) => ({ name: `p${i}`, weight }));
const total = (groups: string[][], ps: ReadonlyArray<{ name: string; weight: number }>) =>
  groups.map((g) => g.reduce((s, n) => s + ps.find((p) => p.name === n)!.weight, 0));

describe("splitByWeight", () => {
  test("every program lands in one group, none twice, none left out", () => {
    const ps = programs([7280, 5653, 2164, 1683, 1297, 1253, 1026, 970, 959, 853, 823, 822, 797, 674, 627]);
    const groups = splitByWeight(ps, 2);
    expect(groups.length).toBe(2);
    expect(groups.flat().sort()).toEqual(ps.map((p) => p.name).sort());
  });

  test("the groups come out about even, the two heaviest programs apart", () => {
    const ps = programs([7280, 5653, 2164, 1683, 1297, 1253, 1026, 970, 959, 853, 823, 822, 797, 674, 627]);
    const groups = splitByWeight(ps, 2);
    const [a, b] = total(groups, ps);
    expect(Math.abs(a! - b!)).toBeLessThanOrEqual(627);
    expect(groups.find((g) => g.includes("p0"))).not.toContain("p1");
  });

  test("no more groups than programs, and no empty one", () => {
    expect(splitByWeight(programs([10, 5]), 4)).toEqual([["p0"], ["p1"]]);
    expect(splitByWeight(programs([10]), 4)).toEqual([["p0"]]);
    expect(splitByWeight([], 4)).toEqual([]);
  });

  test("one group when one thread loads", () => {
    expect(splitByWeight(programs([3, 2, 1]), 1)).toEqual([["p0", "p1", "p2"]]);
  });

  test("the same programs split the same way every time (ties by name)", () => {
    const ps = programs([5, 5, 5, 5, 5, 5]);
    expect(splitByWeight(ps, 3)).toEqual(splitByWeight([...ps].reverse(), 3));
  });
});
