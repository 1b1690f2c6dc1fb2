/**
 * Real exec events carry what exec tracers' users ask for: argv without silent
 * truncation, cwd and the real exe path built in slot 1, in both encodings.
 */
import { afterAll, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type JsonEvent, parseEvents, startAgent, uniqueTrue } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

type Ev = JsonEvent & {
  cwd: string;
  exe: string;
  args_truncated: boolean;
  path_truncated: boolean;
  encoding: string;
  bytes: number;
};

const cleanup: Array<() => void> = [];
afterAll(() => {
  for (const f of cleanup.reverse()) f();
});

async function run(path: string, argv: string[], cwd?: string): Promise<number> {
  const p = Bun.spawn([path, ...argv], { cwd, stdout: "ignore", stderr: "ignore", stdin: "ignore" });
  await p.exited;
  return p.pid;
}

/** Runs `body` under an agent started with `flags`, returns its events by pid. */
async function capture(flags: string[], body: () => Promise<void>): Promise<Map<number, Ev>> {
  const agent = await startAgent(["--json", "--events", "exec", ...flags]);
  await body();
  await Bun.sleep(200);
  const { stdout } = await agent.stop();
  return new Map(parseEvents(stdout).map((e) => [e.pid, e as Ev]));
}

describeKernel("exec event fields (root)", { commands: ["mount", "umount"] }, () => {
  const t = uniqueTrue("dsev");
  cleanup.push(() => rmSync(t.dir, { recursive: true, force: true }));

  test("argv with spaces, UTF-8 and empty strings arrives exactly", async () => {
    const argv = ["a b", "héllo ✓ 日本", "", "--x=1", ""];
    let pid = 0;
    const evs = await capture([], async () => {
      pid = await run(t.path, argv);
    });
    const e = evs.get(pid)!;
    expect(e.args).toEqual([t.path, ...argv]);
    expect(e.args_truncated).toBe(false);
  }, 30_000);

  test("a 700-byte filename is cut at 511 bytes and flagged filename_truncated", async () => {
    // Nested directories of 200-byte names: a path of about 700 bytes to a copy of true.
    let dir = t.dir;
    while (dir.length < 600) {
      dir = join(dir, "d".repeat(200));
      mkdirSync(dir);
    }
    const exe = join(dir, "t");
    copyFileSync(t.path, exe);
    chmodSync(exe, 0o755);
    expect(exe.length).toBeGreaterThan(511);
    let pid = 0;
    const evs = await capture([], async () => {
      pid = await run(exe, []);
    });
    const e = evs.get(pid)! as Ev & { filename_truncated: boolean };
    expect(e.filename_truncated).toBe(true);
    expect(e.filename).toBe(exe.slice(0, 511));
    const short = (
      await capture([], async () => {
        pid = await run(t.path, []);
      })
    ).get(pid)! as Ev & { filename_truncated: boolean };
    expect(short.filename_truncated).toBe(false);
  }, 30_000);

  test("invalid UTF-8 in a file name and in argv survives: \\xNN text and the exact bytes in *_b64", async () => {
    const name = Buffer.concat([Buffer.from(`${t.dir}/bad`), Buffer.from([0xff, 0x5c])]);
    copyFileSync(t.path, name);
    chmodSync(name, 0o755);
    let pid = 0;
    const evs = await capture([], async () => {
      // printf makes the raw bytes; the shell execs them as the file name and an argument.
      const p = Bun.spawn(["/bin/sh", "-c", `exec "$(printf '${t.dir}/bad\\377\\134')" "$(printf 'x\\376y')" ok`], {
        stdout: "ignore",
        stderr: "ignore",
      });
      await p.exited;
      pid = p.pid;
    });
    const e = evs.get(pid)! as Ev & { filename_b64?: string; args_b64?: string; exe_b64?: string };
    expect(e.filename).toBe(`${t.dir}/bad\\xff\\\\`);
    expect(Buffer.from(e.filename_b64 ?? "", "base64")).toEqual(name);
    expect(Buffer.from(e.exe_b64 ?? "", "base64")).toEqual(name);
    expect(e.args).toEqual([`${t.dir}/bad\\xff\\\\`, "x\\xfey", "ok"]);
    const area = Buffer.concat([name, Buffer.from([0]), Buffer.from([0x78, 0xfe, 0x79, 0]), Buffer.from("ok\0")]);
    expect(Buffer.from(e.args_b64 ?? "", "base64")).toEqual(area);
    expect(JSON.stringify(e)).not.toContain("\ufffd");
  }, 30_000);

  test("100 arguments: all kept with --max-args 200, cut and flagged at --max-args 32", async () => {
    const argv = Array.from({ length: 99 }, (_, i) => `a${i}`);
    let p1 = 0;
    const all = await capture(["--max-args", "200"], async () => {
      p1 = await run(t.path, argv);
    });
    expect(all.get(p1)!.args).toEqual([t.path, ...argv]);
    expect(all.get(p1)!.args_truncated).toBe(false);
    let p2 = 0;
    const cut = await capture(["--max-args", "32"], async () => {
      p2 = await run(t.path, argv);
    });
    expect(cut.get(p2)!.args.length).toBe(32);
    expect(cut.get(p2)!.args_truncated).toBe(true);
  }, 30_000);

  test("10 KB of arguments is truncated at --max-arg-bytes and flagged", async () => {
    const argv = Array.from({ length: 10 }, (_, i) => `${i}`.repeat(1000));
    let pid = 0;
    const evs = await capture(["--max-args", "100"], async () => {
      pid = await run(t.path, argv);
    });
    const e = evs.get(pid)!;
    expect(e.args_truncated).toBe(true);
    const bytes = e.args.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
    expect(bytes).toBeLessThanOrEqual(4096 + 1);
    expect(bytes).toBeGreaterThan(4000);
    expect(e.args[1]).toBe(argv[0]);
  }, 30_000);

  test("cwd 40 directories deep, and under a bind mount", async () => {
    const base = realpathSync(mkdtempSync(join(tmpdir(), "dual-slot-cwd-")));
    chmodSync(base, 0o755);
    cleanup.push(() => rmSync(base, { recursive: true, force: true }));
    const deep = join(base, ...Array.from({ length: 40 }, (_, i) => `d${i}`));
    mkdirSync(deep, { recursive: true });
    const src = join(base, "src", "inner");
    const mnt = join(base, "mnt");
    mkdirSync(src, { recursive: true });
    mkdirSync(mnt);
    const m = Bun.spawnSync(["mount", "--bind", join(base, "src"), mnt]);
    expect(m.exitCode).toBe(0);
    cleanup.push(() => void Bun.spawnSync(["umount", "-l", mnt]));
    let p1 = 0;
    let p2 = 0;
    const evs = await capture([], async () => {
      p1 = await run(t.path, [], deep);
      p2 = await run(t.path, [], join(mnt, "inner"));
    });
    expect(evs.get(p1)!.cwd).toBe(deep);
    expect(evs.get(p1)!.path_truncated).toBe(false);
    expect(evs.get(p2)!.cwd).toBe(join(mnt, "inner"));
  }, 30_000);

  test("a cwd longer than the path buffer is cut from the left, marked … and flagged", async () => {
    const base = realpathSync(mkdtempSync(join(tmpdir(), "dual-slot-long-")));
    cleanup.push(() => rmSync(base, { recursive: true, force: true }));
    const long = join(base, ...Array.from({ length: 12 }, (_, i) => `${i}`.padEnd(200, "x")));
    mkdirSync(long, { recursive: true });
    let pid = 0;
    const evs = await capture([], async () => {
      pid = await run(t.path, [], long);
    });
    const e = evs.get(pid)!;
    expect(e.path_truncated).toBe(true);
    expect(e.cwd.startsWith("…/")).toBe(true);
    expect(long.endsWith(e.cwd.slice(1))).toBe(true);
  }, 30_000);

  test("exe through a symlink is the real path; filename is what was exec'd", async () => {
    const link = join(t.dir, "link-to-it");
    symlinkSync(t.path, link);
    let pid = 0;
    const evs = await capture([], async () => {
      pid = await run(link, []);
    });
    const e = evs.get(pid)!;
    expect(e.filename).toBe(link);
    expect(e.exe).toBe(realpathSync(t.path));
    expect(e.comm).toBe("link-to-it");
  }, 30_000);

  test("fixed and compact decode to the same fields; compact is smaller", async () => {
    const argv = ["-la", "with space", "ü"];
    const fixedAgent = await startAgent(["--json", "--events", "exec", "--encoding", "fixed"]);
    const compactAgent = await startAgent(["--json", "--events", "exec", "--encoding", "compact"]);
    const pid = await run(t.path, argv, t.dir);
    await Bun.sleep(200);
    const fixed = new Map(parseEvents((await fixedAgent.stop()).stdout).map((e) => [e.pid, e as Ev]));
    const compact = new Map(parseEvents((await compactAgent.stop()).stdout).map((e) => [e.pid, e as Ev]));
    const f = fixed.get(pid)!;
    const c = compact.get(pid)!;
    expect(f.heap.encoding).toBe("fixed");
    expect(c.heap.encoding).toBe("compact");
    for (const k of [
      "comm",
      "filename",
      "args",
      "cwd",
      "exe",
      "ppid",
      "uid",
      "args_truncated",
      "path_truncated",
    ] as const) {
      expect(f[k]).toEqual(c[k]);
    }
    expect(c.heap.bytes * 4).toBeLessThan(f.heap.bytes);
  }, 30_000);
});
