/**
 * The file events, each triggered for real (workloads/io-trigger.c) under a
 * running agent and asserted field by field: a file created with O_CREAT (and
 * none when it already existed), mknod, renameat with a dirfd and relative
 * names, link and symlink from the cwd, unlink and rmdir, a tmpfs mount, a
 * chroot (paths where they really are; a file created outside the root is
 * flagged unreachable), and load_module's one-line refusal on a kernel
 * without modules.
 */
import { afterAll, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { BIN } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";
import { IO_TRIGGER, NOOP, only, underAgent } from "../helpers/trigger.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync("/tmp/ds-file-");
  dirs.push(d);
  return d;
}

describeKernel("file events (root)", { executables: [IO_TRIGGER] }, () => {
  test("create_file: an open that created its file, by a relative name; not again for an existing file", async () => {
    const d = tmp();
    const { out, events, trigger } = await underAgent(IO_TRIGGER, "create_file", ["create", "new.txt"], { cwd: d });
    const [e] = only(events, "create_file", trigger);
    const st = statSync(join(d, "new.txt"));
    expect(e).toBeDefined();
    expect(e!.path).toBe(join(d, "new.txt"));
    expect(e!.syscall).toBe("openat");
    expect(e!.res).toBe(Number(out.fd));
    expect(e!.file_type).toBe("file");
    expect(e!.mode).toBe("0640");
    expect(e!.ino).toBe(String(st.ino));
    expect(Number(e!.oflags) & 0x40).toBe(0x40);
    expect(e!.truncated).toBe(false);
    expect(e!.path_deleted).toBe(false);
    expect(e!.path_unreachable).toBe(false);
    expect(e!.exe_deleted).toBe(false);
    expect(e!.exe_memfd).toBe(false);
    expect(e!.exe_unreachable).toBe(false);
    // The same open again: the file exists, nothing is created, nothing reported (the exec record
    // shows the agent did see that process).
    const again = await underAgent(IO_TRIGGER, "create_file,exec", ["create", "new.txt"], { cwd: d });
    expect(only(again.events, "exec", again.trigger)).toHaveLength(1);
    expect(only(again.events, "create_file", again.trigger)).toEqual([]);
  }, 30_000);

  test("create_file: an openat2 whose open_how is not in memory at entry: recorded, its flags read at the exit and flagged", async () => {
    const d = tmp();
    const { out, events, trigger } = await underAgent(IO_TRIGGER, "create_file", ["openat2-mapped", d, "how.txt"]);
    // The trigger first creates the file it maps open_how from (d/mapped): its own record.
    const e = only(events, "create_file", trigger).find((r) => r.syscall === "openat2");
    expect(e).toBeDefined();
    expect([e!.path, e!.syscall, e!.res, e!.mode]).toEqual([join(d, "how.txt"), "openat2", Number(out.fd), "0640"]);
    expect([Number(e!.oflags) & 0x41, e!.read_at_exit]).toEqual([0x41, true]);
  }, 30_000);

  test("create_file: an O_TMPFILE open, an unnamed file: the directory's path with #inode, path_deleted", async () => {
    const d = tmp();
    const { out, events, trigger } = await underAgent(IO_TRIGGER, "create_file", ["tmpfile", d]);
    const [e] = only(events, "create_file", trigger);
    expect(e).toBeDefined();
    expect(e!.path).toBe(join(d, `#${out.ino}`));
    expect(e!.path_deleted).toBe(true);
    expect(e!.path_unreachable).toBe(false);
    expect(e!.syscall).toBe("openat");
    expect(e!.res).toBe(Number(out.fd));
    expect(e!.ino).toBe(out.ino);
    expect(e!.file_type).toBe("file");
    expect(e!.mode).toBe("0600");
    expect(Number(e!.oflags) & 0o20000000).toBe(0o20000000);
    expect(Number(e!.oflags) & 0x40).toBe(0);
  }, 30_000);

  // Path components on both sides of a dentry's inline name size (32 bytes before 6.14, 40 since),
  // in the created file's path and in the creator's exe (both walked by bpf/path.bpf.h).
  test("create_file: path and exe with components at and past a dentry's inline name", async () => {
    const d = tmp();
    const names = [31, 32, 33, 39, 40, 41, 200].map((n, i) => String.fromCharCode(97 + i).repeat(n));
    const dir = join(d, ...names);
    mkdirSync(dir, { recursive: true });
    const exeDir = join(d, "x".repeat(32), "y".repeat(33));
    mkdirSync(exeDir, { recursive: true });
    const exe = join(exeDir, "t".repeat(32));
    copyFileSync(IO_TRIGGER, exe);
    chmodSync(exe, 0o755);
    const file = "z".repeat(32);
    const { events, trigger } = await underAgent(exe, "create_file", ["create", file], { cwd: dir });
    const [e] = only(events, "create_file", trigger);
    expect(e).toBeDefined();
    expect(e!.path).toBe(join(dir, file));
    expect(e!.exe).toBe(exe);
    expect(e!.truncated).toBe(false);
  }, 30_000);

  test("create_file: the creating process's socket, when it has one", async () => {
    const d = tmp();
    // fd 0 is a socket: the shell's stdin is a TCP connection to a local listener.
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const script = `exec 0<>/dev/tcp/127.0.0.1/${server.port}; exec ${IO_TRIGGER} create dl.bin`;
      const { events } = await underAgent("/bin/bash", "create_file", ["-c", script], { cwd: d });
      const e = events.find((x) => x.event === "create_file" && x.path === join(d, "dl.bin"));
      expect(e).toBeDefined();
      expect(e!.socket).toMatchObject({ fd: 0, family: "inet", protocol: "tcp", dip: "127.0.0.1", dport: server.port });
      // Past empty slots and other files (a pipe at fd 5): fd 9, the last of the scan's sixteen at 15, none at 16.
      for (const [fd, seen] of [
        [9, true],
        [15, true],
        [16, false],
      ] as const) {
        const name = `fd${fd}.bin`;
        const at = `exec 5< <(true); exec ${fd}<>/dev/tcp/127.0.0.1/${server.port}; exec ${IO_TRIGGER} create ${name}`;
        const got = await underAgent("/bin/bash", "create_file", ["-c", at], { cwd: d });
        const f = got.events.find((x) => x.event === "create_file" && x.path === join(d, name));
        expect(f).toBeDefined();
        if (seen) expect(f!.socket).toMatchObject({ fd, family: "inet", dip: "127.0.0.1", dport: server.port });
        else expect(f!.socket).toBeUndefined();
      }
    } finally {
      server.stop(true);
    }
  }, 30_000);

  test("create_file by mknod: a fifo, its path from the cwd", async () => {
    const d = tmp();
    const { events, trigger } = await underAgent(IO_TRIGGER, "create_file", ["mkfifo", "pipe0"], { cwd: d });
    const [e] = only(events, "create_file", trigger);
    expect(e!.path).toBe(join(d, "pipe0"));
    expect(e!.syscall).toBe("mknodat");
    expect(e!.res).toBe(0);
    expect(e!.file_type).toBe("fifo");
    expect(e!.mode).toBe("0640");
  }, 30_000);

  test("rename: renameat with a dirfd and relative names, both paths absolute", async () => {
    const d = tmp();
    mkdirSync(join(d, "sub"));
    writeFileSync(join(d, "sub", "a"), "x");
    const { events, trigger } = await underAgent(IO_TRIGGER, "rename", ["renameat", "sub", "a", "b"], { cwd: d });
    const [e] = only(events, "rename", trigger);
    expect(e!.syscall).toBe("renameat");
    expect(e!.res).toBe(0);
    expect(e!.old_path).toBe(join(d, "sub", "a"));
    expect(e!.new_path).toBe(join(d, "sub", "b"));
    expect(e!.path_unreachable).toBe(false);
    expect(existsSync(join(d, "sub", "b"))).toBe(true);
  }, 30_000);

  test("rename: the names as the call was entered, not as another thread rewrote them while it waited", async () => {
    // The new name becomes "ds-X" in memory while renameat waits for the directory's lock (held by a
    // getdents64 blocked on a userfaultfd page); the kernel renames to the "ds-b" it copied at the start.
    const d = tmp();
    const { events, trigger } = await underAgent(IO_TRIGGER, "rename", ["rename-rewritten", d]);
    const [e] = only(events, "rename", trigger);
    expect(e).toBeDefined();
    expect(e!.syscall).toBe("renameat");
    expect(e!.res).toBe(0);
    expect(e!.old_path).toBe(join(d, "ds-a"));
    expect(e!.new_path).toBe(join(d, "ds-b"));
    expect([e!.truncated, e!.read_at_exit]).toEqual([false, false]);
    expect(existsSync(join(d, "ds-b"))).toBe(true);
  }, 30_000);

  test("rename: a name not in memory when the call was entered is read at its exit, and flagged read_at_exit", async () => {
    // The new name is on a fresh mapping of a file: only the kernel's own copy of it faults the page in.
    const d = tmp();
    const { events, trigger } = await underAgent(IO_TRIGGER, "rename", ["rename-mapped", d]);
    const [e] = only(events, "rename", trigger);
    expect(e).toBeDefined();
    expect([e!.old_path, e!.new_path, e!.res]).toEqual([join(d, "ds-old"), join(d, "ds-new"), 0]);
    expect([e!.read_at_exit, e!.truncated]).toEqual([true, false]);
  }, 30_000);

  test("rename: 80 renames held inside the kernel at once, more than the 64 copy slots: every record has its names", async () => {
    // Each call's names are copied at entry; past the slots, into the thread's task storage (the spill).
    const d = tmp();
    const n = 80;
    const { events, trigger } = await underAgent(IO_TRIGGER, "rename", ["rename-many", d, String(n)]);
    const evs = only(events, "rename", trigger);
    expect(evs.length).toBe(n);
    const got = evs.map((e) => [e.old_path, e.new_path, e.res, e.truncated]).sort();
    const want = Array.from({ length: n }, (_, i) => [join(d, `m-${i}`), join(d, `n-${i}`), 0, false]).sort();
    expect(got).toEqual(want);
  }, 60_000);

  test("link: a hard link (both paths resolved) and a symbolic one (the target as given)", async () => {
    const d = tmp();
    writeFileSync(join(d, "orig"), "x");
    const { events, trigger } = await underAgent(IO_TRIGGER, "link", ["link", "orig", "hard"], { cwd: d });
    const evs = only(events, "link", trigger);
    const hard = evs.find((e) => e.kind === "hard");
    const sym = evs.find((e) => e.kind === "symbolic");
    expect(hard!.syscall).toBe("link");
    expect(hard!.old_path).toBe(join(d, "orig"));
    expect(hard!.new_path).toBe(join(d, "hard"));
    expect(sym!.syscall).toBe("symlinkat");
    expect(sym!.old_path).toBe("orig");
    expect(sym!.new_path).toBe(join(d, "hard.sym"));
  }, 30_000);

  test("linkat and symlinkat with dirfds: names resolved against each call's own directory", async () => {
    const d = tmp();
    mkdirSync(join(d, "src"));
    mkdirSync(join(d, "dst"));
    writeFileSync(join(d, "src", "orig"), "x");
    // The cwd is neither directory: only the dirfds can resolve the names.
    const { events, trigger } = await underAgent(IO_TRIGGER, "link", ["linkat", "src", "orig", "dst", "hard"], {
      cwd: d,
    });
    const evs = only(events, "link", trigger);
    expect(evs.map((e) => [e.syscall, e.kind, e.old_path, e.new_path, e.res])).toEqual([
      ["linkat", "hard", join(d, "src", "orig"), join(d, "dst", "hard"), 0],
      ["symlinkat", "symbolic", "orig", join(d, "dst", "hard.sym"), 0],
    ]);
  }, 30_000);

  test("unlink and rmdir: each its own type, only when selected", async () => {
    const d = tmp();
    writeFileSync(join(d, "gone"), "x");
    const u = await underAgent(IO_TRIGGER, "unlink", ["unlink", "gone"], { cwd: d });
    expect(only(u.events, "unlink", u.trigger).map((e) => [e.syscall, e.path, e.res])).toEqual([
      ["unlink", join(d, "gone"), 0],
    ]);
    const r = await underAgent(IO_TRIGGER, "rmdir", ["rmdir", "dir"], { cwd: d });
    expect(only(r.events, "rmdir", r.trigger).map((e) => [e.syscall, e.path, e.res])).toEqual([
      ["rmdir", join(d, "dir"), 0],
    ]);
    // rmdir alone selected: the unlink of a file is not reported as anything.
    writeFileSync(join(d, "gone2"), "x");
    const none = await underAgent(IO_TRIGGER, "rmdir,exec", ["unlink", "gone2"], { cwd: d });
    expect(only(none.events, "exec", none.trigger)).toHaveLength(1);
    expect(none.events.filter((e) => e.pid === none.trigger && e.event !== "exec")).toEqual([]);
  }, 30_000);

  test("a name relative to a dirfd that names no file: shown as given and flagged truncated, never made absolute", async () => {
    const u = await underAgent(IO_TRIGGER, "unlink", ["unlinkat-badfd", "etc/passwd"]);
    expect(Number(u.out.res)).toBe(-9);
    expect(only(u.events, "unlink", u.trigger).map((e) => [e.syscall, e.path, e.truncated, e.res])).toEqual([
      ["unlinkat", "etc/passwd", true, -9],
    ]);
  }, 30_000);

  test("linkat of an O_TMPFILE file by AT_EMPTY_PATH: the old path is the fd's own file, with no '/' after it", async () => {
    const d = tmp();
    const { events, trigger } = await underAgent(IO_TRIGGER, "link", ["linkat-empty", "named"], { cwd: d });
    const [e] = only(events, "link", trigger);
    expect([e?.syscall, e?.kind, e?.new_path, e?.res]).toEqual(["linkat", "hard", join(d, "named"), 0]);
    const old = String(e?.old_path);
    expect([old.slice(0, d.length + 1), /^#\d+$/.test(old.slice(d.length + 1))]).toEqual([`${d}/`, true]);
  }, 30_000);

  test("mount: a tmpfs on a relative mount point: source, absolute mount point, type, flags", async () => {
    const d = tmp();
    mkdirSync(join(d, "mnt"));
    const { events, trigger } = await underAgent(IO_TRIGGER, "mount", ["mount", "mnt"], { cwd: d });
    const [e] = only(events, "mount", trigger);
    expect(e!.syscall).toBe("mount");
    expect(e!.res).toBe(0);
    expect(e!.source).toBe("ds-tmpfs");
    expect(e!.mount_point).toBe(join(d, "mnt"));
    expect(e!.fs_type).toBe("tmpfs");
    expect(e!.flags).toBe(2); // MS_NOSUID
  }, 30_000);

  test("a chroot: created and renamed files shown where they are on the host", async () => {
    const jail = tmp();
    const { events, trigger } = await underAgent(IO_TRIGGER, "create_file,rename", ["chroot-create", jail, "f"]);
    expect(only(events, "create_file", trigger)[0]!.path).toBe(join(jail, "f"));
    const [r] = only(events, "rename", trigger);
    expect(r!.old_path).toBe(join(jail, "f"));
    expect(r!.new_path).toBe(join(jail, "f.moved"));
    // The trigger runs from outside the jail it chrooted into: its records' exe is flagged, still the host's path.
    for (const rec of [...only(events, "create_file", trigger), r!]) {
      expect(rec.exe).toBe(realpathSync(IO_TRIGGER));
      expect(rec.exe_unreachable).toBe(true);
    }
  }, 30_000);

  test("a file created outside the process's root (a dirfd from before chroot): flagged path_unreachable", async () => {
    const jail = tmp();
    const outside = tmp();
    const { events, trigger } = await underAgent(IO_TRIGGER, "create_file", ["chroot-escape", jail, outside, "out"]);
    const [e] = only(events, "create_file", trigger);
    expect(e!.path).toBe(join(outside, "out"));
    expect(e!.path_unreachable).toBe(true);
    expect(e!.path_deleted).toBe(false);
  }, 30_000);

  test("the chroot's own files are reachable", async () => {
    const jail = tmp();
    const { events, trigger } = await underAgent(IO_TRIGGER, "create_file,rename", ["chroot-create", jail, "in"]);
    expect(only(events, "create_file", trigger)[0]!.path_unreachable).toBe(false);
    expect(only(events, "rename", trigger)[0]!.path_unreachable).toBe(false);
  }, 30_000);

  test("a rename by names relative to a dirfd from before chroot: flagged path_unreachable", async () => {
    const jail = tmp();
    const outside = tmp();
    writeFileSync(join(outside, "f"), "x");
    const { events, trigger } = await underAgent(IO_TRIGGER, "rename", ["chroot-escape-rename", jail, outside, "f"]);
    const [r] = only(events, "rename", trigger);
    expect([r!.old_path, r!.new_path, r!.path_unreachable, r!.res]).toEqual([
      join(outside, "f"),
      join(outside, "f.moved"),
      true,
      0,
    ]);
  }, 30_000);

  test("an exec of a program from outside the chroot (execveat on an fd from before it): flagged exe_unreachable", async () => {
    const jail = tmp();
    const { events, trigger } = await underAgent(IO_TRIGGER, "exec", ["chroot-exec", jail, NOOP]);
    const e = only(events, "exec", trigger).find((x) => x.args?.[0] === "from-outside");
    expect(e).toBeDefined();
    expect(e!.exe).toBe(NOOP);
    expect(e!.exe_unreachable).toBe(true);
    expect(e!.exe_deleted).toBe(false);
    expect(e!.exe_memfd).toBe(false);
    expect(e!.res).toBe(0);
  }, 30_000);

  test("an exec of the chroot's own program, and one with no chroot: exe reachable", async () => {
    const jail = tmp();
    copyFileSync(NOOP, join(jail, "noop"));
    chmodSync(join(jail, "noop"), 0o755);
    const { events, trigger } = await underAgent(IO_TRIGGER, "exec", ["chroot-exec-in", jail, "noop"]);
    const e = only(events, "exec", trigger).find((x) => x.args?.[0] === "from-inside");
    expect(e).toBeDefined();
    expect(e!.exe).toBe(join(jail, "noop"));
    expect(e!.exe_unreachable).toBe(false);
    // The trigger's own exec (no chroot yet).
    expect(only(events, "exec", trigger).find((x) => x.exe === IO_TRIGGER)?.exe_unreachable).toBe(false);
  }, 30_000);

  test("load_module on a kernel without modules: one line and a non-zero exit when asked for, and doctor says why", async () => {
    const hasModules = existsSync("/proc/modules");
    const asked = Bun.spawnSync([BIN, "--events", "load_module", "--duration", "1"], { stderr: "pipe" });
    const lines = asked.stderr.toString().trim().split("\n");
    if (hasModules) {
      expect(asked.exitCode).toBe(0);
      return;
    }
    expect(asked.exitCode).not.toBe(0);
    expect(lines).toEqual([
      "dual-slot: load_module is unavailable on this kernel: it has no module support (CONFIG_MODULES off: no init_module or finit_module syscalls to trace)",
    ]);
    const doctor = Bun.spawnSync([BIN, "doctor"], { stdout: "pipe" }).stdout.toString();
    expect(doctor).toMatch(/events .*load_module is unavailable on this kernel/);
  }, 30_000);
});
