/**
 * The sink's spool (src/fleet/spool.ts) on a real filesystem: order kept
 * across appends and a restart, the cap dropping the oldest (never the batch
 * being sent) and counting its rows, 0700/0600, and refusal of a symlink or
 * another user's directory.
 */
import { afterAll, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../../src/errors.ts";
import { Spool } from "../../src/fleet/spool.ts";
import { rootTest } from "../helpers/kernel.ts";

const root = mkdtempSync(join(tmpdir(), "dual-slot-spool-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `s${++n}`);

const batch = (tag: string, size = 100) => Buffer.from(tag.padEnd(size, "."));

test("batches come back in the order they were appended, also after a restart", async () => {
  const dir = fresh();
  const s = new Spool(dir, 1 << 20, () => {});
  await Promise.all(["a", "b", "c"].map((t, i) => s.append(batch(t), i + 1)));
  expect(s.batches).toBe(3);
  expect(s.rows).toBe(6);
  const first = s.take()!;
  expect((await s.read(first)).toString()[0]).toBe("a");
  await s.done(first);
  // A new agent on the same directory continues where this one stopped.
  s.close();
  const again = new Spool(dir, 1 << 20, () => {});
  expect(again.batches).toBe(2);
  await again.append(batch("d"), 4);
  const seen: string[] = [];
  for (let e = again.take(); e !== null; e = again.take()) {
    seen.push((await again.read(e)).toString()[0]!);
    await again.done(e);
  }
  expect(seen).toEqual(["b", "c", "d"]);
  expect(readdirSync(dir)).toEqual([]);
});

test("one agent per spool: a second is refused in one line while the first holds it, and takes it once let go", async () => {
  const dir = fresh();
  const a = new Spool(dir, 1 << 20, () => {});
  await a.append(batch("a"), 1);
  expect(() => new Spool(dir, 1 << 20, () => {})).toThrow(
    `--spool ${dir}: another agent is using it: give each agent a spool of its own`,
  );
  // Another process (another agent) is refused too: the lock is the kernel's, not this module's.
  const mod = join(import.meta.dir, "../../src/fleet/spool.ts");
  const other = Bun.spawnSync([
    process.execPath,
    "-e",
    `const { Spool } = await import(${JSON.stringify(mod)});
     try { new Spool(${JSON.stringify(dir)}, 1024, () => {}); console.log("taken"); } catch (e) { console.log(e.message); }`,
  ]);
  expect(other.stdout.toString().trim()).toBe(
    `--spool ${dir}: another agent is using it: give each agent a spool of its own`,
  );
  a.close();
  const b = new Spool(dir, 1 << 20, () => {});
  expect(b.batches).toBe(1);
  b.close();
});

test("past the cap the oldest batches are deleted and their rows counted", async () => {
  const drops: Array<[number, number]> = [];
  const s = new Spool(fresh(), 350, (rows, batches) => drops.push([rows, batches]));
  for (let i = 0; i < 6; i++) await s.append(batch(String(i)), 10 + i);
  // 100 bytes each: 3 fit; 0, 1 and 2 went, in that order.
  expect(s.batches).toBe(3);
  expect(s.bytes).toBe(300);
  expect(drops.reduce((a, [r]) => a + r, 0)).toBe(10 + 11 + 12);
  expect(drops.reduce((a, [, b]) => a + b, 0)).toBe(3);
  const e = s.take()!;
  expect((await s.read(e)).toString()[0]).toBe("3");
});

test("the batch being sent is never the one the cap deletes", async () => {
  const dropped: number[] = [];
  const s = new Spool(fresh(), 250, (rows) => dropped.push(rows));
  await s.append(batch("a"), 1);
  await s.append(batch("b"), 2);
  const busy = s.take()!;
  await s.append(batch("c"), 3);
  expect(dropped).toEqual([2]); // b, not a
  expect((await s.read(busy)).toString()[0]).toBe("a");
  await s.done(busy);
  expect((await s.read(s.take()!)).toString()[0]).toBe("c");
});

test("a single batch larger than the cap is kept (the newest says the most)", async () => {
  const dropped: number[] = [];
  const s = new Spool(fresh(), 50, (rows) => dropped.push(rows));
  await s.append(batch("a"), 1);
  await s.append(batch("b"), 2);
  expect(s.batches).toBe(1);
  expect(dropped).toEqual([1]);
});

test("root's alone: the directory 0700, each batch 0600, a looser directory tightened", async () => {
  const dir = fresh();
  mkdirSync(dir, { mode: 0o755 });
  const s = new Spool(dir, 1 << 20, () => {});
  await s.append(batch("a"), 1);
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
});

test("a symlink or a file is refused with one line", () => {
  const target = fresh();
  mkdirSync(target, { mode: 0o700 });
  const link = fresh();
  symlinkSync(target, link);
  expect(() => new Spool(link, 1024, () => {})).toThrow(UsageError);
  expect(() => new Spool(link, 1024, () => {})).toThrow(/symlink/);
  const file = fresh();
  writeFileSync(file, "");
  expect(() => new Spool(file, 1024, () => {})).toThrow(/not a directory/);
});

rootTest("another user's directory is refused with one line", () => {
  const theirs = fresh();
  mkdirSync(theirs, { mode: 0o700 });
  chownSync(theirs, 65534, 65534);
  expect(() => new Spool(theirs, 1024, () => {})).toThrow(/owned by uid 65534/);
});

rootTest("a spool reached through another user's symlink is refused, and nothing is created or chmodded there", () => {
  const victim = fresh();
  mkdirSync(join(victim, "spool"), { recursive: true, mode: 0o755 });
  chmodSync(join(victim, "spool"), 0o755);
  const shared = fresh();
  mkdirSync(shared, { mode: 0o1777 });
  chmodSync(shared, 0o1777);
  const theirs = join(shared, "theirs");
  symlinkSync(victim, theirs);
  lchownSync(theirs, 65534, 65534);
  expect(() => new Spool(join(theirs, "spool"), 1024, () => {})).toThrow(/symlink owned by uid 65534/);
  expect(() => new Spool(join(theirs, "new"), 1024, () => {})).toThrow(UsageError);
  expect(statSync(join(victim, "spool")).mode & 0o777).toBe(0o755);
  expect(readdirSync(victim)).toEqual(["spool"]);
  // The shared directory itself (as --spool /tmp) is refused, and left as it was.
  expect(() => new Spool(shared, 1024, () => {})).toThrow(/a directory others can write in \(mode 1777\)/);
  expect(statSync(shared).mode & 0o7777).toBe(0o1777);
  // In a sticky directory of root's own (as /tmp): fine.
  const spool = new Spool(join(shared, "mine"), 1024, () => {});
  expect(spool.batches).toBe(0);
});

test("files that are not batches are left alone; a half-written batch is removed", async () => {
  const dir = fresh();
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, "README"), "x");
  writeFileSync(join(dir, ".0000000000000001-3.gz.tmp"), "half");
  const s = new Spool(dir, 1 << 20, () => {});
  expect(s.batches).toBe(0);
  expect(readdirSync(dir)).toEqual(["README"]);
});

test("an existing directory with other files in it is refused, not chmodded; / is no spool", () => {
  const shared = fresh();
  mkdirSync(shared, { mode: 0o755 });
  chmodSync(shared, 0o755);
  writeFileSync(join(shared, "someone-elses.conf"), "x");
  expect(() => new Spool(shared, 1024, () => {})).toThrow(/an existing directory \(mode 755\) with other files in it/);
  expect(statSync(shared).mode & 0o777).toBe(0o755);
  expect(() => new Spool("/", 1024, () => {})).toThrow(/\/ is no spool/);
  // One that holds only batches (a spool made looser by hand) is tightened.
  const loose = fresh();
  mkdirSync(loose, { mode: 0o755 });
  chmodSync(loose, 0o755);
  writeFileSync(join(loose, "0000000000000001-3.gz"), "");
  const spool = new Spool(loose, 1024, () => {});
  expect(spool.batches).toBe(1);
  expect(statSync(loose).mode & 0o777).toBe(0o700);
});
