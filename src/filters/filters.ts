/**
 * The kernel-side filters (bpf/filter.bpf.h), from the command line to what
 * the maps hold: uids, cgroup ids, trusted executables as (device, inode) and
 * trusted command lines as bytes. Everything that can fail does so here, at
 * start, as one UsageError line; loading the maps afterwards cannot.
 */
import {
  type BigIntStats,
  closeSync,
  constants,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import { fsMagic } from "../ebpf/host-facts.ts";
import { UsageError } from "../errors.ts";
import { checkTrustedFile, notRootsAlone, UnsafePath } from "../output/trusted-path.ts";
import { ds_wire_const } from "../wire/layout.gen.ts";

/** Entries each filter map holds (DS_FILTER_MAX in bpf/dual_slot.h). */
export const FILTER_MAX = ds_wire_const.DS_FILTER_MAX;
/** The most argv bytes the exec program reads (DS_ARGS_CAP - 1): a longer argv is never compared. */
export const ARGV_MAX_BYTES = 8191;
const CGROUP2_SUPER_MAGIC = 0x63677270;

export interface TrustedExe {
  path: string;
  /** The device as the kernel numbers it (MAJOR << 20 | MINOR): what super_block.s_dev holds. */
  dev: number;
  ino: bigint;
}

export interface TrustedArgv {
  /** As given: the arguments separated by single spaces. */
  text: string;
  /** As the process's memory holds them: each argument followed by its NUL. */
  bytes: Uint8Array;
}

export interface KernelFilters {
  /** Report only these real uids (empty: every uid). */
  uids: number[];
  /** Report only tasks in these cgroup v2 ids (empty: every cgroup). */
  cgroups: bigint[];
  /** Drop the records of tasks running these executables. */
  exes: TrustedExe[];
  /** Drop exec records whose whole argv is one of these. */
  argvs: TrustedArgv[];
}

export const NO_FILTERS: KernelFilters = { uids: [], cgroups: [], exes: [], argvs: [] };

export function hasFilters(f: KernelFilters | undefined): f is KernelFilters {
  return f !== undefined && f.uids.length + f.cgroups.length + f.exes.length + f.argvs.length > 0;
}

/**
 * stat()'s st_dev (glibc's encoding: major in bits 8-19 and 32+, minor in bits
 * 0-7 and 20+) as the kernel's own dev_t (MKDEV: major << 20 | minor), which
 * is what a BPF program reads from super_block.s_dev.
 */
export function kernelDev(stDev: bigint): number {
  const major = ((stDev >> 8n) & 0xfffn) | ((stDev >> 32n) & ~0xfffn);
  const minor = (stDev & 0xffn) | ((stDev >> 12n) & ~0xffn);
  if (major > 0xfffn || minor > 0xfffffn) throw new RangeError(`device ${stDev} has no kernel dev_t encoding`);
  return Number((major << 20n) | minor);
}

/** One value of a list flag: comma-separated, and repeats of the flag (checkArgv joins them with a line feed). */
export function listValues(flag: string, raw: unknown): string[] {
  if (raw === undefined || raw === "") return [];
  const out = String(raw)
    .split(/[,\n]/)
    .map((s) => s.trim());
  if (out.some((s) => s === "")) throw new UsageError(`--${flag}: an empty entry in '${String(raw)}'`);
  return out;
}

/** The lines of a list file: blank lines and lines starting with # skipped. Only a file of root's: it decides what is not seen. */
export function fileLines(flag: string, path: string): string[] {
  let text: string;
  let fd = -1;
  try {
    // The name read is the name checked (no symlink swapped in after); a FIFO put there must not hold the start.
    fd = openSync(checkTrustedFile(path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UsageError(`--${flag}: ${path} is not a regular file`);
    const why = notRootsAlone(st);
    if (why !== null)
      throw new UsageError(`--${flag}: ${path} is ${why}: whoever can write it decides what is not seen`);
    text = readFileSync(fd, "utf8");
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (e instanceof UnsafePath)
      throw new UsageError(`--${flag}: ${e.why}: whoever can change it decides what is not seen`);
    throw new UsageError(`--${flag}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  return text
    .split("\n")
    .map((l) => l.replace(/\r$/, ""))
    .filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"));
}

function atMost<T>(flag: string, items: T[]): T[] {
  if (items.length > FILTER_MAX)
    throw new UsageError(`--${flag}: ${items.length} entries, the kernel-side map holds at most ${FILTER_MAX}`);
  return items;
}

const unique = <T>(xs: T[]): T[] => [...new Set(xs)];

export function parseUids(raw: unknown): number[] {
  const uids = listValues("uid", raw).map((s) => {
    // 4294967295 is (uid_t)-1, "no uid": no task has it.
    if (!/^\d+$/.test(s) || Number(s) > 0xfffffffe) throw new UsageError(`--uid expects numeric uids, got '${s}'`);
    return Number(s);
  });
  return atMost("uid", unique(uids));
}

/** A cgroup v2 id, or a directory of the cgroup v2 hierarchy (its inode number is the id). */
/** The initial cgroup namespace's inode: a namespace of its own sees only part of the hierarchy. */
const INIT_CGROUP_NS = "cgroup:[4026531835]";

/**
 * The cgroup2 mounts that show the whole hierarchy (mount root "/"), from
 * /proc/self/mountinfo (fields 4 and 5; the type follows " - "); none in a
 * cgroup namespace of its own (a container), where groups outside it are not
 * visible.
 */
function wholeCgroup2Mounts(): string[] {
  let text = "";
  try {
    if (readlinkSync("/proc/self/ns/cgroup") !== INIT_CGROUP_NS) return [];
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const [left, right] = line.split(" - ");
    if (left === undefined || right === undefined || right.split(" ")[0] !== "cgroup2") continue;
    const f = left.split(" ");
    // Octal escapes (\040 for a space) as the kernel writes them.
    if (f[3] === "/" && f[4] !== undefined)
      out.push(f[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
  }
  return out;
}

/** Directories looked at, at most, to find cgroups by id: past that, the ids are taken as given. */
const CGROUP_WALK_MAX = 200_000;

/**
 * The ids in `ids` that no cgroup v2 directory has (a group's id is its
 * directory's inode number), in one walk of the hierarchy. Empty when that
 * cannot be told: no whole cgroup2 mount, or more groups than CGROUP_WALK_MAX.
 */
function missingCgroupIds(ids: readonly bigint[]): bigint[] {
  const mounts = wholeCgroup2Mounts();
  if (ids.length === 0 || mounts.length === 0) return [];
  const wanted = new Set(ids);
  let seen = 0;
  for (const root of mounts) {
    const stack = [root];
    while (stack.length > 0 && wanted.size > 0) {
      const dir = stack.pop()!;
      if (++seen > CGROUP_WALK_MAX) return [];
      try {
        wanted.delete(statSync(dir, { bigint: true }).ino);
        for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) stack.push(join(dir, e.name));
      } catch {
        // A group removed while we looked.
      }
    }
  }
  return [...wanted];
}

export function parseCgroups(raw: unknown): bigint[] {
  const given: bigint[] = [];
  const ids = listValues("cgroup", raw).map((s) => {
    if (/^\d+$/.test(s)) {
      given.push(BigInt(s));
      return BigInt(s);
    }
    let st: BigIntStats;
    try {
      st = statSync(s, { bigint: true });
    } catch {
      throw new UsageError(`--cgroup: ${s} does not exist (a cgroup v2 directory, or an id)`);
    }
    if (!st.isDirectory() || fsMagic(s) !== CGROUP2_SUPER_MAGIC)
      throw new UsageError(`--cgroup: ${s} is not a cgroup v2 directory (see the cgroup2 line of /proc/mounts)`);
    return st.ino;
  });
  // An id no group has would drop every record, with nothing said but filtered_kernel.
  const missing = missingCgroupIds(given);
  if (missing.length > 0)
    throw new UsageError(
      `--cgroup: no cgroup v2 group has id ${missing[0]} (a group's id is its directory's inode number)`,
    );
  return atMost("cgroup", unique(ids));
}

/** A trusted executable by what stat() says now: the file a path names when the agent starts. */
export function resolveExe(path: string, flag = "allow-exe"): TrustedExe {
  let st: BigIntStats;
  try {
    // Every name on the way root's alone: a directory or symlink another user can change would let
    // them point the path at another program (a shell, say) by the next start or SIGHUP.
    st = statSync(checkTrustedFile(path), { bigint: true });
  } catch (e) {
    if (e instanceof UnsafePath)
      throw new UsageError(`--${flag}: ${e.why}: whoever can change it decides which program is trusted`);
    throw new UsageError(`--${flag}: ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!st.isFile()) throw new UsageError(`--${flag}: ${path} is not a regular file`);
  // Trusted by inode: whoever can rewrite the file in place runs trusted, unseen.
  const why = notRootsAlone(st);
  if (why !== null) throw new UsageError(`--${flag}: ${path} is ${why}: a trusted executable must be root's alone`);
  return { path, dev: kernelDev(st.dev), ino: st.ino };
}

export function parseExes(raw: unknown, file: unknown): TrustedExe[] {
  const paths = [
    ...listValues("allow-exe", raw),
    ...(file === undefined || file === "" ? [] : fileLines("allow-exe-file", String(file)).map((l) => l.trim())),
  ];
  const exes = paths.map((p) => resolveExe(p));
  // Two paths to one file (a symlink and its target) are one entry.
  const seen = new Set<string>();
  return atMost(
    "allow-exe",
    exes.filter((e) => {
      const k = `${e.dev}:${e.ino}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    }),
  );
}

/** "/usr/bin/python3 -m http.server" as the exec'd process's argv bytes: "/usr/bin/python3\0-m\0http.server\0". */
export function argvBytes(text: string): Uint8Array {
  return new TextEncoder().encode(`${text.split(" ").join("\0")}\0`);
}

export function parseArgvs(raw: unknown, file: unknown, maxArgBytes = ARGV_MAX_BYTES): TrustedArgv[] {
  // Not comma-separated: a command line may hold commas. Repeats of the flag arrive joined by line feeds.
  const lines = [
    ...(raw === undefined || raw === "" ? [] : String(raw).split("\n")),
    ...(file === undefined || file === "" ? [] : fileLines("allow-argv-file", String(file))),
  ];
  const limit = Math.min(maxArgBytes, ARGV_MAX_BYTES);
  const argvs = unique(lines).map((text) => {
    if (text === "") throw new UsageError("--allow-argv: an empty command line");
    const bytes = argvBytes(text);
    if (bytes.length > limit)
      throw new UsageError(
        `--allow-argv: '${text.slice(0, 40)}...' is ${bytes.length} bytes of argv, more than the ${limit} the agent reads (--max-arg-bytes): it could never match`,
      );
    return { text, bytes };
  });
  return atMost("allow-argv", argvs);
}

/** The flags' raw values, as citty hands them over. */
export interface FilterFlags {
  uid?: unknown;
  cgroup?: unknown;
  "allow-exe"?: unknown;
  "allow-exe-file"?: unknown;
  "allow-argv"?: unknown;
  "allow-argv-file"?: unknown;
}

export function parseFilters(a: FilterFlags, maxArgBytes: number): KernelFilters {
  return {
    uids: parseUids(a.uid),
    cgroups: parseCgroups(a.cgroup),
    exes: parseExes(a["allow-exe"], a["allow-exe-file"]),
    argvs: parseArgvs(a["allow-argv"], a["allow-argv-file"], maxArgBytes),
  };
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const U64 = 0xffffffffffffffffn;

/** 64-bit FNV-1a, its offset basis xor `seed`: what argv_allowed() in bpf/filter.bpf.h computes. */
export function fnv1a64(bytes: Uint8Array, seed: bigint): bigint {
  let h = (FNV_OFFSET ^ seed) & U64;
  for (const b of bytes) h = ((h ^ BigInt(b)) * FNV_PRIME) & U64;
  return h;
}

/** A fresh per-run seed: the hashes in the map cannot be precomputed by whoever wants a collision. */
export function randomSeed(): bigint {
  const w = crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(w[1]!) << 32n) | BigInt(w[0]!);
}

/** A short description for the "attached" log line. */
export function describeFilters(f: KernelFilters): string {
  const parts = [
    ...(f.uids.length > 0 ? [`uid=${f.uids.join(",")}`] : []),
    ...(f.cgroups.length > 0 ? [`cgroup=${f.cgroups.join(",")}`] : []),
    ...(f.exes.length > 0 ? [`allow-exe=${f.exes.length}`] : []),
    ...(f.argvs.length > 0 ? [`allow-argv=${f.argvs.length}`] : []),
  ];
  return parts.join(" ");
}
