/**
 * `dual-slot service` (src/service/): the unit verified by systemd-analyze
 * (exit code and no warnings, since it exits 0 on values it ignores),
 * install/uninstall/status under --root (files, modes, idempotence, nothing
 * left behind), and the command through the compiled executable.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  chownSync,
  cpSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HostError, UsageError } from "../../src/errors.ts";
import { checkRunWords } from "../../src/run/command.ts";
import { install, processesOf, realSystemctl, type ServiceEnv, status, uninstall } from "../../src/service/command.ts";
import {
  BINARY_PATH,
  DEFAULT_ARGS,
  outputPath,
  quoteExecArg,
  renderUnit,
  splitArgs,
  UNIT_PATH,
  WANTS_PATH,
} from "../../src/service/unit.ts";
import { BIN } from "../helpers/agent.ts";
import { inCi, rootTest } from "../helpers/kernel.ts";

const base = mkdtempSync(join(tmpdir(), "dual-slot-service-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let roots = 0;
const freshRoot = (): string => {
  const r = join(base, `root${roots++}`);
  mkdirSync(r, { mode: 0o755 });
  return r;
};

/** A stand-in for the running executable: any file of a plausible size. */
const fakeExe = join(base, "fake-exe");
writeFileSync(fakeExe, Buffer.alloc(64 * 1024, 0x7f));

const isRoot = process.geteuid?.() === 0;
const hasSystemd = Bun.which("systemctl") !== null && Bun.which("systemd-analyze") !== null;
/** Needs root (files owned by 0) and systemd's tools; under CI their absence fails. */
const sysTest = isRoot && hasSystemd ? test : inCi() ? test : test.skip;
function requireSystem(): void {
  if (!isRoot) throw new Error("needs root (run the tests as root)");
  if (!hasSystemd) throw new Error("systemctl/systemd-analyze not on $PATH (run .ci/setup: Debian package systemd)");
}

function envAt(root: string, lines: string[] = []): ServiceEnv {
  return {
    root,
    live: false,
    source: fakeExe,
    systemdRunning: false,
    systemctl: realSystemctl,
    say: (l) => lines.push(l),
  };
}

/** Every file and symlink under `dir` (directories left out), relative. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), join(rel, e.name));
      else out.push(join(rel, e.name));
    }
  };
  walk(dir, "");
  return out.sort();
}

/**
 * systemd-analyze verify against `root`: it resolves ExecStart and the
 * targets there, so the root gets the host's unit directory and kill(1).
 */
function verify(root: string): { code: number; output: string } {
  mkdirSync(join(root, "usr/lib/systemd"), { recursive: true });
  if (!existsSync(join(root, "usr/lib/systemd/system")))
    cpSync("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), { recursive: true });
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  if (!existsSync(join(root, "usr/bin/kill"))) cpSync(Bun.which("kill") ?? "/usr/bin/kill", join(root, "usr/bin/kill"));
  for (const l of ["bin", "lib"]) if (!existsSync(join(root, l))) symlinkSync(`usr/${l}`, join(root, l));
  const r = Bun.spawnSync(["systemd-analyze", "verify", `--root=${root}`, "dual-slot.service"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode ?? 1, output: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
}

describe("unit text", () => {
  test("args split like a shell, without expansion", () => {
    expect(splitArgs(DEFAULT_ARGS)).toEqual(["--json", "--output", "/var/log/dual-slot/events.json"]);
    expect(splitArgs(` --comm 'a b'  --pid=1 "x\\"y" $HOME `)).toEqual(["--comm", "a b", "--pid=1", 'x"y', "$HOME"]);
    expect(splitArgs("--comm ''")).toEqual(["--comm", ""]);
    expect(() => splitArgs("--comm 'a")).toThrow(UsageError);
    expect(() => splitArgs("x\\")).toThrow(UsageError);
  });

  test("ExecStart words reach the agent as written: quotes, %, $ escaped; control characters refused", () => {
    expect(quoteExecArg("--json")).toBe("--json");
    expect(quoteExecArg("a b")).toBe('"a b"');
    expect(quoteExecArg('x"\\')).toBe('"x\\"\\\\"');
    expect(quoteExecArg("100%")).toBe("100%%");
    expect(quoteExecArg("$HOME")).toBe("$$HOME");
    expect(quoteExecArg("")).toBe('""');
    expect(() => quoteExecArg("a\nExecStartPre=/bin/sh")).toThrow(UsageError);
  });

  test("the kernel-side filter flags reach ExecStart as given, a command line as one word", () => {
    const args = splitArgs(
      `--json --uid 0,1000 --allow-argv "/usr/bin/python3 -m http.server" --allow-argv '/bin/x y' --allow-exe-file /etc/dual-slot/trusted --cgroup /sys/fs/cgroup/system.slice`,
    );
    expect(renderUnit({ binary: BINARY_PATH, args })).toContain(
      `ExecStart=${BINARY_PATH} run --json --uid 0,1000 --allow-argv "/usr/bin/python3 -m http.server" --allow-argv "/bin/x y" --allow-exe-file /etc/dual-slot/trusted --cgroup /sys/fs/cgroup/system.slice\n`,
    );
  });

  test("the output's directory is writable; a relative --output is refused", () => {
    expect(outputPath(["--json", "--output", "/srv/x.json"])).toBe("/srv/x.json");
    expect(outputPath(["--output=/srv/y"])).toBe("/srv/y");
    const unit = renderUnit({ binary: BINARY_PATH, args: ["--output", "/srv/ev/x.json"] });
    expect(unit).toContain("ReadWritePaths=/var/log/dual-slot /srv/ev\n");
    expect(unit).toContain("ExecReload=/bin/kill -HUP $MAINPID");
    // Without --output, SIGHUP stops the agent: no reload that would end it.
    expect(renderUnit({ binary: BINARY_PATH, args: ["--json"] })).not.toContain("ExecReload");
    expect(() => renderUnit({ binary: BINARY_PATH, args: ["--output", "ev.json"] })).toThrow(UsageError);
  });

  test("the ClickHouse sink's --spool: its parent is writable (optional), a relative one is refused", () => {
    const args = ["--sink", "clickhouse+http://ch:8123/db.events", "--spool", "/var/lib/dual-slot/spool"];
    expect(renderUnit({ binary: BINARY_PATH, args })).toContain(
      "ReadWritePaths=/var/log/dual-slot -/var/lib/dual-slot\n",
    );
    expect(() => renderUnit({ binary: BINARY_PATH, args: ["--spool=spool"] })).toThrow(UsageError);
  });

  test("--output or --spool under /tmp or /var/tmp is refused: PrivateTmp=yes deletes it at every stop", () => {
    for (const args of [
      ["--output", "/tmp/ev.json"],
      ["--output=/var/tmp/ds/ev.json"],
      ["--sink", "clickhouse+http://ch:8123/db.events", "--spool", "/var/tmp/ds"],
      ["--spool", "/tmp//x/../spool"],
    ])
      expect(() => renderUnit({ binary: BINARY_PATH, args })).toThrow(/private directory systemd deletes/);
    expect(renderUnit({ binary: BINARY_PATH, args: ["--output", "/tmpfiles/ev.json"] })).toContain("/tmpfiles");
  });

  test("the directives the brief asks for", () => {
    const unit = renderUnit({ binary: BINARY_PATH, args: splitArgs(DEFAULT_ARGS) });
    for (const line of [
      "Type=simple",
      "ExecStart=/usr/local/sbin/dual-slot run --json --output /var/log/dual-slot/events.json",
      "Restart=on-failure",
      "RestartSec=5s",
      "CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_ADMIN CAP_SYS_RESOURCE",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ReadWritePaths=/var/log/dual-slot",
      "ProtectHome=read-only",
      "PrivateTmp=yes",
      "LogsDirectory=dual-slot",
      // The CO-RE cut's cache: writable under ProtectSystem=strict, root's alone, kept across restarts.
      "RuntimeDirectory=dual-slot",
      "RuntimeDirectoryMode=0700",
      "RuntimeDirectoryPreserve=yes",
      "LogRateLimitIntervalSec=0",
      // Bun's once-a-second collection off: idle CPU (test/kernel/service-mode.test.ts checks its effect).
      "Environment=BUN_GC_TIMER_DISABLE=1",
      "WantedBy=multi-user.target",
    ])
      expect(unit.split("\n")).toContain(line);
  });
});

describe("--args: what run would refuse fails the install (exit 2 is never restarted: the agent would stay down)", () => {
  test("on this host, every check run makes before it touches the host", () => {
    for (const [words, why] of [
      [["--bogus"], /unknown flag '--bogus'/],
      [["doctor"], /unexpected argument 'doctor'/],
      [["--duration", "abc"], /--duration/],
      [["--count", "0"], /--count/],
      [["--transport", "nope"], /--transport must be one of/],
      [["--spool", "/var/lib/ds"], /--spool needs --sink/],
    ] as const)
      expect(() => checkRunWords(words)).toThrow(why);
    expect(() => checkRunWords(splitArgs(DEFAULT_ARGS))).not.toThrow();
  });

  test("under --root, the command line's shape (the files it names are the image's)", () => {
    const root = freshRoot();
    for (const args of ["--json --bogus", "doctor", "--count"])
      expect(() => install(envAt(root), { args, start: false })).toThrow(UsageError);
    expect(existsSync(join(root, UNIT_PATH))).toBe(false);
  });
});

describe("install, status, uninstall under --root", () => {
  sysTest("systemd-analyze verify: the installed unit, exit 0 and no warning", () => {
    requireSystem();
    const root = freshRoot();
    install(envAt(root), { args: `${DEFAULT_ARGS} --comm "a b" --pid 100%`, start: false });
    const r = verify(root);
    expect(r.output).toBe("");
    expect(r.code).toBe(0);
    // The check does catch a bad value, which systemd-analyze reports but exits 0 on.
    const unitPath = join(root, UNIT_PATH);
    writeFileSync(unitPath, readFileSync(unitPath, "utf8").replace("RestartSec=5s", "RestartSec=5q"));
    expect(verify(root).output).toContain("Failed to parse sec value, ignoring: 5q");
  });

  sysTest("files, modes, enable offline, idempotence, status, and nothing left after uninstall", () => {
    requireSystem();
    const root = freshRoot();
    const lines: string[] = [];
    const env = envAt(root, lines);
    install(env, { args: DEFAULT_ARGS, start: true });
    const bin = statSync(join(root, BINARY_PATH));
    expect([bin.uid, bin.gid, bin.mode & 0o7777]).toEqual([0, 0, 0o755]);
    expect(Buffer.compare(readFileSync(join(root, BINARY_PATH)), readFileSync(fakeExe))).toBe(0);
    const unit = statSync(join(root, UNIT_PATH));
    expect([unit.uid, unit.mode & 0o7777]).toEqual([0, 0o644]);
    expect(readFileSync(join(root, UNIT_PATH), "utf8")).toBe(
      renderUnit({ binary: BINARY_PATH, args: splitArgs(DEFAULT_ARGS) }),
    );
    expect(lstatSync(join(root, WANTS_PATH)).isSymbolicLink()).toBe(true);
    expect(files(root)).toEqual([BINARY_PATH, WANTS_PATH, UNIT_PATH].map((p) => p.slice(1)).sort());
    expect(lines.join("\n")).toMatch(/^installed: .*\nwrote: .*\nenabled: /);

    // Again: nothing changes, nothing left over from the atomic writes.
    lines.length = 0;
    install(env, { args: DEFAULT_ARGS, start: true });
    expect(lines[0]).toStartWith("unchanged: ");
    expect(lines[1]).toStartWith("unchanged: ");
    expect(files(root)).toHaveLength(3);

    // A new binary replaces the old one.
    writeFileSync(join(root, BINARY_PATH), "old");
    lines.length = 0;
    install(env, { args: DEFAULT_ARGS, start: false });
    expect(lines[0]).toStartWith("installed: ");
    expect(statSync(join(root, BINARY_PATH)).size).toBe(64 * 1024);

    lines.length = 0;
    const s = status(env);
    expect(s).toEqual({ installed: true, running: false });
    expect(lines.join("\n")).toContain("same as this executable");
    expect(lines.join("\n")).toContain("enabled; ExecStart=/usr/local/sbin/dual-slot run --json");

    uninstall(env);
    expect(files(root)).toEqual([]);
    // Idempotent: uninstalling again reports and succeeds.
    lines.length = 0;
    uninstall(env);
    expect(lines.filter((l) => l.startsWith("not installed: "))).toHaveLength(2);
    expect(status(env)).toEqual({ installed: false, running: false });
  });

  test("refuses a target directory another user can write", () => {
    const root = freshRoot();
    mkdirSync(join(root, "usr/local/sbin"), { recursive: true, mode: 0o777 });
    Bun.spawnSync(["chmod", "0777", join(root, "usr/local/sbin")]);
    expect(() => install(envAt(root), { args: DEFAULT_ARGS, start: false })).toThrow(/writable by every user/);
    expect(files(root)).toEqual([]);
  });

  test("the live system without systemd as init: files written, then a one-line error; --no-start succeeds", () => {
    const root = freshRoot();
    const calls: string[][] = [];
    const env: ServiceEnv = {
      ...envAt(root),
      live: true,
      systemctl: (a) => {
        calls.push([...a]);
        return { code: 0, output: "" };
      },
    };
    expect(() => install(env, { args: DEFAULT_ARGS, start: true })).toThrow(HostError);
    expect(() => install(env, { args: DEFAULT_ARGS, start: true })).toThrow(/systemd is not running/);
    expect(existsSync(join(root, BINARY_PATH)) && existsSync(join(root, UNIT_PATH))).toBe(true);
    install(env, { args: DEFAULT_ARGS, start: false });
    expect(calls).toEqual([]);
    // Uninstall without systemd running disables offline, then removes the files.
    uninstall(env);
    expect(calls).toEqual([[`--root=${root}`, "disable", "dual-slot.service"]]);
    expect(files(root)).toEqual([]);
  });

  test("the live system under systemd: reload, enable, start (restart when something changed), stop on uninstall", () => {
    const root = freshRoot();
    const calls: string[] = [];
    const env: ServiceEnv = {
      ...envAt(root),
      live: true,
      systemdRunning: true,
      systemctl: (a) => {
        calls.push(a.join(" "));
        return a[0] === "is-active" ? { code: 3, output: "inactive" } : { code: 0, output: "" };
      },
    };
    install(env, { args: DEFAULT_ARGS, start: true });
    expect(calls).toEqual(["daemon-reload", "enable dual-slot.service", "restart dual-slot.service"]);
    calls.length = 0;
    install(env, { args: DEFAULT_ARGS, start: true });
    expect(calls).toEqual(["daemon-reload", "enable dual-slot.service", "start dual-slot.service"]);
    calls.length = 0;
    expect(status(env)).toEqual({ installed: true, running: false });
    expect(calls).toEqual(["is-active dual-slot.service"]);
    calls.length = 0;
    uninstall(env);
    expect(calls).toEqual(["disable --now dual-slot.service", "daemon-reload"]);
    expect(files(root)).toEqual([]);
    // A failing systemctl is one line naming the call.
    const failing: ServiceEnv = { ...env, systemctl: () => ({ code: 1, output: "Failed to enable unit: boom\nmore" }) };
    expect(() => install(failing, { args: DEFAULT_ARGS, start: true })).toThrow(
      "systemctl daemon-reload failed (exit 1): Failed to enable unit: boom",
    );
  });
});

describe("through the compiled executable", () => {
  const ready = isRoot && hasSystemd && existsSync(BIN);
  const t = ready ? test : inCi() ? test : test.skip;
  t("service install --root, status, uninstall --root; a bare `service` is a usage error", () => {
    if (!existsSync(BIN)) throw new Error(`${BIN} missing (bun run build)`);
    requireSystem();
    const root = freshRoot();
    const run = (...args: string[]) => {
      const r = Bun.spawnSync([BIN, "service", ...args], { stdout: "pipe", stderr: "pipe" });
      return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
    };
    const i = run("install", "--root", root);
    expect(i.err).toBe("");
    expect(i.code).toBe(0);
    expect(Buffer.compare(readFileSync(join(root, BINARY_PATH)), readFileSync(BIN))).toBe(0);
    expect(statSync(join(root, BINARY_PATH)).mode & 0o7777).toBe(0o755);
    expect(lstatSync(join(root, WANTS_PATH)).isSymbolicLink()).toBe(true);
    const s = run("status", "--root", root);
    expect(s.out).toContain("same as this executable");
    expect(s.code).toBe(1); // installed, not running
    expect(s.err).toContain("installed but not running");
    const u = run("uninstall", "--root", root);
    expect(u.code).toBe(0);
    expect(files(root)).toEqual([]);
    const bare = run();
    expect(bare.code).toBe(2);
    expect(bare.err).toContain("install, uninstall or status");
    expect(run("install", "--root", root, "--bogus").code).toBe(2);
  });
});

test("status counts root's processes of the installed binary only: anyone may run it (and stop it) to look like the agent", () => {
  const proc = mkdtempSync(join(tmpdir(), "ds-proc-"));
  const bin = "/usr/local/sbin/dual-slot";
  const fake = (pid: number, exe: string, uid: string) => {
    mkdirSync(join(proc, String(pid)));
    symlinkSync(exe, join(proc, String(pid), "exe"));
    writeFileSync(join(proc, String(pid), "status"), `Name:\tdual-slot\nUid:\t${uid}\nGid:\t0\t0\t0\t0\n`);
  };
  fake(10, bin, "0\t0\t0\t0");
  fake(11, bin, "65534\t65534\t65534\t65534");
  fake(12, "/usr/bin/true", "0\t0\t0\t0");
  fake(13, bin, "1000\t0\t0\t0"); // a setuid start: root's effective uid is the agent's
  mkdirSync(join(proc, "self"));
  expect(processesOf(bin, proc).sort()).toEqual([10, 13]);
  rmSync(proc, { recursive: true, force: true });
});

rootTest(
  "uninstall --root refuses a tree whose directories are another user's symlinks: the host's own files stay",
  () => {
    const base = mkdtempSync(join(tmpdir(), "ds-uninst-"));
    // The host's real unit and binary, as another user's tree points at them.
    const victim = join(base, "victim");
    mkdirSync(join(victim, "etc/systemd/system"), { recursive: true });
    mkdirSync(join(victim, "usr/local/sbin"), { recursive: true });
    const unit = join(victim, "etc/systemd/system/dual-slot.service");
    const bin = join(victim, "usr/local/sbin/dual-slot");
    writeFileSync(unit, "[Unit]\n");
    writeFileSync(bin, "bin");
    const img = join(base, "their-image");
    mkdirSync(img);
    chownSync(img, 1000, 1000);
    for (const d of ["etc", "usr"]) {
      symlinkSync(join(victim, d), join(img, d));
      lchownSync(join(img, d), 1000, 1000);
    }
    const env: ServiceEnv = { ...envAt(img), systemctl: () => ({ code: 0, output: "" }) };
    expect(() => uninstall(env)).toThrow(/is a symlink owned by uid 1000|is owned by uid 1000/);
    expect([existsSync(unit), existsSync(bin)]).toEqual([true, true]);
    rmSync(base, { recursive: true, force: true });
  },
);
