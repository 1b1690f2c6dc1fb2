/**
 * Copy-and-run (issue 3): the compiled executable needs nothing on the host
 * but a kernel with BTF. It runs with the host's libbpf, libelf and zlib
 * hidden and $TMPDIR mounted noexec, loads its libbpf from a memfd and writes
 * no file, works copied alone into an empty directory, takes no code from
 * where it is started, and tells a host it cannot use why in one line.
 *
 * Hiding happens in a private mount namespace (`unshare --mount`); the agent
 * sees it, this test process does not, and inspects the agent through
 * /proc/<pid>/{maps,mountinfo,root}. The execs we look for happen out here:
 * the tracepoint is global, so the agent sees them all the same.
 */
import { afterAll, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  BIN,
  execTimes,
  linesAfterZeroSummary,
  type Proc,
  parseEvents,
  parseSummary,
  spawnProc as spawn,
  uniqueTrue,
  waitAttached,
} from "../helpers/agent.ts";
import { describeKernel } from "../helpers/kernel.ts";

const BIN_SYS = join(import.meta.dir, "../../dual-slot-syslibbpf");
const TRIPLE = process.arch === "arm64" ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
const LIB_DIRS = [`/lib/${TRIPLE}`, `/usr/lib/${TRIPLE}`, "/lib64", "/usr/lib64", "/lib", "/usr/lib"];
const HIDDEN = /^lib(bpf|elf|z)\.so/;

/** The real files behind the host's libbpf.so*, libelf.so* and libz.so* (symlinks resolved, deduplicated). */
function hostLibs(): string[] {
  const out = new Set<string>();
  for (const dir of LIB_DIRS) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      if (!HIDDEN.test(n)) continue;
      try {
        const real = realpathSync(join(dir, n));
        if (statSync(real).isFile()) out.add(real);
      } catch {
        // a dangling symlink: nothing to hide
      }
    }
  }
  return [...out].sort();
}

/**
 * Runs in the new mount namespace, then execs the command (same pid): bind
 * /dev/null over each library, mount a noexec tmpfs as $TMPDIR, and, on
 * request, an empty tmpfs over /sys/kernel/btf (a kernel without BTF).
 */
const NAMESPACE_SCRIPT = `
set -eu
tmp=$1; shift
if [ -n "$DS_HIDE" ]; then
  IFS=: read -r -a libs <<<"$DS_HIDE"
  for f in "\${libs[@]}"; do mount --bind /dev/null "$f"; done
fi
mount -t tmpfs -o noexec,nosuid,nodev,mode=1777,size=16m tmpfs "$tmp"
if [ -n "\${DS_NO_BTF:-}" ]; then mount -t tmpfs -o ro tmpfs /sys/kernel/btf; fi
export TMPDIR="$tmp"
unset DS_HIDE DS_NO_BTF
exec "$@"
`;

function inNamespace(tmp: string, cmd: string[]): string[] {
  return [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "bash",
    "-c",
    NAMESPACE_SCRIPT,
    "copy-and-run",
    tmp,
    ...cmd,
  ];
}

/** Commands here run through the namespace script, which reads DS_HIDE: none hidden by default. */
function spawnProc(cmd: string[], opts: { env?: Record<string, string | undefined>; cwd?: string } = {}): Proc {
  return spawn(cmd, {
    env: opts.env ?? { ...process.env, DS_HIDE: "" },
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  });
}

/** The mount-point field and options of the mount at `where`, from /proc/<pid>/mountinfo. */
function mountOf(pid: number, where: string): { fstype: string; options: string } | null {
  for (const line of readFileSync(`/proc/${pid}/mountinfo`, "utf8").split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-");
    if (f[4] === where && sep > 0) return { fstype: f[sep + 1]!, options: `${f[5]},${f[sep + 3]}` };
  }
  return null;
}

const cleanup: string[] = [];
function scratch(prefix: string, base = tmpdir()): string {
  const d = mkdtempSync(join(base, prefix));
  cleanup.push(d);
  return d;
}

afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

const NEEDS = { executables: [BIN_SYS], commands: ["unshare", "bash", "mount", "setarch", "cc"] };

describeKernel("copy-and-run (root)", NEEDS, () => {
  const libs = hostLibs();

  test("the host has libbpf, libelf and zlib to hide (else this suite proves less)", () => {
    expect(libs.some((l) => /\/libbpf\.so/.test(l))).toBe(true);
    expect(libs.some((l) => /\/libz\.so/.test(l))).toBe(true);
  });

  test("with host libbpf/libelf/zlib hidden and $TMPDIR noexec: attaches, captures an exec, libbpf only from a memfd, no file in $TMPDIR", async () => {
    const tmp = scratch("ds-noexec-", "/tmp");
    const t = uniqueTrue("cr"); // its own directory, outside the noexec tmp
    cleanup.push(t.dir);
    const agent = spawnProc(inNamespace(tmp, [BIN, "--json", "--duration", "60"]), {
      env: { ...process.env, DS_HIDE: libs.join(":") },
    });
    let stopped = false;
    try {
      await waitAttached(agent);
      const pid = agent.pid;

      // The process is the agent itself (bash exec'd it), in the namespace we set up.
      expect(readlinkSync(`/proc/${pid}/exe`)).toBe(realpathSync(BIN));
      for (const lib of libs) {
        expect(statSync(`/proc/${pid}/root${lib}`).isCharacterDevice()).toBe(true); // hidden there
        expect(lstatSync(lib).isFile()).toBe(true); // and only there
      }
      expect(mountOf(pid, tmp)).toMatchObject({ fstype: "tmpfs" });
      expect(mountOf(pid, tmp)!.options.split(",")).toContain("noexec");
      expect(readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")).toContain(`TMPDIR=${tmp}`);

      // libbpf is mapped, from the memfd only; nothing from the hidden files or $TMPDIR.
      const maps = readFileSync(`/proc/${pid}/maps`, "utf8").split("\n").filter(Boolean);
      const paths = [...new Set(maps.map((l) => l.split(/\s+/).slice(5).join(" ")).filter(Boolean))];
      const libbpfMaps = paths.filter((p) => p.includes("libbpf"));
      expect(libbpfMaps.length).toBeGreaterThan(0);
      for (const p of libbpfMaps) expect(p).toStartWith("/memfd:");
      for (const p of paths) {
        expect(p).not.toMatch(/\/lib(elf|z)[.-]/);
        expect(p.startsWith(`${tmp}/`)).toBe(false);
        for (const lib of libs) expect(p).not.toBe(lib);
      }
      expect(readdirSync(`/proc/${pid}/root${tmp}`)).toEqual([]);

      const pids = await execTimes(t.path, 3);
      await Bun.sleep(300); // two drain intervals
      expect(readdirSync(`/proc/${pid}/root${tmp}`)).toEqual([]);

      const { stdout, stderr, code } = await agent.finish("SIGINT");
      stopped = true;
      expect(code).toBe(0);
      const ours = parseEvents(stdout).filter((e) => e.comm === t.comm);
      expect(new Set(ours.map((e) => e.pid))).toEqual(new Set(pids));
      for (const e of ours) {
        expect(e.filename).toBe(t.path);
        expect(e.heap.slot1_intact).toBe(true);
      }
      expect(parseSummary(stderr).lost).toBe("0");
    } finally {
      if (!stopped) await agent.finish("SIGKILL", 5_000);
    }
  }, 60_000);

  test("control: the --system-libbpf build attaches with the host's libbpf visible ...", async () => {
    const p = spawnProc([BIN_SYS, "--json", "--duration", "30"]);
    await waitAttached(p);
    const maps = readFileSync(`/proc/${p.pid}/maps`, "utf8");
    expect(maps).toMatch(/\/libbpf\.so\.1[.\d]*\n/); // from the file system, not a memfd
    expect(maps).not.toContain("/memfd:libbpf");
    const { code } = await p.finish("SIGINT");
    expect(code).toBe(0);
  }, 30_000);

  test("... and fails with one clear line (after its zero summary) when it is hidden", async () => {
    const tmp = scratch("ds-noexec-", "/tmp");
    const p = spawnProc(inNamespace(tmp, [BIN_SYS, "--json", "--duration", "5"]), {
      env: { ...process.env, DS_HIDE: libs.join(":") },
    });
    const { stdout, stderr, code } = await p.finish();
    expect(code).toBe(1);
    expect(stdout).toBe("");
    const lines = linesAfterZeroSummary(stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toStartWith("dual-slot: no trusted libbpf.so.1 in /usr/lib/");
    expect(lines[0]).toContain("(this build does not embed one)");
  }, 30_000);

  test("works copied alone into an empty directory (and writes nothing beside itself)", async () => {
    const dir = scratch("ds-alone-");
    chmodSync(dir, 0o700);
    const exe = join(dir, "dual-slot");
    copyFileSync(BIN, exe);
    chmodSync(exe, 0o755);
    const t = uniqueTrue("ca");
    cleanup.push(t.dir);
    // A minimal environment, $TMPDIR = the directory itself: any extraction would show up there.
    const p = spawnProc([exe, "--json", "--count", "1", "--comm", t.comm], {
      cwd: dir,
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TMPDIR: dir },
    });
    await waitAttached(p);
    expect(readdirSync(dir)).toEqual(["dual-slot"]);
    expect(readFileSync(`/proc/${p.pid}/maps`, "utf8")).toContain("/memfd:libbpf.so");
    // Exec until the agent has printed its one event and stopped.
    const deadline = Date.now() + 15_000;
    const pids: number[] = [];
    while (
      existsSync(`/proc/${p.pid}/status`) &&
      !/State:\s+Z/.test(readFileSync(`/proc/${p.pid}/status`, "utf8")) &&
      Date.now() < deadline
    ) {
      pids.push(...(await execTimes(t.path, 1)));
      await Bun.sleep(100);
    }
    const { stdout, stderr, code } = await p.finish(undefined, 5_000);
    expect(code).toBe(0);
    const events = parseEvents(stdout);
    expect(events).toHaveLength(1);
    expect(events[0]!.comm).toBe(t.comm);
    expect(events[0]!.filename).toBe(t.path);
    expect(pids).toContain(events[0]!.pid);
    expect(parseSummary(stderr).stop).toBe("count");
    expect(readdirSync(dir)).toEqual(["dual-slot"]);
  }, 30_000);

  test("takes no code from its working directory or BUN_OPTIONS (bunfig.toml preload, .env)", async () => {
    const dir = scratch("ds-cwd-");
    chmodSync(dir, 0o755);
    const marker = join(dir, "PRELOAD-RAN");
    const evil = join(dir, "evil.js");
    writeFileSync(evil, `require("fs").writeFileSync(${JSON.stringify(marker)}, String(process.pid));\n`);
    writeFileSync(join(dir, "bunfig.toml"), `preload = [${JSON.stringify(evil)}]\n`);
    writeFileSync(join(dir, ".env"), `BUN_OPTIONS=--preload ${evil}\n`);
    const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };

    const plain = Bun.spawnSync([BIN, "--version"], { cwd: dir, env, stdout: "pipe", stderr: "pipe" });
    expect(plain.exitCode).toBe(0);
    expect(plain.stdout.toString()).toStartWith("dual-slot ");
    expect(existsSync(marker)).toBe(false);

    // Bun reads BUN_OPTIONS in compiled executables too; the build makes it refuse preloads.
    const opt = Bun.spawnSync([BIN, "--version"], {
      cwd: dir,
      env: { ...env, BUN_OPTIONS: `--preload ${evil}` },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(existsSync(marker)).toBe(false);
    expect(opt.exitCode).not.toBe(0);
  });

  // bun:ffi's dlopen of a bare soname that the system cannot resolve retries
  // it in the working directory; libpath.ts therefore opens only absolute
  // paths from trusted library directories.
  test("the --system-libbpf build never loads a libbpf.so.1 planted in its working directory", async () => {
    const cwd = scratch("ds-plant-");
    chmodSync(cwd, 0o755);
    const marker = join(cwd, "PLANTED-RAN");
    writeFileSync(
      join(cwd, "planted.c"),
      `#include <stdio.h>\n__attribute__((constructor)) static void f(void) { FILE *m = fopen(${JSON.stringify(marker)}, "w"); if (m) fclose(m); }\n`,
    );
    const cc = Bun.spawnSync(["cc", "-shared", "-fPIC", "-o", join(cwd, "libbpf.so.1"), join(cwd, "planted.c")], {
      stderr: "pipe",
    });
    expect(cc.exitCode).toBe(0);
    const tmp = scratch("ds-noexec-", "/tmp");
    const p = spawnProc(
      [
        "bash",
        "-c",
        `cd ${JSON.stringify(cwd)} && exec "$@"`,
        "cd",
        ...inNamespace(tmp, [BIN_SYS, "--json", "--duration", "1"]),
      ],
      {
        env: { ...process.env, DS_HIDE: libs.join(":") },
      },
    );
    const { code, stderr } = await p.finish();
    expect(code).toBe(1);
    // It got as far as looking for libbpf (not a namespace script that died first), and refused.
    expect(linesAfterZeroSummary(stderr)).toEqual([
      expect.stringMatching(/^dual-slot: no trusted libbpf\.so\.1 in \/usr\/lib\//),
    ]);
    expect(existsSync(marker)).toBe(false);
    // The control: the planted library does run when something does load it, so the marker can tell.
    writeFileSync(
      join(cwd, "load.c"),
      `#include <dlfcn.h>\nint main(void) { return dlopen(${JSON.stringify(join(cwd, "libbpf.so.1"))}, RTLD_NOW) ? 0 : 1; }\n`,
    );
    const loader = join(cwd, "load");
    expect(Bun.spawnSync(["cc", "-o", loader, join(cwd, "load.c"), "-ldl"]).exitCode).toBe(0);
    expect(Bun.spawnSync([loader]).exitCode).toBe(0);
    expect(existsSync(marker)).toBe(true);
  }, 30_000);

  test("a kernel without BTF gets one line (after its zero summary) naming CONFIG_DEBUG_INFO_BTF", async () => {
    const tmp = scratch("ds-noexec-", "/tmp");
    const p = spawnProc(inNamespace(tmp, [BIN, "--json"]), { env: { ...process.env, DS_HIDE: "", DS_NO_BTF: "1" } });
    const { stdout, stderr, code } = await p.finish();
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(linesAfterZeroSummary(stderr)).toEqual([
      "dual-slot: btf: /sys/kernel/btf/vmlinux missing: the kernel was built without CONFIG_DEBUG_INFO_BTF; " +
        "fix: use a kernel built with CONFIG_DEBUG_INFO_BTF=y (all major distributions since 2020)",
    ]);
  }, 30_000);

  test("a kernel older than 5.19 gets one line (after its zero summary) naming the version and what needs it", async () => {
    // UNAME26 makes uname(2) report 2.6.x: an old kernel, as far as the agent can tell.
    const p = spawnProc(["setarch", process.arch === "arm64" ? "aarch64" : "x86_64", "--uname-2.6", BIN, "--json"]);
    const { stdout, stderr, code } = await p.finish();
    expect(code).toBe(1);
    expect(stdout).toBe("");
    const lines = linesAfterZeroSummary(stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^dual-slot: kernel: 2\.6\.\S+: needs 5\.19\+ \(bpf_loop, dynptr, ring buffer\); fix: boot a kernel 5\.19 or newer$/,
    );
  }, 30_000);
});
