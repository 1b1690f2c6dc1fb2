/**
 * `run --output FILE` (src/output/file.ts) on a real filesystem: rotation at
 * the size keeping N files, reopening after logrotate renamed the file away,
 * 0600, and refusal of symlinks, other users' files and directories other
 * users can write.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../../src/errors.ts";
import { FileSink, FileWriter, fileOutputOptions, parseSize, reopenOnHangup } from "../../src/output/file.ts";
import { checkTrustedDirectory, UnsafePath } from "../../src/output/trusted-path.ts";
import { rootTest } from "../helpers/kernel.ts";

const root = mkdtempSync(join(tmpdir(), "dual-slot-output-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
/** A fresh directory, 0700 like mkdtemp's. */
function freshDir(): string {
  const d = join(root, `d${dirs++}`);
  mkdirSync(d, { mode: 0o700 });
  return d;
}

describe("FileWriter", () => {
  test("a file that ends inside a line (a write cut short) gets its newline before the next line", () => {
    const path = join(freshDir(), "events.json");
    writeFileSync(path, '{"event":"exec","cut', { mode: 0o600 });
    const w = new FileWriter({ path, rotateSize: 1 << 20, rotateKeep: 5 });
    w.write(Buffer.from('{"event":"exit"}\n'));
    w.close();
    expect(readFileSync(path, "utf8")).toBe('{"event":"exec","cut\n{"event":"exit"}\n');
    const again = new FileWriter({ path, rotateSize: 1 << 20, rotateKeep: 5 });
    again.write(Buffer.from("x\n"));
    again.close();
    expect(readFileSync(path, "utf8")).toBe('{"event":"exec","cut\n{"event":"exit"}\nx\n');
  });

  test("creates the file 0600 and appends", () => {
    const path = join(freshDir(), "events.json");
    const w = new FileWriter({ path, rotateSize: 1 << 20, rotateKeep: 5 });
    w.write(Buffer.from("a\n"));
    w.write(Buffer.from("b\n"));
    w.close();
    expect(statSync(path).mode & 0o7777).toBe(0o600);
    expect(readFileSync(path, "utf8")).toBe("a\nb\n");
    // Appends to what is there, and takes an existing file back to 0600.
    chmodSync(path, 0o644);
    const again = new FileWriter({ path, rotateSize: 1 << 20, rotateKeep: 5 });
    again.write(Buffer.from("c\n"));
    again.close();
    expect(readFileSync(path, "utf8")).toBe("a\nb\nc\n");
    expect(statSync(path).mode & 0o7777).toBe(0o600);
  });

  test("rotates before a write that would pass the size, keeping N files", () => {
    const dir = freshDir();
    const path = join(dir, "ev");
    const w = new FileWriter({ path, rotateSize: 100, rotateKeep: 3 });
    const line = (i: number) => Buffer.from(`${String(i).padStart(9, "0")}\n`); // 10 bytes
    for (let i = 0; i < 100; i++) w.write(line(i));
    w.close();
    // 1000 bytes in files of 100: 10 files written, 9 rotations, 3 kept besides the current one.
    expect(w.rotations).toBe(9);
    expect(readdirSync(dir).sort()).toEqual(["ev", "ev.1", "ev.2", "ev.3"]);
    const content = (p: string) => readFileSync(p, "utf8");
    expect(content(path)).toBe(Array.from({ length: 10 }, (_, i) => line(90 + i).toString()).join(""));
    expect(content(`${path}.1`)).toBe(Array.from({ length: 10 }, (_, i) => line(80 + i).toString()).join(""));
    expect(content(`${path}.3`).startsWith("000000060\n")).toBe(true);
    for (const f of readdirSync(dir)) {
      expect(statSync(join(dir, f)).size).toBe(100);
      expect(statSync(join(dir, f)).mode & 0o7777).toBe(0o600);
    }
  });

  test("a batch is never split; one larger than the size gets a file of its own", () => {
    const dir = freshDir();
    const path = join(dir, "ev");
    const w = new FileWriter({ path, rotateSize: 100, rotateKeep: 2 });
    w.write(Buffer.alloc(60, "a"));
    w.write(Buffer.alloc(250, "b"));
    w.write(Buffer.alloc(10, "c"));
    w.close();
    expect(readFileSync(`${path}.2`, "utf8")).toBe("a".repeat(60));
    expect(readFileSync(`${path}.1`, "utf8")).toBe("b".repeat(250));
    expect(readFileSync(path, "utf8")).toBe("c".repeat(10));
  });

  test("keep 0 deletes the full file", () => {
    const dir = freshDir();
    const path = join(dir, "ev");
    const w = new FileWriter({ path, rotateSize: 10, rotateKeep: 0 });
    w.write(Buffer.from("0123456789"));
    w.write(Buffer.from("x"));
    w.close();
    expect(readdirSync(dir)).toEqual(["ev"]);
    expect(readFileSync(path, "utf8")).toBe("x");
  });

  test("reopen after the file was renamed away (logrotate's create mode)", () => {
    const dir = freshDir();
    const path = join(dir, "ev");
    const w = new FileWriter({ path, rotateSize: 1 << 20, rotateKeep: 5 });
    w.write(Buffer.from("before\n"));
    renameSync(path, `${path}-20250101`);
    w.write(Buffer.from("still old\n")); // the descriptor follows the renamed file
    w.reopen();
    w.write(Buffer.from("after\n"));
    w.close();
    expect(readFileSync(`${path}-20250101`, "utf8")).toBe("before\nstill old\n");
    expect(readFileSync(path, "utf8")).toBe("after\n");
    expect(statSync(path).mode & 0o7777).toBe(0o600);
  });

  test("SIGHUP reopens through reopenOnHangup", async () => {
    const dir = freshDir();
    const path = join(dir, "ev");
    const w = new FileWriter({ path, rotateSize: 1 << 20, rotateKeep: 5 });
    const remove = reopenOnHangup(w);
    try {
      w.write(Buffer.from("one\n"));
      renameSync(path, `${path}.old`);
      process.kill(process.pid, "SIGHUP");
      for (let i = 0; i < 100 && !existsSync(path); i++) await Bun.sleep(10);
      w.write(Buffer.from("two\n"));
    } finally {
      remove();
      w.close();
    }
    expect(readFileSync(`${path}.old`, "utf8")).toBe("one\n");
    expect(readFileSync(path, "utf8")).toBe("two\n");
  });

  test("a copytruncate is noticed: the size comes from the file", () => {
    const dir = freshDir();
    const path = join(dir, "ev");
    const w = new FileWriter({ path, rotateSize: 20, rotateKeep: 1 });
    w.write(Buffer.from("0123456789012345"));
    writeFileSync(path, ""); // truncated in place
    w.write(Buffer.from("abcdefghij"));
    w.close();
    expect(existsSync(`${path}.1`)).toBe(false);
  });

  test("FileSink: the LineSink shape, one write per flush", () => {
    const path = join(freshDir(), "ev");
    const sink = new FileSink(new FileWriter({ path, rotateSize: 1 << 20, rotateKeep: 1 }));
    sink.push("{}");
    sink.push('{"a":1}');
    expect(readFileSync(path, "utf8")).toBe("");
    sink.flush();
    sink.flush();
    sink.close();
    expect(readFileSync(path, "utf8")).toBe('{}\n{"a":1}\n');
  });
  test("FileSink: a write error names the file, not stdout, and counts the lines dropped", () => {
    const path = join(freshDir(), "ev");
    const writer = new FileWriter({ path, rotateSize: 1 << 20, rotateKeep: 1 });
    const sink = new FileSink(writer);
    writer.write = () => {
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    };
    sink.push("{}");
    expect(() => sink.flush()).toThrow(`cannot write to ${path}: ENOSPC (no space left on device)`);
    expect(sink.dropped).toBe(1);
    writer.close();
  });
  rootTest(
    "FileSink: a disk that fills part way through a write: whole lines written counted, the torn one cut off",
    () => {
      const mnt = freshDir();
      expect(Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", mnt]).exitCode).toBe(0);
      const path = join(mnt, "ev");
      const sink = new FileSink(new FileWriter({ path, rotateSize: 1 << 30, rotateKeep: 0 }));
      try {
        // ~215 KB into 64 KiB: the write stops on a page boundary, inside a line.
        for (let i = 0; i < 1000; i++) sink.push(JSON.stringify({ event: "exec", i, pad: "x".repeat(200) }));
        expect(() => sink.flush()).toThrow(`cannot write to ${path}: ENOSPC (no space left on device)`);
        const text = readFileSync(path, "utf8");
        const lines = text.split("\n").slice(0, -1);
        expect(text.endsWith("\n")).toBe(true);
        expect(lines.length).toBeGreaterThan(0);
        expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual([...Array(lines.length).keys()]);
        expect([sink.written, sink.dropped]).toEqual([lines.length, 1000 - lines.length]);
      } finally {
        sink.writer.close();
        Bun.spawnSync(["umount", mnt]);
      }
    },
  );
  test("FileSink: a drain past 1 MiB is written as it grows, in order, and a never-writing sink never does", () => {
    const path = join(freshDir(), "ev");
    const writer = new FileWriter({ path, rotateSize: 64 << 20, rotateKeep: 1 });
    const silent = new FileSink(writer, 64 << 20, Number.POSITIVE_INFINITY);
    const sink = new FileSink(writer);
    const want: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const line = `{"n":${i},"pad":"${"p".repeat(i % 1000)}"}`;
      want.push(line);
      silent.push(line);
      sink.push(line);
    }
    silent.abandon();
    expect(readFileSync(path).length).toBeGreaterThanOrEqual(1024 * 1024);
    sink.flush();
    sink.close();
    expect(readFileSync(path, "utf8")).toBe(`${want.join("\n")}\n`);
    expect(sink.written).toBe(3000);
  });
});

describe("refusals", () => {
  test("a symlink at the file's name", () => {
    const dir = freshDir();
    const target = join(dir, "target");
    writeFileSync(target, "keep\n", { mode: 0o600 });
    symlinkSync(target, join(dir, "ev"));
    expect(() => new FileWriter({ path: join(dir, "ev"), rotateSize: 1024, rotateKeep: 1 })).toThrow(/symlink/);
    // A dangling one too: following it would create a file wherever it points.
    symlinkSync(join(dir, "nowhere"), join(dir, "dangling"));
    expect(() => new FileWriter({ path: join(dir, "dangling"), rotateSize: 1024, rotateKeep: 1 })).toThrow(UnsafePath);
    expect(existsSync(join(dir, "nowhere"))).toBe(false);
    expect(readFileSync(target, "utf8")).toBe("keep\n");
  });

  test("a world-writable directory, even a sticky one", () => {
    const dir = freshDir();
    chmodSync(dir, 0o777);
    expect(() => new FileWriter({ path: join(dir, "ev"), rotateSize: 1024, rotateKeep: 1 })).toThrow(
      /writable by every user/,
    );
    chmodSync(dir, 0o1777);
    expect(() => checkTrustedDirectory(dir)).toThrow(UnsafePath);
    expect(existsSync(join(dir, "ev"))).toBe(false);
    // Below a world-writable ancestor that is not sticky: that user can swap the directory.
    const inner = join(dir, "inner");
    mkdirSync(inner, { mode: 0o700 });
    chmodSync(dir, 0o777);
    expect(() => checkTrustedDirectory(inner)).toThrow(/writable by every user/);
    // Below a sticky ancestor (as /tmp): fine.
    chmodSync(dir, 0o1777);
    expect(checkTrustedDirectory(inner)).toBe(inner);
  });

  rootTest("a directory writable by a group other than root's", () => {
    const dir = freshDir();
    chownSync(dir, 0, 100);
    chmodSync(dir, 0o770);
    expect(() => checkTrustedDirectory(dir)).toThrow(/writable by group 100/);
    chownSync(dir, 0, 0);
    expect(checkTrustedDirectory(dir)).toBe(dir);
  });

  rootTest("a directory or a file another user owns, a file with other hard links", () => {
    const dir = freshDir();
    chownSync(dir, 65534, 65534);
    expect(() => checkTrustedDirectory(dir)).toThrow(/owned by uid 65534/);
    const mine = freshDir();
    const theirs = join(mine, "ev");
    writeFileSync(theirs, "", { mode: 0o600 });
    chownSync(theirs, 65534, 65534);
    expect(() => new FileWriter({ path: theirs, rotateSize: 1024, rotateKeep: 1 })).toThrow(/owned by uid 65534/);
    const linked = join(mine, "linked");
    writeFileSync(linked, "", { mode: 0o600 });
    linkSync(linked, join(mine, "other-name"));
    expect(() => new FileWriter({ path: linked, rotateSize: 1024, rotateKeep: 1 })).toThrow(/hard links/);
  });

  rootTest("a symlink on the way that another user owns, or sits where another user could replace it", () => {
    const victim = freshDir();
    writeFileSync(join(victim, "ev"), "VICTIM\n", { mode: 0o600 });
    // /tmp-like: sticky and world-writable, so a user can put a link of theirs there.
    const shared = freshDir();
    chmodSync(shared, 0o1777);
    const theirs = join(shared, "theirs");
    symlinkSync(victim, theirs);
    lchownSync(theirs, 65534, 65534);
    expect(() => checkTrustedDirectory(theirs)).toThrow(/theirs is a symlink owned by uid 65534/);
    expect(() => new FileWriter({ path: join(theirs, "ev"), rotateSize: 4, rotateKeep: 1 })).toThrow(UnsafePath);
    // Through a link of root's that leads through theirs: still theirs to re-point.
    const ours = join(shared, "ours");
    symlinkSync(join(theirs, "."), ours);
    expect(() => checkTrustedDirectory(ours)).toThrow(/theirs is a symlink owned by uid 65534/);
    // A link that goes up out of a directory ("..") is followed as the kernel does.
    const up = join(victim, "up");
    symlinkSync(`../${shared.split("/").pop()}/theirs`, up);
    expect(() => checkTrustedDirectory(join(up, "."))).toThrow(/owned by uid 65534/);
    // Root's own link in the sticky directory: nobody else can rename or replace it.
    const fine = join(shared, "fine");
    symlinkSync(victim, fine);
    expect(checkTrustedDirectory(fine)).toBe(victim);
    // Root's link in a directory every user can write, not sticky: it can be swapped after the check.
    chmodSync(shared, 0o777);
    expect(() => checkTrustedDirectory(fine)).toThrow(/writable by every user/);
    expect(readFileSync(join(victim, "ev"), "utf8")).toBe("VICTIM\n");
  });

  rootTest("rotation renames in the directory the file was opened in, not through the link again", () => {
    const a = freshDir();
    const b = freshDir();
    const link = join(freshDir(), "current");
    symlinkSync(a, link);
    const w = new FileWriter({ path: join(link, "ev"), rotateSize: 4, rotateKeep: 1 });
    w.write(Buffer.from("a1\n"));
    rmSync(link);
    symlinkSync(b, link);
    writeFileSync(join(b, "ev"), "B\n", { mode: 0o600 });
    w.write(Buffer.from("a2\n"));
    w.close();
    expect(readFileSync(join(a, "ev.1"), "utf8")).toBe("a1\n");
    expect(existsSync(join(b, "ev.1"))).toBe(false);
  });

  rootTest("a kernel interface that looks like a file (procfs, sysfs): refused before anything is written", () => {
    expect(() => new FileWriter({ path: "/proc/self/ev.json", rotateSize: 1024, rotateKeep: 1 })).toThrow(
      /\/proc\/\d+ is on procfs, not a filesystem for events/,
    );
    expect(() => new FileWriter({ path: "/sys/kernel/ev.json", rotateSize: 1024, rotateKeep: 1 })).toThrow(/on sysfs/);
  });

  test("a path that is not there", () => {
    expect(() => new FileWriter({ path: join(root, "missing", "ev"), rotateSize: 1024, rotateKeep: 1 })).toThrow(
      /ENOENT/,
    );
  });
});

describe("flags", () => {
  test("sizes", () => {
    expect(parseSize("rotate-size", "100M")).toBe(100 * 1024 * 1024);
    expect(parseSize("rotate-size", "512k")).toBe(512 * 1024);
    expect(parseSize("rotate-size", "1G")).toBe(1024 ** 3);
    expect(parseSize("rotate-size", "4096")).toBe(4096);
    for (const bad of ["", "M", "1.5M", "-1M", "12", "1T", "100 M"])
      expect(() => parseSize("rotate-size", bad)).toThrow(UsageError);
  });

  test("options from run's flags", () => {
    expect(fileOutputOptions({})).toBeUndefined();
    expect(fileOutputOptions({ output: "/var/log/x.json" })).toEqual({
      path: "/var/log/x.json",
      rotateSize: 100 * 1024 * 1024,
      rotateKeep: 5,
    });
    expect(fileOutputOptions({ output: "/x", "rotate-size": "1M", "rotate-keep": "0" })).toEqual({
      path: "/x",
      rotateSize: 1024 * 1024,
      rotateKeep: 0,
    });
    expect(() => fileOutputOptions({ "rotate-keep": "3" })).toThrow(/need --output/);
    expect(() => fileOutputOptions({ output: "/x", "rotate-keep": "-1" })).toThrow(UsageError);
    expect(() => fileOutputOptions({ output: "/x", "rotate-keep": "1001" })).toThrow(UsageError);
  });
});

describe("FileSink as run's sink", () => {
  test("counts written and dropped like LineSink; the bound caps one drain", () => {
    const path = join(freshDir(), "ev");
    const sink = new FileSink(new FileWriter({ path, rotateSize: 1 << 20, rotateKeep: 1 }), 10);
    expect(sink.nonBlocking()).toBe(sink);
    expect(sink.push("12345")).toBe(true);
    expect(sink.push("banner", false)).toBe(false); // 6 + 6 > 10, not counted
    expect(sink.push("123")).toBe(true);
    expect(sink.push("x")).toBe(false);
    expect(sink.queuedBytes).toBe(10);
    sink.flush();
    expect(sink.idle).toBe(true);
    expect([sink.written, sink.dropped]).toEqual([2, 1]);
    sink.push("left");
    expect(sink.abandon()).toBe(1);
    expect(sink.dropped).toBe(2);
    sink.restore();
    sink.close();
    expect(readFileSync(path, "utf8")).toBe("12345\n123\n");
  });
});
