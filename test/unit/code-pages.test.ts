import { describe, expect, test } from "bun:test";
import { readFileSync, readlinkSync } from "node:fs";
import { dropCodePages, droppableRanges } from "../../src/run/code-pages.ts";

const EXE = "/opt/agent/dual-slot";

/** A smaps entry: header line, then the fields droppableRanges reads and one it must skip. */
function entry(range: string, perms: string, path: string, rss: number, anon: number): string {
  return [
    `${range} ${perms} 00000000 fe:01 1234 ${path}`.trimEnd(),
    "Size:               1024 kB",
    `Rss:                ${rss} kB`,
    "Pss:                 100 kB",
    `Anonymous:          ${anon} kB`,
    "VmFlags: rd mr mw me",
  ].join("\n");
}

describe("droppableRanges", () => {
  const smaps = [
    entry("00200000-01a38000", "r--p", EXE, 6424, 0), // read-only data: dropped
    entry("01a40000-06836000", "r-xp", EXE, 22772, 0), // code: dropped
    entry("06836000-0684a000", "rw-p", EXE, 80, 56), // writable: kept
    entry("0684a000-06852000", "r--p", EXE, 32, 12), // relocations made read-only (written): kept
    entry("06852000-07008000", "rw-p", EXE, 4632, 0), // writable, even if never written: kept
    entry("07100000-07200000", "r-xp", EXE, 0, 0), // nothing resident: nothing to do
    entry("07200000-07300000", "r--s", EXE, 64, 0), // shared: kept
    entry("7f0000000000-7f0000100000", "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", 1100, 0), // another file
    entry("7f0000200000-7f0000300000", "r-xp", `${EXE}.old`, 64, 0), // a name that only starts the same
    entry("7f0000400000-7f0000500000", "rw-p", "", 20000, 20000), // anonymous memory
  ].join("\n");

  test("takes the executable's private, read-only, never-written mappings and nothing else", () => {
    expect(droppableRanges(smaps, EXE)).toEqual([
      { start: 0x200000, end: 0x1a38000, rssKiB: 6424 },
      { start: 0x1a40000, end: 0x6836000, rssKiB: 22772 },
    ]);
  });

  test("a replaced executable's mappings still match its /proc/self/exe name", () => {
    const deleted = `${EXE} (deleted)`;
    expect(droppableRanges(entry("00200000-00300000", "r-xp", deleted, 8, 0), deleted)).toEqual([
      { start: 0x200000, end: 0x300000, rssKiB: 8 },
    ]);
  });

  test("a mapping whose Anonymous line is missing is kept", () => {
    const noAnon = entry("00200000-00300000", "r-xp", EXE, 8, 0)
      .split("\n")
      .filter((l) => !l.startsWith("Anonymous"))
      .join("\n");
    expect(droppableRanges(noAnon, EXE)).toEqual([]);
  });
});

describe("dropCodePages", () => {
  /** Resident KiB in this process's droppable mappings of its own executable (bun). */
  function residentCode(): number {
    const ranges = droppableRanges(readFileSync("/proc/self/smaps", "latin1"), readlinkSync("/proc/self/exe"));
    return ranges.reduce((kib, r) => kib + r.rssKiB, 0);
  }

  test("unmaps this process's executable code, and the process runs on", () => {
    const before = residentCode();
    expect(before).toBeGreaterThan(4096);
    const released = dropCodePages();
    const after = residentCode();
    // What ran since (reading smaps, this test) faulted some of it back, a small part.
    expect(released).toBeGreaterThan(before / 2);
    expect(after).toBeLessThan(before / 2);
    expect([3, 1, 2].sort().join(",")).toBe("1,2,3");
  });
});
