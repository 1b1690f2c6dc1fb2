/**
 * The executable's start-up code out of the agent's resident set.
 *
 * The agent is one 110 MB file: the Bun runtime, its compilers and our code.
 * Starting it (the runtime, the CLI, libbpf's load) maps about 28 MiB of its
 * read-only pages, which stayed counted in the agent's RSS for the whole run,
 * more than its anonymous memory. Once attached, the agent unmaps the
 * executable's read-only, never-written mappings (MADV_DONTNEED): a page
 * still in use comes back at its next touch, a minor fault from the page
 * cache, and the others are left to the page cache, which the kernel reclaims
 * first under pressure. Nothing is lost: a private mapping that was never
 * written holds only the file's bytes. Nor can other bytes come back: the
 * kernel refuses writes to a running executable (ETXTBSY), and a file put in
 * its place is another inode, not the one mapped.
 *
 * Only such mappings: a writable one, or one holding a page written since it
 * was mapped (Anonymous > 0: relocations made read-only afterwards, a
 * debugger's breakpoint, a uprobe), would lose those bytes to the file's.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { madvise } from "../ffi/libc.ts";

const MADV_DONTNEED = 4;

/** A mapping's address range and what of it is resident, from /proc/PID/smaps. */
export interface CodeRange {
  start: number;
  end: number;
  rssKiB: number;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+ *(.*)$/;

/**
 * The mappings of `exe` in `smaps` (the text of /proc/PID/smaps) that are
 * private, not writable, and hold no written page: those MADV_DONTNEED can
 * drop without changing a byte the process sees.
 */
export function droppableRanges(smaps: string, exe: string): CodeRange[] {
  const out: CodeRange[] = [];
  let cur: { range: CodeRange; ok: boolean; anon: number | null } | null = null;
  const finish = () => {
    if (cur?.ok === true && cur.anon === 0 && cur.range.rssKiB > 0) out.push(cur.range);
  };
  for (const line of smaps.split("\n")) {
    const h = HEADER.exec(line);
    if (h !== null) {
      finish();
      const perms = h[3]!;
      const ok = h[4] === exe && perms[0] === "r" && perms[1] === "-" && perms[3] === "p";
      cur = {
        range: { start: Number.parseInt(h[1]!, 16), end: Number.parseInt(h[2]!, 16), rssKiB: 0 },
        ok,
        anon: null,
      };
      continue;
    }
    if (cur === null || !cur.ok) continue;
    const kv = /^(Rss|Anonymous):\s+(\d+) kB$/.exec(line);
    if (kv === null) continue;
    if (kv[1] === "Rss") cur.range.rssKiB = Number(kv[2]);
    else cur.anon = Number(kv[2]);
  }
  finish();
  return out;
}

/**
 * Unmaps this process's droppable executable pages (see droppableRanges);
 * returns the KiB that were resident in them. Best effort: a kernel or
 * sandbox that refuses (or no /proc) leaves everything as it was.
 */
export function dropCodePages(): number {
  let smaps: string;
  let exe: string;
  try {
    exe = readlinkSync("/proc/self/exe");
    smaps = readFileSync("/proc/self/smaps", "latin1");
  } catch {
    return 0;
  }
  let kib = 0;
  for (const r of droppableRanges(smaps, exe))
    if (madvise(r.start, r.end - r.start, MADV_DONTNEED) === 0) kib += r.rssKiB;
  return kib;
}
