/**
 * The kernel-side filters' user-space half (src/filters/filters.ts): flag
 * parsing and its one-line errors, repeated flags through checkArgv and
 * citty, stat()'s device number in the kernel's encoding, and the argv hash
 * (its equality with the BPF side is proven on real execs in
 * test/kernel/filters.test.ts).
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ArgsDef, parseArgs } from "citty";
import { sessionOptions } from "../../src/cli/agent-args.ts";
import { checkArgv } from "../../src/cli/args.ts";
import { UsageError } from "../../src/errors.ts";
import {
  argvBytes,
  FILTER_MAX,
  fileLines,
  fnv1a64,
  kernelDev,
  parseArgvs,
  parseCgroups,
  parseExes,
  parseUids,
} from "../../src/filters/filters.ts";
import { runArgs } from "../../src/run/command.ts";
import { rootTest } from "../helpers/kernel.ts";

const dir = mkdtempSync(join(tmpdir(), "ds-filters-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function usage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    const msg = (e as Error).message;
    expect(msg).not.toContain("\n");
    return msg;
  }
  throw new Error("expected a UsageError");
}

describe("kernelDev: stat's st_dev as the kernel's MKDEV(major, minor)", () => {
  test.each([
    // [st_dev as glibc encodes it, major, minor]
    [0x0801n, 8, 1], // /dev/sda1
    [0xfd00n, 253, 0], // device-mapper
    [0x00000000_00000029n, 0, 41], // an anonymous (tmpfs, overlay) device
    [0x103n, 1, 3],
    // minor 256 and up: the minor's high bits sit above the major's in st_dev
    [(0x12345n & 0xffn) | ((0x12345n & ~0xffn) << 12n) | (259n << 8n), 259, 0x12345],
    [(0xfffn << 8n) | 0xffn | (0xfff00n << 12n), 0xfff, 0xfffff],
  ])("st_dev %p is major %p minor %p", (st, major, minor) => {
    expect(kernelDev(st)).toBe(major * 2 ** 20 + minor);
  });

  test("a device the kernel's 32-bit dev_t cannot hold is refused", () => {
    expect(() => kernelDev((1n << 32n) << 8n)).toThrow(RangeError);
  });

  test("this file system's device, as /proc/self/mountinfo states it", () => {
    const st = statSync(dir, { bigint: true });
    const dev = kernelDev(st.dev);
    const mounts = readFileSync("/proc/self/mountinfo", "utf8");
    const pairs = mounts.split("\n").map((l) => l.split(" ")[2]);
    expect(pairs).toContain(`${dev >>> 20}:${dev & 0xfffff}`);
  });
});

describe("fnv1a64: the argv hash", () => {
  test("with seed 0 it is plain 64-bit FNV-1a (published test vectors)", () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(fnv1a64(enc(""), 0n)).toBe(0xcbf29ce484222325n);
    expect(fnv1a64(enc("a"), 0n)).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64(enc("foobar"), 0n)).toBe(0x85944171f73967e8n);
  });

  test("the seed changes every hash; bytes above 0x7f count as unsigned", () => {
    const b = argvBytes("/bin/true héllo");
    expect(fnv1a64(b, 1n)).not.toBe(fnv1a64(b, 0n));
    expect(fnv1a64(new Uint8Array([0xff]), 0n)).toBe(
      ((0xcbf29ce484222325n ^ 0xffn) * 0x100000001b3n) & (2n ** 64n - 1n),
    );
  });

  test("argv bytes as the process holds them: each argument and its NUL", () => {
    expect([...argvBytes("/usr/bin/python3 -m http.server")]).toEqual([
      ...new TextEncoder().encode("/usr/bin/python3\0-m\0http.server\0"),
    ]);
    // Two spaces: an empty argument between them, as the kernel would hold it.
    expect([...argvBytes("a  b")]).toEqual([97, 0, 0, 98, 0]);
  });
});

describe("parsing", () => {
  test("--uid: numbers, comma-separated and repeated, deduplicated", () => {
    expect(parseUids(undefined)).toEqual([]);
    expect(parseUids("0,1000\n65534,0")).toEqual([0, 1000, 65534]);
    expect(usage(() => parseUids("root"))).toBe("--uid expects numeric uids, got 'root'");
    expect(usage(() => parseUids("4294967295"))).toMatch(/numeric uids/);
    expect(usage(() => parseUids("1,,2"))).toMatch(/an empty entry/);
    const many = Array.from({ length: FILTER_MAX + 1 }, (_, i) => i).join(",");
    expect(usage(() => parseUids(many))).toBe(`--uid: ${FILTER_MAX + 1} entries, the kernel-side map holds at most 64`);
    expect(parseUids(Array.from({ length: FILTER_MAX }, (_, i) => i).join(","))).toHaveLength(FILTER_MAX);
  });

  test("--cgroup: an id must be some group's; a path must exist and be a cgroup v2 directory", () => {
    // The cgroup2 root's id is 1; a group's id is its directory's inode number.
    const mount = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .find((l) => l.split(" - ")[1]?.startsWith("cgroup2 "))
      ?.split(" ")[4];
    if (mount === undefined) throw new Error("no cgroup2 mount on this host");
    const group = join(mount, `ds-filters-${process.pid}`);
    mkdirSync(group);
    try {
      const id = statSync(group, { bigint: true }).ino;
      expect(parseCgroups(`1,${id}`)).toEqual([1n, id]);
    } finally {
      rmdirSync(group);
    }
    for (const id of ["0", "99999999999"])
      expect(usage(() => parseCgroups(id))).toBe(
        `--cgroup: no cgroup v2 group has id ${id} (a group's id is its directory's inode number)`,
      );
    expect(usage(() => parseCgroups(join(dir, "nope")))).toMatch(/does not exist/);
    expect(usage(() => parseCgroups(dir))).toMatch(/is not a cgroup v2 directory/);
  });

  test("--allow-exe: stat()ed now, a symlink and its target are one entry, a missing path is an error", () => {
    const exe = join(dir, "tool");
    writeFileSync(exe, "#!/bin/sh\n");
    symlinkSync(exe, join(dir, "tool-link"));
    const st = statSync(exe, { bigint: true });
    const exes = parseExes(`${exe},${join(dir, "tool-link")}`, undefined);
    expect(exes).toEqual([{ path: exe, dev: kernelDev(st.dev), ino: st.ino }]);
    expect(usage(() => parseExes(join(dir, "missing"), undefined))).toBe(
      `--allow-exe: ${join(dir, "missing")}: ENOENT`,
    );
    expect(usage(() => parseExes(dir, undefined))).toMatch(/is not a regular file/);
  });

  test("a trusted executable or list file that every user can write is refused", () => {
    const exe = join(dir, "shared-tool");
    writeFileSync(exe, "#!/bin/sh\n", { mode: 0o755 });
    chmodSync(exe, 0o777);
    expect(usage(() => parseExes(exe, undefined))).toBe(
      `--allow-exe: ${exe} is writable by every user: a trusted executable must be root's alone`,
    );
    const list = join(dir, "shared-list");
    writeFileSync(list, "/bin/true\n");
    chmodSync(list, 0o666);
    expect(usage(() => fileLines("allow-argv-file", list))).toMatch(/is writable by every user/);
  });

  rootTest("a trusted executable another user owns, or a group other than root's can write, is refused", () => {
    const exe = join(dir, "their-tool");
    writeFileSync(exe, "#!/bin/sh\n", { mode: 0o755 });
    chownSync(exe, 65534, 65534);
    expect(usage(() => parseExes(exe, undefined))).toMatch(/is owned by uid 65534/);
    chownSync(exe, 0, 100);
    chmodSync(exe, 0o775);
    expect(usage(() => parseExes(exe, undefined))).toMatch(/is writable by group 100/);
    chownSync(exe, 0, 0);
    expect(parseExes(exe, undefined)).toHaveLength(1);
  });

  rootTest("a list file or trusted executable reached through another user's directory or symlink is refused", () => {
    // What that user could swap after the check: the file for a symlink to /etc/shells, say (every shell trusted).
    const theirs = join(dir, "their-dir");
    mkdirSync(theirs);
    const list = join(theirs, "allow.txt");
    writeFileSync(list, "/usr/bin/true\n", { mode: 0o644 });
    const exe = join(theirs, "tool");
    writeFileSync(exe, "#!/bin/sh\n", { mode: 0o755 });
    expect(fileLines("allow-exe-file", list)).toEqual(["/usr/bin/true"]);
    chownSync(theirs, 65534, 65534);
    expect(usage(() => fileLines("allow-exe-file", list))).toBe(
      `--allow-exe-file: ${theirs} is owned by uid 65534: whoever can change it decides what is not seen`,
    );
    expect(usage(() => parseExes(exe, undefined))).toBe(
      `--allow-exe: ${theirs} is owned by uid 65534: whoever can change it decides which program is trusted`,
    );
    chownSync(theirs, 0, 0);
    // A symlink of theirs in a directory of root's: they can re-point it.
    const link = join(dir, "their-link");
    symlinkSync(list, link);
    expect(fileLines("allow-exe-file", link)).toEqual(["/usr/bin/true"]);
    lchownSync(link, 65534, 65534);
    expect(usage(() => fileLines("allow-exe-file", link))).toMatch(/their-link is a symlink owned by uid 65534/);
    expect(usage(() => parseExes(link, undefined))).toMatch(/their-link is a symlink owned by uid 65534/);
    rmSync(link);
    rmSync(theirs, { recursive: true });
  });

  test("a list file that is a FIFO is refused at once, not waited on", () => {
    const fifo = join(dir, "fifo-list");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    // In a child with a deadline: an open that waits for a writer would hang this file's tests.
    const mod = join(import.meta.dir, "../../src/filters/filters.ts");
    const script = `const { fileLines } = await import(${JSON.stringify(mod)});
      try { fileLines("allow-argv-file", ${JSON.stringify(fifo)}); } catch (e) { console.log(e.message); }`;
    const r = Bun.spawnSync([process.execPath, "-e", script], { timeout: 10_000 });
    rmSync(fifo);
    expect(r.stdout.toString().trim()).toBe(`--allow-argv-file: ${fifo} is not a regular file`);
  });

  test("list files: one entry a line, blank lines and # comments skipped; unreadable: one line", () => {
    const f = join(dir, "list");
    writeFileSync(f, "# trusted\n/usr/bin/python3 -m http.server\r\n\n  # indented comment\n/bin/a b\n");
    expect(fileLines("allow-argv-file", f)).toEqual(["/usr/bin/python3 -m http.server", "/bin/a b"]);
    expect(usage(() => fileLines("allow-exe-file", join(dir, "absent")))).toBe(
      `--allow-exe-file: cannot read ${join(dir, "absent")}: ENOENT`,
    );
  });

  test("--allow-argv: one whole command line each (commas kept), flag and file together, at most 64", () => {
    const f = join(dir, "argv");
    writeFileSync(f, "/bin/b 2\n");
    expect(parseArgvs("/bin/a x,y\n/bin/a z", f).map((a) => a.text)).toEqual(["/bin/a x,y", "/bin/a z", "/bin/b 2"]);
    const lines = Array.from({ length: FILTER_MAX + 1 }, (_, i) => `/bin/x ${i}`).join("\n");
    expect(usage(() => parseArgvs(lines, undefined))).toMatch(/65 entries/);
    // Longer than --max-arg-bytes reads: it could never match, so it is refused.
    expect(usage(() => parseArgvs(`/bin/x ${"a".repeat(100)}`, undefined, 64))).toMatch(/could never match/);
  });

  test("sessionOptions carries the filters; none given: all empty", () => {
    expect(sessionOptions({}).filters).toEqual({ uids: [], cgroups: [], exes: [], argvs: [] });
    expect(sessionOptions({ uid: "0" }).filters?.uids).toEqual([0]);
    expect(usage(() => sessionOptions({ "allow-exe": join(dir, "gone") }))).toMatch(/--allow-exe/);
  });
});

describe("repeated list flags through checkArgv and citty", () => {
  const def = runArgs as ArgsDef;

  test("repeats join with a line feed, so citty (which keeps the last) sees them all", () => {
    const argv = checkArgv(
      ["--allow-argv", "/bin/a x", "--uid", "0", "--allow-argv=/bin/b y,z", "--uid", "1,2", "--json"],
      def,
    );
    expect(argv).toEqual(["--allow-argv=/bin/a x\n/bin/b y,z", "--uid=0\n1,2", "--json"]);
    const parsed: Record<string, unknown> = parseArgs(argv, def);
    expect(parseArgvs(parsed["allow-argv"], undefined).map((a) => a.text)).toEqual(["/bin/a x", "/bin/b y,z"]);
    expect(parseUids(parsed.uid)).toEqual([0, 1, 2]);
  });

  test("other flags still once only; a line feed inside a list value is refused", () => {
    expect(usage(() => checkArgv(["--count", "1", "--count", "2"], def))).toMatch(/give each flag once/);
    expect(usage(() => checkArgv(["--allow-argv", "a\nb"], def))).toMatch(/a line feed/);
  });
});
