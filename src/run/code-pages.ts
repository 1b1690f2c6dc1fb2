/**
 * The executable's pages out of the agent's resident set.
 *
 * The agent is one 110 MB file: the Bun runtime, its compilers and our code.
 * Starting it (the runtime, the CLI, libbpf's load) maps about 28 MiB of it,
 * and warming the per-event path up maps the JIT's compilers as well; they
 * stayed counted in the agent's RSS for the whole run, more than its own
 * memory. So the agent hands the executable's private mappings back to the
 * kernel (MADV_PAGEOUT) once attached and between the warm-up's steps: a page
 * still in use comes back at its next touch, the others are the kernel's to
 * reclaim. MADV_PAGEOUT is reclaim, not a discard: a page the process wrote
 * (relocations, .data) is kept, or swapped like any other, so no byte the
 * process sees changes, and the writable mapping's never-written pages (4-5
 * MiB of the runtime's data) go too. The mappings are read at random
 * (MADV_RANDOM) from then on: a page faulted back brings no read-ahead
 * neighbours, which took the warm-up's RSS peak over 60 MiB. The cost: the
 * next start of the agent reads its start-up code from disk again (about 25
 * ms more to attached), for 10 MiB less RSS over the whole run.
 *
 * Kernels before 5.4 have no MADV_PAGEOUT: there only the read-only,
 * never-written mappings are unmapped (MADV_DONTNEED), which is safe because
 * such a mapping holds only the file's bytes. Nor can other bytes come back
 * either way: the kernel refuses writes to a running executable (ETXTBSY),
 * and a file put in its place is another inode, not the one mapped.
 */
import { closeSync, fstatSync, openSync, readFileSync, readlinkSync } from "node:fs";
import { fadvise, madvise } from "../ffi/libc.ts";

const MADV_RANDOM = 1;
const MADV_DONTNEED = 4;
const MADV_PAGEOUT = 21;
const EINVAL = 22;
const POSIX_FADV_DONTNEED = 4;

/** A private mapping of the executable, what of it is resident, and whether it may be unmapped outright. */
export interface CodeRange {
  start: number;
  end: number;
  rssKiB: number;
  /** Read-only and never written: MADV_DONTNEED loses nothing (the fallback before 5.4). */
  unmappable: boolean;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+ *(.*)$/;

/**
 * The private mappings of `exe` in `smaps` (the text of /proc/PID/smaps),
 * resident or not (each is marked random-read); `unmappable` for those that
 * are not writable and hold no written page (a missing Anonymous line counts
 * as written).
 */
export function codeRanges(smaps: string, exe: string): CodeRange[] {
  const out: CodeRange[] = [];
  let cur: { range: CodeRange; readOnly: boolean; anon: number | null } | null = null;
  const finish = () => {
    if (cur === null) return;
    cur.range.unmappable = cur.readOnly && cur.anon === 0;
    out.push(cur.range);
  };
  for (const line of smaps.split("\n")) {
    const h = HEADER.exec(line);
    if (h !== null) {
      finish();
      const perms = h[3]!;
      cur =
        h[4] === exe && perms[0] === "r" && perms[3] === "p"
          ? {
              range: {
                start: Number.parseInt(h[1]!, 16),
                end: Number.parseInt(h[2]!, 16),
                rssKiB: 0,
                unmappable: false,
              },
              readOnly: perms[1] === "-",
              anon: null,
            }
          : null;
      continue;
    }
    if (cur === null) continue;
    const kv = /^(Rss|Anonymous):\s+(\d+) kB$/.exec(line);
    if (kv === null) continue;
    if (kv[1] === "Rss") cur.range.rssKiB = Number(kv[2]);
    else cur.anon = Number(kv[2]);
  }
  finish();
  return out;
}

/**
 * The kernel's work goes this much of a mapping or of the file at a time, with
 * `between` after each piece: all of it at once (~70 ms here, longer with the
 * CPUs busy) was a gap in which the event buffers only filled.
 */
const PIECE = 16 * 1024 * 1024;

/**
 * Hands this process's executable pages back to the kernel (see codeRanges);
 * returns the KiB that were resident in the mappings it advised. Best
 * effort: a kernel or sandbox that refuses (or no /proc) leaves everything
 * as it was. `between` runs after each piece of the work (the agent drains).
 */
export function dropCodePages(between: () => void = () => {}): number {
  let smaps: string;
  let exe: string;
  try {
    exe = readlinkSync("/proc/self/exe");
    smaps = readFileSync("/proc/self/smaps", "latin1");
  } catch {
    return 0;
  }
  let kib = 0;
  for (const r of codeRanges(smaps, exe)) {
    madvise(r.start, r.end - r.start, MADV_RANDOM);
    let advised = true;
    for (let at = r.start; at < r.end; at += PIECE) {
      const len = Math.min(PIECE, r.end - at);
      const err = madvise(at, len, MADV_PAGEOUT);
      if (err !== 0 && !(err === -EINVAL && r.unmappable && madvise(at, len, MADV_DONTNEED) === 0)) advised = false;
      between();
    }
    if (advised) kib += r.rssKiB;
  }
  evictFile("/proc/self/exe", between);
  return kib;
}

/**
 * Drops the executable's pages that no process maps from the page cache.
 * Without it the file's cache (the whole 110 MB right after a copy, in large
 * folios) stayed, and a page faulted back brought its cached neighbours with
 * it: 16-20 MiB of the file resident after the warm-up instead of 13. A page
 * read again comes from disk, one at a time (MADV_RANDOM). The page cache is
 * counted in a service's cgroup as well.
 */
function evictFile(path: string, between: () => void): void {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return;
  }
  try {
    const size = fstatSync(fd).size;
    for (let at = 0; at < size; at += PIECE) {
      fadvise(fd, POSIX_FADV_DONTNEED, at, Math.min(PIECE, size - at));
      between();
    }
  } finally {
    closeSync(fd);
  }
}
