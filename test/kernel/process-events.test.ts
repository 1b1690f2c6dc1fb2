/**
 * The process events, each triggered for real (workloads/trigger.c) under a
 * running agent and asserted field by field: a failed exec (its argv as read
 * at entry), setsid, prctl,
 * ptrace POKEDATA, memfd_create, kill/tkill/tgkill, a setuid binary run by an
 * unprivileged user, a set*id call that makes a task root, execs from a memfd
 * and of an unlinked file, pid_tree over a known chain, exec ids that join
 * parent and child, fork, exit codes and signals.
 */
import { afterAll, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { bpfObjectsOf, parseEvents, startAgent, uniqueTrue } from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";
import { type Ev, NOOP, only, TRIGGER, underAgent } from "../helpers/trigger.ts";

/** An unprivileged uid that exists on any Debian host. */
const NOBODY = 65534;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Runs the trigger under an agent with `events`; returns its JSON line and every event. */
const under = (events: string, argv: string[], opts: { expectExit?: number } = {}) =>
  underAgent(TRIGGER, events, argv, opts);

describeKernel("process events (root)", { executables: [TRIGGER, NOOP] }, () => {
  test("a failed execve: exec with res -2, the filename and argv the call gave", async () => {
    const { events, trigger } = await under("exec", ["exec-missing", "/nonexistent/ds-missing"]);
    const [e] = only(events, "exec", trigger).filter((x) => x.res !== 0);
    expect(e).toBeDefined();
    expect(e!.res).toBe(-2);
    expect(e!.filename).toBe("/nonexistent/ds-missing");
    expect(e!.args).toEqual(["/nonexistent/ds-missing", "x"]);
    expect(e!.comm).toBe("trigger");
    expect(e!.exe).toBe(TRIGGER);
    // The successful exec of the trigger itself says res 0.
    expect(only(events, "exec", trigger).find((x) => x.res === 0)?.filename).toBe(TRIGGER);
  }, 30_000);

  test("a failed execve with eleven arguments: every one, past the entry's reads of eight pointers at a time", async () => {
    const extra = Array.from({ length: 10 }, (_, i) => `arg-${i + 1}`);
    const { events, trigger } = await under("exec", ["exec-missing", "/nonexistent/ds-missing-long", ...extra]);
    const [e] = only(events, "exec", trigger).filter((x) => x.res !== 0);
    expect(e?.res).toBe(-2);
    expect(e!.args).toEqual(["/nonexistent/ds-missing-long", ...extra]);
    expect([e!.args_truncated, e!.read_at_exit]).toEqual([false, false]);
  }, 30_000);

  test("a failed execve whose argv array ends at an inaccessible page: its pointers read one at a time", async () => {
    // Eight pointers from argv[0] cross into the page after the array: that read fails as a whole.
    const { events, trigger } = await under("exec", ["exec-edge", "/nonexistent/ds-missing-edge"]);
    const [e] = only(events, "exec", trigger).filter((x) => x.res !== 0);
    expect(e?.res).toBe(-2);
    expect(e!.args).toEqual(["/nonexistent/ds-missing-edge", "edge-1"]);
    expect([e!.args_truncated, e!.read_at_exit]).toEqual([false, false]);
  }, 30_000);

  /** A file no binfmt takes: the kernel copies the environment and argv, then fails with ENOEXEC. */
  const notABinary = (): string => {
    const dir = mkdtempSync("/tmp/ds-rewritten-");
    dirs.push(dir);
    const path = join(dir, "not-a-binary");
    writeFileSync(path, "ds: neither ELF nor #!\n");
    chmodSync(path, 0o755);
    return path;
  };

  /** The record of trigger `cmd`'s exec of a fresh notABinary(), which fails with ENOEXEC. */
  const failedExec = async (cmd: string): Promise<Ev> => {
    const path = notABinary();
    const { events, trigger } = await under("exec", [cmd, path]);
    const [e] = only(events, "exec", trigger).filter((x) => x.res !== 0);
    expect([e?.res, e?.filename]).toEqual([-8, path]);
    return e!;
  };

  test("a failed exec shows its argv as the call was entered, not as another thread rewrote it inside", async () => {
    // argv[0] becomes "after-00" while the kernel copies the environment (a userfaultfd page), before argv.
    const e = await failedExec("exec-rewritten");
    expect(e.args).toEqual(["before-0", "arg-1"]);
    expect([e.args_truncated, e.filename_truncated, e.read_at_exit]).toEqual([false, false, false]);
  }, 30_000);

  test("a failed exec whose argv is not all in memory at entry: the rest read at its exit, and flagged read_at_exit", async () => {
    // argv[1] is on a userfaultfd page, which only the kernel's own copy brings in; argv[0], readable at
    // entry and rewritten to "after-00" during the call, keeps what the entry read.
    const e = await failedExec("exec-unpaged");
    expect(e.args).toEqual(["before-0", "arg-1"]);
    expect([e.args_truncated, e.read_at_exit]).toEqual([false, true]);
  }, 30_000);

  test("an exec from a non-leader thread gives its copy slot back (the thread takes the leader's pid on the way)", async () => {
    const agent = await startAgent(["--json", "--events", "exec"]);
    const pids: number[] = [];
    for (let i = 0; i < 5; i++) {
      const p = Bun.spawn([TRIGGER, "thread-exec", NOOP], { stdout: "ignore", stderr: "ignore" });
      expect(await p.exited).toBe(0);
      pids.push(p.pid);
    }
    // Every slot is free again once the execs are done: an owner left is a slot leaked for good.
    const maps = bpfObjectsOf(agent.pid).maps.map((id) => {
      const show = Bun.spawnSync(["bpftool", "-j", "map", "show", "id", String(id)]).stdout.toString();
      return { id, name: (JSON.parse(show) as { name: string }).name };
    });
    const copy = maps.find((m) => m.name === "ds_entry_copy");
    expect(copy).toBeDefined();
    const held = (): number => {
      const dump = Bun.spawnSync(["bpftool", "-j", "map", "dump", "id", String(copy!.id)]).stdout.toString();
      const owners = (JSON.parse(dump) as Array<{ value: string[] }>).map((e) =>
        e.value.slice(0, 8).some((b) => Number(b) !== 0),
      );
      expect(owners.length).toBe(64);
      return owners.filter(Boolean).length;
    };
    // Another exec on the host holds a slot for the length of its call: wait those out, not a leak.
    let n = held();
    for (let i = 0; i < 20 && n > 0; i++) {
      await Bun.sleep(100);
      n = held();
    }
    expect(n).toBe(0);
    const evs = parseEvents((await agent.stop()).stdout) as Ev[];
    for (const pid of pids) expect(evs.find((e) => e.pid === pid && e.filename === NOOP)?.res).toBe(0);
  }, 30_000);

  test("a failed execveat: exec with res -2, the name (relative to its dirfd) and argv the call gave", async () => {
    const { events, trigger } = await under("exec", ["execveat-missing", "nonexistent/ds-missing-at"]);
    const [e] = only(events, "exec", trigger).filter((x) => x.res !== 0);
    expect(e).toBeDefined();
    expect(e!.res).toBe(-2);
    expect(e!.filename).toBe("nonexistent/ds-missing-at");
    expect(e!.args).toEqual(["nonexistent/ds-missing-at", "y"]);
    expect(e!.exe).toBe(TRIGGER);
  }, 30_000);

  test("setsid: the new session id in res, sid and pgid are the caller's", async () => {
    const { events, out } = await under("setsid", ["setsid"]);
    const child = Number(out.child);
    const [e] = only(events, "setsid", child);
    expect(e).toBeDefined();
    expect(e!.res).toBe(child);
    expect(e!.sid).toBe(child);
    expect(e!.pgid).toBe(child);
    expect(e!.syscall).toBe("setsid");
    expect(e!.ppid).toBe(Number(out.pid));
  }, 30_000);

  test("prctl PR_SET_NAME: old and new name", async () => {
    const { events, out } = await under("prctl", ["prctl", "ds-renamed"]);
    const [e] = only(events, "prctl", Number(out.pid));
    expect(e).toBeDefined();
    expect(e!.option).toBe(15);
    expect(e!.old_name).toBe("trigger");
    expect(e!.new_name).toBe("ds-renamed");
    expect(e!.comm).toBe("ds-renamed");
    expect(e!.res).toBe(0);
    expect(e!.exe).toBe(TRIGGER);
  }, 30_000);

  test("ptrace: ATTACH, then POKEDATA with the address, the word and the target's exe", async () => {
    const { events, out } = await under("ptrace", ["ptrace"]);
    const evs = only(events, "ptrace", Number(out.pid));
    expect(evs.map((e) => e.request_name)).toEqual(["PTRACE_ATTACH", "PTRACE_POKEDATA"]);
    const [attach, poke] = evs as [Ev, Ev];
    expect(attach.target_pid).toBe(Number(out.child));
    expect(attach.res).toBe(0);
    expect(attach.target_exe).toBe(TRIGGER);
    expect(poke.request).toBe(5);
    expect(poke.target_pid).toBe(Number(out.child));
    expect(poke.addr).toBe(String(out.addr));
    expect(poke.data).toBe(String(out.data));
    expect(poke.target_exe).toBe(TRIGGER);
    expect(poke.res).toBe(0);
  }, 30_000);

  test("ptrace: SEIZE (INTERRUPT is not watched), then POKETEXT", async () => {
    const { events, out } = await under("ptrace", ["ptrace-seize"]);
    const evs = only(events, "ptrace", Number(out.pid));
    expect(evs.map((e) => [e.request_name, e.request, e.target_pid, e.res])).toEqual([
      ["PTRACE_SEIZE", 0x4206, Number(out.child), 0],
      ["PTRACE_POKETEXT", 4, Number(out.child), 0],
    ]);
    expect(evs[1]!.addr).toBe(String(out.addr));
    expect(evs[1]!.data).toBe(String(out.data));
    expect(evs.every((e) => e.target_exe === TRIGGER)).toBe(true);
  }, 30_000);

  test("memfd_create: the name, the flags and the fd", async () => {
    const { events, out } = await under("memfd_create", ["memfd", "ds-anon"]);
    const [e] = only(events, "memfd_create", Number(out.pid));
    expect(e).toBeDefined();
    expect(e!.name).toBe("ds-anon");
    expect(e!.flags).toBe(3);
    expect(e!.res).toBe(Number(out.fd));
  }, 30_000);

  test("kill, tkill and tgkill: target and signal", async () => {
    const { events, out } = await under("kill", ["kill"]);
    const evs = only(events, "kill", Number(out.pid));
    const child = Number(out.child);
    expect(evs.map((e) => [e.syscall, e.target_pid, e.target_tid, e.sig, e.res])).toEqual([
      ["kill", child, 0, 10, 0],
      ["tkill", child, 0, 10, 0],
      ["tgkill", child, child, 15, 0],
    ]);
  }, 30_000);

  test("a set*id call that makes a non-root task root: setid escalation with old and new creds", async () => {
    const { events, out } = await under("privilege_escalation", ["setuid-root", String(NOBODY)]);
    const [e] = only(events, "privilege_escalation", Number(out.pid));
    expect(e).toBeDefined();
    expect(e!.how).toBe("setid");
    expect(e!.syscall).toBe("setuid");
    expect(e!.res).toBe(0);
    expect(e!.old).toEqual({
      uid: NOBODY,
      euid: NOBODY,
      suid: NOBODY,
      fsuid: NOBODY,
      gid: 0,
      egid: 0,
      sgid: 0,
      fsgid: 0,
    });
    expect(e!.new).toEqual({ uid: 0, euid: 0, suid: 0, fsuid: 0, gid: 0, egid: 0, sgid: 0, fsgid: 0 });
    expect(String(e!.pid_tree).startsWith(`${out.pid}.trigger<`)).toBe(true);
    // setresuid to nobody gave nothing: only the step to root is reported.
    expect(only(events, "privilege_escalation", Number(out.pid))).toHaveLength(1);
  }, 30_000);

  test("--uid keeps a watched user's set*id escalation to root: filtered by the uid the call was made as too", async () => {
    const { events, out } = await underAgent(TRIGGER, "privilege_escalation", ["setuid-root", String(NOBODY)], {
      agentArgs: ["--uid", String(NOBODY)],
    });
    const got = only(events, "privilege_escalation", Number(out.pid));
    expect(got.map((e) => [e.how, e.syscall, e.uid, (e.old as { uid: number }).uid])).toEqual([
      ["setid", "setuid", 0, NOBODY],
    ]);
  }, 30_000);

  test("a setuid-root binary run by an unprivileged user: exec escalation", async () => {
    const dir = mkdtempSync("/tmp/ds-suid-");
    dirs.push(dir);
    chmodSync(dir, 0o755);
    const suid = join(dir, "ds-suid-noop");
    copyFileSync(NOOP, suid);
    chownSync(suid, 0, 0);
    chmodSync(suid, 0o4755);
    const { events, trigger } = await under("privilege_escalation,exec", ["as-user", String(NOBODY), suid]);
    const [e] = only(events, "privilege_escalation", trigger);
    expect(e).toBeDefined();
    expect(e!.how).toBe("exec");
    expect(e!.exe).toBe(suid);
    // The trigger dropped to NOBODY for every uid and gid (setgid then setuid); the setuid-root file raised
    // the effective, saved and filesystem uids and nothing else.
    const n = NOBODY;
    expect(e!.old).toEqual({ uid: n, euid: n, suid: n, fsuid: n, gid: n, egid: n, sgid: n, fsgid: n });
    expect(e!.new).toEqual({ uid: n, euid: 0, suid: 0, fsuid: 0, gid: n, egid: n, sgid: n, fsgid: n });
    expect(String(e!.pid_tree).split("<")[0]).toBe(`${trigger}.ds-suid-noop`);
    expect(String(e!.pid_tree).split("<").length).toBeGreaterThan(1);
    const exec = only(events, "exec", trigger).find((x) => x.filename === suid);
    expect(exec?.uid).toBe(NOBODY);
    expect(exec?.euid).toBe(0);
    // Alone (no exec program), and run by fd: execveat, whose exit the kernel reports as execve's.
    const alone = await under("privilege_escalation", ["as-user-fd", String(NOBODY), suid]);
    const [a] = only(alone.events, "privilege_escalation", alone.trigger);
    expect([a?.how, a?.syscall, a?.res, a?.exe]).toEqual(["exec", "execveat", 0, suid]);
    expect(a!.new).toEqual({ uid: n, euid: 0, suid: 0, fsuid: 0, gid: n, egid: n, sgid: n, fsgid: n });
  }, 30_000);

  test("pid_tree over a known 4-level chain, and exec ids that join parent and child", async () => {
    const { events, out } = await under("exec,fork", ["chain", "3", NOOP]);
    const top = Number(out.pid);
    const forks = events.filter((e) => e.event === "fork");
    // Each level forked the next: top -> c1 -> c2 -> c3.
    const chain = [top];
    for (let i = 0; i < 3; i++) {
      const f = forks.find((e) => e.pid === chain[i]);
      expect(f).toBeDefined();
      chain.push(Number(f!.child_pid));
    }
    const exec = events.find((e) => e.event === "exec" && e.pid === chain[3] && e.filename === NOOP);
    expect(exec).toBeDefined();
    const tree = String(exec!.pid_tree).split("<");
    expect(tree.slice(0, 4)).toEqual([
      `${chain[3]}.noop`,
      `${chain[2]}.trigger`,
      `${chain[1]}.trigger`,
      `${top}.trigger`,
    ]);
    // The child's exec_id before it execs is the fork's child_exec_id; its parent_exec_id after is the parent's.
    const lastFork = forks.find((e) => e.pid === chain[2])!;
    const [start, pid] = String(lastFork.child_exec_id).split(":");
    expect(String(exec!.exec_id).startsWith(`${start}:${pid}:`)).toBe(true);
    expect(exec!.parent_exec_id).toBe(lastFork.exec_id);
    const topExec = events.find((e) => e.event === "exec" && e.pid === top);
    expect(forks.find((e) => e.pid === top)!.exec_id).toBe(topExec!.exec_id);
  }, 30_000);

  test("an exec from a memfd and of an unlinked file", async () => {
    const m = await under("exec", ["memfd-exec", NOOP]);
    const me = only(m.events, "exec", Number(m.out.pid)).find((e) => e.args?.[0] === "from-memfd");
    expect(me).toBeDefined();
    expect(String(me!.exe)).toStartWith("/memfd:ds-memfd-exec");
    expect(me!.exe_memfd).toBe(true);
    expect(me!.exe_deleted).toBe(false);
    const u = await under("exec", ["unlinked-exec", NOOP]);
    const ue = only(u.events, "exec", Number(u.out.pid)).find((e) => e.args?.[0] === "from-unlinked");
    expect(ue).toBeDefined();
    expect(ue!.exe).toBe(String(u.out.path));
    expect(ue!.exe_deleted).toBe(true);
    expect(ue!.exe_memfd).toBe(false);
    // A file on disk may be named like a memfd: it is a file, its path shown as any other.
    const dir = mkdtempSync("/tmp/ds-memfd-name-");
    dirs.push(dir);
    const fake = join(dir, "memfd:not-one");
    copyFileSync(NOOP, fake);
    chmodSync(fake, 0o755);
    const f = await underAgent(fake, "exec", []);
    const fe = only(f.events, "exec", f.trigger)[0];
    expect([fe?.exe, fe?.exe_memfd, fe?.exe_deleted, fe?.exe_unreachable]).toEqual([fake, false, false, false]);
  }, 30_000);

  test("exec context: a reverse-shell-like exec with stdin and stdout on a TCP socket to 127.0.0.1", async () => {
    const t = uniqueTrue("dsrsh");
    dirs.push(t.dir);
    let peerPort = 0;
    const server = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          peerPort = s.remotePort;
        },
        data() {},
      },
    });
    const agent = await startAgent(["--json", "--events", "exec"]);
    // The shell names the socket as /proc does ("socket:[inode]"), on its stderr.
    const sh = Bun.spawn(
      ["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${server.port}; readlink /proc/$$/fd/3 >&2; ${t.path} <&3 >&3`],
      { stdout: "ignore", stderr: "pipe" },
    );
    const named = (await new Response(sh.stderr).text()).trim();
    await sh.exited;
    await Bun.sleep(300);
    const run = await agent.stop();
    server.stop(true);
    const e = (parseEvents(run.stdout) as Ev[]).find((x) => x.comm === t.comm);
    expect(e).toBeDefined();
    expect(e!.sa_family).toBe(2);
    expect(e!.sip).toBe("127.0.0.1");
    expect(e!.dip).toBe("127.0.0.1");
    expect(e!.dport).toBe(server.port);
    expect(e!.sport).toBe(peerPort);
    expect(named).toMatch(/^socket:\[\d+\]$/);
    expect(e!.stdin).toBe(named);
    expect(e!.stdout).toBe(e!.stdin);
  }, 30_000);

  test("exec context: SSH_CONNECTION and LD_PRELOAD from the new environment, a pty, and the exe's identity", async () => {
    const agent = await startAgent(["--json", "--events", "exec"]);
    const env = {
      SSH_CONNECTION: "10.1.2.3 50022 10.1.2.4 22",
      LD_PRELOAD: "/tmp/ds-preload.so",
      PATH: "/usr/bin:/bin",
    };
    const p = Bun.spawn([NOOP], { env, stdout: "ignore", stderr: "ignore", stdin: "ignore" });
    await p.exited;
    // script(1) gives the command a pseudo-terminal: its controlling tty and fds 0-1.
    const s = Bun.spawn(["script", "-qec", NOOP, "/dev/null"], { stdout: "ignore", stderr: "ignore", stdin: "ignore" });
    await s.exited;
    await Bun.sleep(300);
    const evs = parseEvents((await agent.stop()).stdout) as Ev[];
    const e = evs.find((x) => x.pid === p.pid && x.filename === NOOP);
    if (e === undefined)
      throw new Error(`no exec of ${NOOP} by ${p.pid} in ${JSON.stringify(evs.map((x) => [x.pid, x.filename]))}`);
    expect(e!.ssh).toBe(env.SSH_CONNECTION);
    expect(e!.ld_preload).toBe(env.LD_PRELOAD);
    expect(e!.env_truncated).toBe(false);
    expect(e!.stdin).toBe("/dev/null");
    expect(e!.stdio_truncated).toBe(false);
    expect(e!.stdio_deleted).toBe(false);
    expect(e!.sa_family).toBe(0);
    const st = statSync(NOOP);
    expect(e!.exe_ino).toBe(String(st.ino));
    // stat's st_dev is the userspace encoding; the kernel's is major << 20 | minor.
    const major = (st.dev >> 8) & 0xfff;
    const minor = (st.dev & 0xff) | ((st.dev >> 12) & 0xfff00);
    expect(e!.exe_dev).toBe(major * 2 ** 20 + minor);
    expect(e!.exe_deleted).toBe(false);
    expect(e!.exe_memfd).toBe(false);
    const pty = evs.find((x) => x.filename === NOOP && x.pid !== p.pid && String(x.tty).startsWith("pts"));
    expect(pty).toBeDefined();
    // The kernel names a pty slave "ptsN"; its device is /dev/pts/N.
    expect(pty!.stdin).toBe(`/dev/pts/${String(pty!.tty).slice(3)}`);
    expect(pty!.stdout).toBe(pty!.stdin);
  }, 30_000);

  // fd text is formatted by hand in BPF (bpf/exec_context.bpf.h): each kind against what the test made, exactly.
  test("exec context: stdin and stdout as /proc names them: a file, a named FIFO, a directory, a pipe, a cut path, an unlinked file", async () => {
    const dir = mkdtempSync("/tmp/ds-fdtext-");
    dirs.push(dir);
    // Past the 31 bytes an earlier build had room for, short of the 255 there are now.
    const file = join(dir, "an-input-file-named-past-the-old-room.txt");
    const fifo = join(dir, "fifo");
    mkdirSync(join(dir, "d".repeat(120)));
    const long = join(dir, "d".repeat(120), `${"f".repeat(140)}.txt`);
    const gone = join(dir, "gone");
    for (const f of [file, long, gone]) writeFileSync(f, "x");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    const agent = await startAgent(["--json", "--events", "exec"]);
    // O_RDWR: a FIFO opened so does not wait for a reader.
    const a = Bun.spawn(["bash", "-c", `exec 3<>${fifo}; exec ${NOOP} <${file} >&3`], { stderr: "ignore" });
    // A pipeline: bash forks NOOP with stdout on an anonymous pipe (Bun's "pipe" would be a socket pair).
    const b = Bun.spawn(["bash", "-c", `${NOOP} <${dir} | cat`], { stdout: "ignore", stderr: "ignore" });
    const c = Bun.spawn(["bash", "-c", `exec ${NOOP} <${long}`], { stdout: "ignore", stderr: "ignore" });
    const d = Bun.spawn(["bash", "-c", `exec <${gone}; rm ${gone}; exec ${NOOP}`], {
      stdout: "ignore",
      stderr: "ignore",
    });
    await Promise.all([a.exited, b.exited, c.exited, d.exited]);
    await Bun.sleep(300);
    const evs = parseEvents((await agent.stop()).stdout) as Ev[];
    const [ea, ec, ed] = [a, c, d].map((p) => evs.find((x) => x.pid === p.pid && x.filename === NOOP));
    const eb = evs.find((x) => x.ppid === b.pid && x.filename === NOOP);
    for (const e of [ea, eb, ec, ed]) expect(e).toBeDefined();
    expect(ea!.stdin).toBe(file);
    expect(ea!.stdout).toBe(fifo);
    expect(ea!.stdio_truncated).toBe(false);
    expect(eb!.stdin).toBe(dir);
    expect(eb!.stdout).toMatch(/^pipe:\[\d+\]$/);
    // Longer than the 255 bytes there is room for: "…" and its last 252 bytes.
    expect(file.length).toBeGreaterThan(31);
    expect(long.length).toBeGreaterThan(255);
    expect(ec!.stdin).toBe(`…${long.slice(-252)}`);
    expect(ec!.stdio_truncated).toBe(true);
    expect(ec!.stdio_deleted).toBe(false);
    expect(ed!.stdin).toBe(gone);
    expect(ed!.stdio_deleted).toBe(true);
    expect(ea!.stdio_deleted).toBe(false);
  }, 30_000);

  test("usermode_helper: the kernel runs a core_pattern pipe helper for a crash", async () => {
    const dir = mkdtempSync("/tmp/ds-umh-");
    dirs.push(dir);
    chmodSync(dir, 0o700);
    const helper = join(dir, "ds-core-helper");
    copyFileSync(NOOP, helper);
    chmodSync(helper, 0o755);
    const PATTERN = "/proc/sys/kernel/core_pattern";
    const saved = readFileSync(PATTERN, "utf8");
    let evs: Ev[];
    try {
      writeFileSync(PATTERN, `|${helper} %p`);
      const agent = await startAgent(["--json", "--events", "exec,usermode_helper"]);
      // A crash: the kernel starts the helper itself (call_usermodehelper), the core on its stdin.
      const crash = Bun.spawn(["bash", "-c", "ulimit -c unlimited; kill -SEGV $$"], {
        stdout: "ignore",
        stderr: "ignore",
      });
      await crash.exited;
      if (crash.signalCode !== "SIGSEGV") throw new Error(`the crash did not happen (exit ${crash.exitCode})`);
      await Bun.sleep(500);
      evs = parseEvents((await agent.stop()).stdout) as Ev[];
    } finally {
      writeFileSync(PATTERN, saved);
    }
    const e = evs.find((x) => x.filename === helper);
    if (e === undefined)
      throw new Error(`no record of ${helper}: ${JSON.stringify(evs.map((x) => [x.event, x.filename]))}`);
    expect(e!.event).toBe("usermode_helper");
    expect(e!.exe).toBe(helper);
    expect((e!.args as string[])[0]).toBe(helper);
    // Reported instead of an exec, not besides one.
    expect(evs.filter((x) => x.event === "exec" && x.filename === helper)).toHaveLength(0);
  }, 30_000);

  test("exit: code and signal", async () => {
    const { events, out } = await under("exit", ["kill"]);
    const child = events.find((e) => e.event === "exit" && e.pid === Number(out.child));
    expect(child).toBeDefined();
    expect(child!.signal).toBe(15);
    expect(child!.exit_code).toBe(0);
    const self = events.find((e) => e.event === "exit" && e.pid === Number(out.pid));
    expect(self!.exit_code).toBe(0);
    expect(self!.signal).toBe(0);
    const missing = await under("exit", ["nonsense"], { expectExit: 2 });
    expect(missing.events.find((e) => e.event === "exit" && e.pid === missing.trigger)?.exit_code).toBe(2);
  }, 30_000);

  test("exit: one record when the process ends, from its last thread, not when its main thread leaves first", async () => {
    // The main thread calls pthread_exit; 100 ms later the other thread calls exit(3).
    const { events, trigger } = await under("exit", ["thread-exit", "3"], { expectExit: 3 });
    const exits = events.filter((e) => e.event === "exit" && e.pid === trigger);
    expect(exits.map((e) => [e.exit_code, e.signal, e.tid === trigger])).toEqual([[3, 0, false]]);
    expect(Number(exits[0]!.runtime_ns)).toBeGreaterThanOrEqual(100e6);
  }, 30_000);

  test("exit: an exec from a second thread ends the old main thread, not the process: no exit record for it", async () => {
    const { events, out } = await under("exec,exit", ["thread-exec", NOOP]);
    const pid = Number(out.pid);
    // The trigger's exec, then NOOP's from its second thread (same pid), then the one exit: NOOP's.
    expect(events.filter((e) => e.pid === pid).map((e) => e.event)).toEqual(["exec", "exec", "exit"]);
    expect(events.find((e) => e.pid === pid && e.event === "exit")!.comm).toBe("noop");
  }, 30_000);
});
