/**
 * Keeps the cut of the kernel's BTF (src/ebpf/core-btf.ts) between starts, in
 * /run/dual-slot: reading the kernel's 6 MB of BTF and walking its 125,000
 * types costs ~15 ms of every start, and its answer only changes with the
 * kernel. /run is emptied at every boot; an entry also names the boot it was
 * made in (boot_id), the kernel BTF's size and header, and what was asked, and
 * is used only when all of them match.
 *
 * It is root's: the directory must pass checkTrustedDirectory and the file must
 * be root's alone, or the entry is not used (nor written). Anything wrong with
 * it (missing, stale, damaged, refused) means a fresh cut, never a failed start.
 */
import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { buildInfo } from "../assets.ts";
import { log } from "../log.ts";
import { checkTrustedDirectory, notRootsAlone } from "../output/trusted-path.ts";
import {
  BTF_MAGIC,
  type CoreRoot,
  HEADER_LEN,
  type KernelTypes,
  kernelTypes,
  readAll,
  withKernelBtf,
} from "./core-btf.ts";

export const CACHE_DIR = "/run/dual-slot";
const KERNEL_BTF = "/sys/kernel/btf/vmlinux";
const BOOT_ID = "/proc/sys/kernel/random/boot_id";
/** A cut is ~40 KB; anything far larger is not ours. */
const MAX_ENTRY = 4 << 20;
const FORMAT = 3;

export interface CutRequest {
  readonly roots: readonly CoreRoot[];
  readonly structs: readonly string[];
  readonly funcs: readonly string[];
}

interface EntryHead {
  format: number;
  /** What the entry is valid for: boot, kernel BTF identity, request. */
  key: string;
  ids: Array<[string, number]>;
  funcs: Array<[string, number]>;
  unmatched: string[];
  kept: number;
  total: number;
}

/**
 * What an entry is good for: this boot (boot_id), this kernel BTF (its size and
 * header), this request, and this build (a new executable makes its own cut).
 */
export function cacheKey(
  request: CutRequest,
  btfPath = KERNEL_BTF,
  bootIdPath = BOOT_ID,
  build = `${buildInfo.version} ${buildInfo.commit}`,
): string {
  const boot = readFileSync(bootIdPath, "utf8").trim();
  const fd = openSync(btfPath, "r");
  let head: Uint8Array;
  let size: number;
  try {
    size = fstatSync(fd).size;
    head = readAll(fd, HEADER_LEN);
  } finally {
    closeSync(fd);
  }
  return new Bun.CryptoHasher("sha256")
    .update(JSON.stringify([FORMAT, build, boot, size, Buffer.from(head).toString("hex"), request]))
    .digest("hex");
}

function entryPath(dir: string, key: string): string {
  return `${dir}/core-btf-${key.slice(0, 16)}`;
}

/** The cached cut for `key`, or null (no entry, another request's, damaged, or not root's alone). */
export function readCut(key: string, dir = CACHE_DIR): KernelTypes | null {
  let fd: number;
  try {
    checkTrustedDirectory(dir);
    fd = openSync(entryPath(dir, key), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    const unsafe = notRootsAlone(st);
    if (!st.isFile() || unsafe !== null || st.size > MAX_ENTRY) {
      log.debug(`core BTF cache: ${entryPath(dir, key)} not used (${unsafe ?? "not a small regular file"})`);
      return null;
    }
    return parseEntry(readAll(fd, st.size), key);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** An entry: one line of JSON (EntryHead), then the raw BTF. Null unless it is for `key` and whole. */
export function parseEntry(bytes: Uint8Array, key: string): KernelTypes | null {
  const nl = bytes.indexOf(0x0a);
  if (nl < 0) return null;
  let head: EntryHead;
  try {
    head = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, nl))) as EntryHead;
  } catch {
    return null;
  }
  if (
    head.format !== FORMAT ||
    head.key !== key ||
    !Array.isArray(head.ids) ||
    !Array.isArray(head.funcs) ||
    !Array.isArray(head.unmatched)
  )
    return null;
  const btf = bytes.slice(nl + 1);
  if (btf.length < HEADER_LEN) return null;
  const v = new DataView(btf.buffer);
  const end = v.getUint32(4, true) + v.getUint32(16, true) + v.getUint32(20, true);
  if (v.getUint16(0, true) !== BTF_MAGIC || end !== btf.length) return null;
  const ids = namedIds(head.ids);
  const funcs = namedIds(head.funcs);
  if (ids === null || funcs === null || !head.unmatched.every((f) => typeof f === "string")) return null;
  return { btf, ids, funcs, unmatched: head.unmatched, kept: head.kept, total: head.total };
}

/** [name, id] pairs as a map; null unless each is a name and a positive id. */
function namedIds(pairs: unknown[]): Map<string, number> | null {
  const ids = new Map<string, number>();
  for (const e of pairs) {
    if (!Array.isArray(e) || typeof e[0] !== "string" || !Number.isInteger(e[1]) || e[1] <= 0) return null;
    ids.set(e[0], e[1]);
  }
  return ids;
}

export function formatEntry(types: KernelTypes, key: string): Uint8Array {
  const head: EntryHead = {
    format: FORMAT,
    key,
    ids: [...types.ids],
    funcs: [...types.funcs],
    unmatched: [...types.unmatched],
    kept: types.kept,
    total: types.total,
  };
  const line = new TextEncoder().encode(`${JSON.stringify(head)}\n`);
  const out = new Uint8Array(line.length + types.btf.length);
  out.set(line);
  out.set(types.btf, line.length);
  return out;
}

/** Stores the cut for `key`: written beside, then renamed into place. A failure only costs the next start. */
export function writeCut(types: KernelTypes, key: string, dir = CACHE_DIR): void {
  const path = entryPath(dir, key);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { mode: 0o700, recursive: true });
    checkTrustedDirectory(dir);
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      const bytes = formatEntry(types, key);
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    log.debug(`core BTF cache: not kept in ${dir} (${e instanceof Error ? e.message : String(e)})`);
    try {
      unlinkSync(tmp);
    } catch {
      // Never created.
    }
  }
}

/**
 * The running kernel's cut for `request`: this boot's from `dir` when it is
 * there, else made and kept. Throws only when the kernel's BTF cannot be read
 * or parsed.
 */
export function cachedKernelTypes(request: CutRequest, dir = CACHE_DIR): KernelTypes {
  let key: string | null = null;
  try {
    key = cacheKey(request);
  } catch (e) {
    log.debug(`core BTF cache: no key (${e instanceof Error ? e.message : String(e)})`);
  }
  const hit = key === null ? null : readCut(key, dir);
  if (hit !== null) return hit;
  const made = withKernelBtf((raw) => kernelTypes(raw, request.roots, request.structs, request.funcs));
  if (key !== null) writeCut(made, key, dir);
  return made;
}

let running: KernelTypes | undefined;

/**
 * cachedKernelTypes, once per process: the benchmark and the lab load the
 * object many times. The first call's `dir` is the one used (a test's own).
 */
export function runningKernelTypes(request: CutRequest, dir = CACHE_DIR): KernelTypes {
  running ??= cachedKernelTypes(request, dir);
  return running;
}
