/**
 * Paths root may write to or trust: no directory, symlink or file on the way
 * that another user could change, replace or re-point after the check. Used by
 * --output, --spool, service install, the allowlists' files and --allow-exe.
 */
import { lstatSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { HostError } from "../errors.ts";

/** Thrown when the path is not safe for root to write (see checkTrustedDirectory). */
export class UnsafePath extends HostError {
  override name = "UnsafePath";
  /** The reason alone, for a caller that words the refusal itself (a file it reads, not writes). */
  readonly why: string;
  constructor(why: string) {
    super(`refusing to write there: ${why}`);
    this.why = why;
  }
}

const S_ISVTX = 0o1000;

/**
 * Resolves `dir` and refuses it when anyone but root (or this process's user)
 * could change what a name in it points to: the directory itself must be
 * owned by root or us and writable by no one else (group-writable only for
 * group 0), and so must every ancestor, except that a sticky ancestor such as
 * /tmp is fine (nobody else can rename or delete what is ours in it). Every
 * symlink on the way there must be root's or ours, in a directory that passes
 * the same test: one that another user owns, or can replace, could point
 * somewhere else by the next rotation or reopen (fs.protected_symlinks does
 * not cover a path given on the command line). Returns the resolved directory.
 * `leaf` false: `dir` is only the parent of what will be written (a directory
 * of ours in it), so a sticky `dir` such as /tmp is fine too.
 */
export function checkTrustedDirectory(dir: string, leaf = true): string {
  checkLinks(resolve(dir));
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (e) {
    throw new UnsafePath(`${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  checkChain(real, leaf);
  return real;
}

/**
 * An existing file root will trust (an allowlist, a trusted executable): every
 * symlink on the way to it, the file's own name included, must be root's or
 * ours in a directory that passes checkTrustedDirectory's test, and so must
 * the directory the file is really in (a sticky one such as /tmp is fine:
 * nobody else can replace what is ours in it). Whoever could re-point a name
 * on the way could swap the file after the check. Returns the resolved path;
 * the file's own owner and mode are the caller's to check, on what it opens.
 * Throws UnsafePath, or the resolution's own error (ENOENT, say).
 */
export function checkTrustedFile(path: string): string {
  checkLinks(resolve(path));
  const real = realpathSync(path); // ENOENT and the like as they are: the caller says what was missing
  checkChain(dirname(real), false);
  return real;
}

function trustedUid(uid: number): boolean {
  return uid === 0 || uid === (process.geteuid?.() ?? 0);
}

/**
 * Why a file or directory decides too much to take from anyone but root (or
 * this process's user): it is owned by someone else, or others may write it
 * (a group other than root's, or everyone). `stickyOk`: a sticky directory
 * others may write in is fine (as /tmp: nobody else can rename or delete what
 * is ours in it). Null when it is fine.
 */
export function notRootsAlone(
  st: { uid: number | bigint; gid: number | bigint; mode: number | bigint },
  stickyOk = false,
): string | null {
  const uid = Number(st.uid);
  const mode = Number(st.mode);
  if (!trustedUid(uid)) return `owned by uid ${uid}`;
  if (stickyOk && (mode & S_ISVTX) !== 0) return null;
  if ((mode & 0o002) !== 0) return "writable by every user";
  if ((mode & 0o020) !== 0 && Number(st.gid) !== 0) return `writable by group ${Number(st.gid)}`;
  return null;
}

/** A symlink-free directory and its ancestors, as checkTrustedDirectory says; `leaf`: the directory itself may not rely on a sticky bit. */
function checkChain(real: string, leaf: boolean): void {
  for (let d = real; ; leaf = false) {
    const st = statSync(d);
    if (!st.isDirectory()) throw new UnsafePath(`${d} is not a directory`);
    const why = notRootsAlone(st, !leaf);
    if (why !== null) throw new UnsafePath(`${d} is ${why}`);
    if (d === "/") return;
    d = dirname(d);
  }
}

/** The most symlinks one path may go through (the kernel's MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * Walks an absolute path as the kernel does (each symlink replaced by its
 * target, ".." taken after it), checking every symlink met on the way: its
 * owner, and the directory it is in. A part that does not exist ends the walk
 * (realpath reports it).
 */
function checkLinks(path: string): void {
  const pending = path.split("/").reverse();
  let at = "/";
  let links = 0;
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      at = dirname(at);
      continue;
    }
    const next = join(at, part);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(next);
    } catch {
      return;
    }
    if (!st.isSymbolicLink()) {
      at = next;
      continue;
    }
    if (!trustedUid(st.uid)) throw new UnsafePath(`${next} is a symlink owned by uid ${st.uid}`);
    checkChain(at, false);
    if (++links > MAX_LINKS) throw new UnsafePath(`${path}: more than ${MAX_LINKS} symlinks`);
    const target = readlinkSync(next);
    if (target.startsWith("/")) at = "/";
    pending.push(...target.split("/").reverse());
  }
}
