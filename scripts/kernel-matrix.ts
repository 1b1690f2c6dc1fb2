/**
 * The kernel matrix: boots the built ./dual-slot under each pinned Debian
 * kernel (qemu, TCG: nested KVM is not available on CI's VMs) and runs a
 * focused suite there, because the agent claims kernels it was never run on
 * otherwise. Each kernel's package is fetched with `apt-get download` (never
 * installed), its vmlinuz cached; one initramfs holds busybox, the host's
 * loader and libraries, chrt, the agent and test/matrix/init.sh, which runs
 * the cases and relays their output over the serial console. Every check is
 * made here, on the host.
 *
 *   bun scripts/kernel-matrix.ts [--bin ./dual-slot] [--only SUBSTRING] [--jobs N] [--verbose]
 *
 * Boots --jobs kernels at a time (default 1); --verbose streams the guests'
 * consoles, one kernel at a time.
 *
 * Prints one line per kernel ("kernel NAME: N passed, N failed (boot to
 * result T s)") and exits 1 when any check on any kernel failed. .ci/run
 * counts each kernel line as one test.
 */

import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { spawn, spawnSync } from "bun";

interface Kernel {
  /** Debian binary package. */
  pkg: string;
  /** Exact version, as `apt-cache madison PKG` lists it. */
  version: string;
  /** Built with CONFIG_PREEMPT_RT (checked against the package's config). */
  rt: boolean;
}

// Debian 12's own kernels: 6.1 (bookworm's) and 6.12 (bookworm-security's
// backport), each as cloud and PREEMPT_RT flavour. All have
// CONFIG_DEBUG_INFO_BTF=y and are above the agent's 5.19 floor. The security
// archive keeps only recent builds: when a pin disappears from apt's lists,
// move it to what `apt-cache madison` shows (a cached kernel keeps working).
const KERNELS: readonly Kernel[] = [
  { pkg: "linux-image-6.1.0-53-cloud-amd64", version: "6.1.187-1", rt: false },
  { pkg: "linux-image-6.1.0-53-rt-amd64", version: "6.1.187-1", rt: true },
  { pkg: "linux-image-6.12.117+deb12-cloud-amd64", version: "6.12.117-1~deb12u1", rt: false },
  { pkg: "linux-image-6.12.117+deb12-rt-amd64", version: "6.12.117-1~deb12u1", rt: true },
];

const ROOT = resolve(import.meta.dir, "..");
const PREFIX = "DSM";
// A boot takes 35-125 s here (2026-12-05); a guest that stalls (a 6.1 soft lockup under TCG, seen
// once with one guest at a time) is killed after 8 minutes and booted again, which keeps a CI run
// with one stall under its 30 minutes (15 minutes made it 26).
const BOOT_TIMEOUT_MS = 8 * 60_000;
// Execs per lab experiment and per priority loop of the preempt case. TCG runs
// an exec in ~60 ms (200 per step made the lab 125 s of a kernel's 280): the
// lab's verdicts are all-or-nothing (0 or >= 95 % corrupt), and the preempt
// loops interleave on one CPU within their first few execs.
const LAB_EXECS = 60;
const PREEMPT_EXECS = 30;
// Kernels booted at once. Two TCG guests on a 2-CPU host take about the time
// of one each, but in two of four CI runs that way a 6.1 guest stalled in the
// filters case (every program loaded) until the boot timeout, and a 6.12-rt
// guest's last console lines were lost; one at a time never did. With the
// verifier fix a kernel takes 2-7 minutes, so one at a time fits CI's budget.
const DEFAULT_JOBS = 1;

interface Options {
  bin: string;
  only: string | undefined;
  verbose: boolean;
  jobs: number;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { bin: join(ROOT, "dual-slot"), only: undefined, verbose: false, jobs: DEFAULT_JOBS };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--bin") opts.bin = resolve(value());
    else if (a === "--only") opts.only = value();
    else if (a === "--verbose") opts.verbose = true;
    else if (a === "--jobs") {
      const v = value();
      opts.jobs = Number(v);
      if (!/^[1-9][0-9]*$/.test(v)) throw new Error(`--jobs ${v}: want a positive integer`);
    } else
      throw new Error(
        `unknown argument ${a} (usage: kernel-matrix.ts [--bin PATH] [--only SUBSTRING] [--jobs N] [--verbose])`,
      );
  }
  if (opts.verbose) opts.jobs = 1;
  return opts;
}

/** Runs a command to completion; throws with its stderr when it fails. */
function run(cmd: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, { stdout: "pipe", stderr: "pipe", ...(opts.cwd ? { cwd: opts.cwd } : {}) });
  if (r.exitCode !== 0) {
    throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim().slice(-500)}`);
  }
  return r.stdout.toString();
}

function which(name: string): string {
  const r = spawnSync(["sh", "-c", `command -v ${name}`], { stdout: "pipe" });
  const p = r.stdout.toString().trim();
  if (r.exitCode !== 0 || p === "") throw new Error(`${name} not found (bash .ci/setup installs it)`);
  return p;
}

/** The kernel's release name, from its package name (linux-image-RELEASE). */
function release(k: Kernel): string {
  return k.pkg.replace(/^linux-image-/, "");
}

/**
 * vmlinuz for `k`, from the cache or fetched: `apt-get download` of the pinned
 * version into a scratch directory, then only ./boot is extracted from it.
 */
function kernelImage(k: Kernel, cacheRoot: string): string {
  const dir = join(cacheRoot, "kernels", `${k.pkg}_${k.version}`);
  const vmlinuz = join(dir, "vmlinuz");
  if (!existsSync(vmlinuz)) {
    const scratch = mkdtempSync(join(tmpdir(), "ds-kernel-"));
    try {
      // apt drops privileges to _apt for downloads; let it write here.
      chmodSync(scratch, 0o777);
      const get = () =>
        spawnSync(["apt-get", "download", "-q", `${k.pkg}=${k.version}`], { cwd: scratch, stderr: "pipe" });
      let r = get();
      if (r.exitCode !== 0) {
        run(["apt-get", "update", "-qq"]);
        r = get();
      }
      if (r.exitCode !== 0) {
        throw new Error(
          `apt-get download ${k.pkg}=${k.version} failed: ${r.stderr.toString().trim().slice(-300)} ` +
            `(is the pin still in the archive? apt-cache madison ${k.pkg})`,
        );
      }
      const deb = run(["sh", "-c", "ls *.deb"], { cwd: scratch }).trim();
      run(["sh", "-c", `dpkg-deb --fsys-tarfile '${deb}' | tar -x --wildcards './boot/vmlinuz-*' './boot/config-*'`], {
        cwd: scratch,
      });
      const rel = release(k);
      mkdirSync(dir, { recursive: true });
      copyFileSync(join(scratch, "boot", `config-${rel}`), join(dir, "config"));
      // Last, so a partial fetch is never taken for a cached kernel.
      copyFileSync(join(scratch, "boot", `vmlinuz-${rel}`), `${vmlinuz}.tmp`);
      renameSync(`${vmlinuz}.tmp`, vmlinuz);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  const config = readFileSync(join(dir, "config"), "utf8");
  if (!/^CONFIG_DEBUG_INFO_BTF=y$/m.test(config)) throw new Error(`${k.pkg}: no CONFIG_DEBUG_INFO_BTF`);
  if (/^CONFIG_PREEMPT_RT=y$/m.test(config) !== k.rt) throw new Error(`${k.pkg}: CONFIG_PREEMPT_RT is not ${k.rt}`);
  return vmlinuz;
}

/** Shared libraries `bin` loads, loader included, as absolute host paths. */
function sharedLibs(bin: string): string[] {
  const out = run(["ldd", bin]);
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/** Copies a host file to the same path under `root`, following symlinks. */
function stage(root: string, hostPath: string, as = hostPath, mode?: number): void {
  const dst = join(root, as);
  mkdirSync(dirname(dst), { recursive: true });
  copyFileSync(hostPath, dst);
  if (mode !== undefined) chmodSync(dst, mode);
}

/** Builds the one initramfs every kernel boots; returns its path. */
function buildInitramfs(work: string, bin: string): string {
  const root = join(work, "root");
  const busybox = which("busybox");
  const chrt = which("chrt");
  if (spawnSync(["ldd", busybox], { stdout: "pipe", stderr: "pipe" }).exitCode === 0) {
    throw new Error(`${busybox} is not static (install busybox-static)`);
  }
  stage(root, join(ROOT, "test/matrix/init.sh"), "/init", 0o755);
  // The counts the host's checks expect, read by /init.
  writeFileSync(join(root, "matrix.conf"), `LAB_EXECS=${LAB_EXECS}\nPREEMPT_EXECS=${PREEMPT_EXECS}\n`);
  stage(root, busybox, "/bin/busybox", 0o755);
  stage(root, chrt, "/usr/bin/chrt", 0o755);
  stage(root, bin, "/dual-slot", 0o755);
  // The test triggers (static), for the events case.
  const tools = join(ROOT, "out/workloads", process.arch === "arm64" ? "arm64" : "x64");
  for (const t of ["trigger", "io-trigger"]) stage(root, join(tools, t), `/${t}`, 0o755);
  for (const lib of new Set([...sharedLibs(bin), ...sharedLibs(chrt)])) stage(root, lib);
  const image = join(work, "initramfs.cpio");
  // Not compressed: the kernel would inflate the agent's 110 MB under TCG,
  // which took 12.6 s of each boot with gzip -1 against 6.3 s to reach init
  // without; qemu loads the plain archive from the page cache.
  run(["sh", "-c", `find . | cpio -o -H newc --quiet > '${image}'`], { cwd: root });
  rmSync(root, { recursive: true, force: true });
  return image;
}

/** What the guest relayed, grouped by case. */
interface Guest {
  begin: string | undefined;
  ended: boolean;
  /** case → kind (out, err, stats, ...) → lines */
  lines: Map<string, Map<string, string[]>>;
  meta: Map<string, Map<string, string>>;
  status: Map<string, { rc: number; seconds: number }>;
  info: string[];
  /** Serial output that was not ours, kept for the failure report. */
  console: string[];
}

function parseGuest(text: string): Guest {
  const g: Guest = {
    begin: undefined,
    ended: false,
    lines: new Map(),
    meta: new Map(),
    status: new Map(),
    info: [],
    console: [],
  };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    const at = line.indexOf(`${PREFIX} `);
    if (at < 0) {
      g.console.push(line);
      continue;
    }
    // A kernel message may have been printed before ours on the same line.
    const rest = line.slice(at + PREFIX.length + 1);
    const sp = rest.indexOf(" ");
    const kind = sp < 0 ? rest : rest.slice(0, sp);
    const body = sp < 0 ? "" : rest.slice(sp + 1);
    if (kind === "begin") g.begin = body;
    else if (kind === "end") g.ended = true;
    else if (kind === "info") g.info.push(body);
    else if (kind === "meta") {
      const [name = "", ...pairs] = body.split(" ");
      const m = g.meta.get(name) ?? new Map<string, string>();
      for (const p of pairs) {
        const eq = p.indexOf("=");
        if (eq > 0) m.set(p.slice(0, eq), p.slice(eq + 1));
      }
      g.meta.set(name, m);
    } else if (kind === "case") {
      const m = /^(\S+) rc=(\d+) cs=(\d+)$/.exec(body);
      if (m?.[1]) g.status.set(m[1], { rc: Number(m[2]), seconds: Number(m[3]) / 100 });
    } else {
      const sp2 = body.indexOf(" ");
      const name = sp2 < 0 ? body : body.slice(0, sp2);
      const text2 = sp2 < 0 ? "" : body.slice(sp2 + 1);
      const byKind = g.lines.get(name) ?? new Map<string, string[]>();
      byKind.set(kind, [...(byKind.get(kind) ?? []), text2]);
      g.lines.set(name, byKind);
    }
  }
  return g;
}

function caseLines(g: Guest, name: string, kind: string): string[] {
  return g.lines.get(name)?.get(kind) ?? [];
}

/** The agent's `summary:` line as numbers. */
function summary(lines: string[]): Map<string, number> | undefined {
  const line = lines.find((l) => l.startsWith("summary: "));
  if (!line) return undefined;
  const m = new Map<string, number>();
  for (const [, k, v] of line.matchAll(/(\w+)=(\d+)(?=\s|$)/g)) if (k && v) m.set(k, Number(v));
  return m;
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

function jsonLines(lines: string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of lines) {
    try {
      const v: unknown = JSON.parse(l);
      if (v && typeof v === "object" && !Array.isArray(v)) out.push(v as Record<string, unknown>);
    } catch {
      // Not JSON: a log line, reported with the failure.
    }
  }
  return out;
}

function jsonDoc(lines: string[]): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(lines.join("\n"));
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function tail(lines: string[], n = 3): string {
  return lines.slice(-n).join(" | ").slice(0, 400);
}

/**
 * A guest kernel's oops, boiled down to what identifies it: the first report
 * line, the faulting RIP and the call trace's function names. The console's
 * last lines (the panic) say only that it died.
 */
export function oops(lines: string[]): string | undefined {
  const start = lines.findIndex((l) =>
    /\b(BUG:|Oops:|int3: [0-9a-f]{4} \[#|general protection fault|WARNING:|Kernel panic)/.test(l),
  );
  if (start < 0) return undefined;
  const report = lines.slice(start).map((l) => l.replace(/^\[\s*[\d.]+\]\s*/, ""));
  const first = report[0] ?? "";
  // "CPU: 1 UID: 0 PID: 312 Comm: dual-slot ...": who was running.
  const who = report.find((l) => /^CPU: \d+ .*Comm:/.test(l)) ?? "";
  const rip = report.find((l) => l.startsWith("RIP:")) ?? "";
  const trace = report
    .map((l) => /^\s*(?:\? )?([\w.]+\+0x[0-9a-f]+)/.exec(l)?.[1])
    .filter((f): f is string => f !== undefined)
    .slice(0, 24);
  return `${first} | ${who} | ${rip} | trace: ${trace.join(" < ")}`.slice(0, 1500);
}

/** Every check of the suite, from what one kernel relayed. */
function checks(g: Guest, k: Kernel): Check[] {
  const out: Check[] = [];
  const add = (name: string, ok: boolean, detail: string) => out.push({ name, ok, detail });
  const rc = (name: string) => g.status.get(name)?.rc;

  // doctor
  {
    const doc = jsonDoc(caseLines(g, "doctor", "out"));
    const failed = Array.isArray(doc?.failed) ? doc.failed.join(",") : "?";
    add(
      "doctor",
      rc("doctor") === 0 && doc?.ready === true,
      doc ? `ready=${doc.ready} failed=[${failed}]` : `rc=${rc("doctor")} ${tail(caseLines(g, "doctor", "err"))}`,
    );
  }

  // capture: the three probes' exec and exit events, field by field.
  for (const transport of ["perf", "ringbuf"]) {
    const name = `capture-${transport}`;
    const pids = (g.meta.get(name)?.get("pids") ?? "").split(",").filter(Boolean).map(Number);
    const ppid = Number(g.meta.get(name)?.get("ppid"));
    const evs = jsonLines(caseLines(g, name, "out"));
    const bad: string[] = [];
    if (rc(name) !== 0) bad.push(`rc=${rc(name)}`);
    if (pids.length !== 3) bad.push(`${pids.length} probes ran`);
    if (evs.length !== 6) bad.push(`${evs.length} events, want 3 exec + 3 exit`);
    for (const [i, pid] of pids.entries()) {
      for (const type of ["exec", "exit"]) {
        const e = evs.find((x) => x.pid === pid && x.event === type);
        if (!e) {
          bad.push(`no ${type} event for probe ${i + 1} (pid ${pid})`);
          continue;
        }
        // The heap's fields sit in a "heap" object since NDJSON schema 1.
        const h = e.heap && typeof e.heap === "object" ? (e.heap as Record<string, unknown>) : e;
        const wrong: string[] = [];
        if (e.tid !== pid) wrong.push(`tid=${String(e.tid)}`);
        if (e.ppid !== ppid) wrong.push(`ppid=${String(e.ppid)}`);
        if (e.uid !== 0 || e.gid !== 0) wrong.push(`uid/gid=${String(e.uid)}/${String(e.gid)}`);
        if (e.comm !== "dsm-probe") wrong.push(`comm=${JSON.stringify(e.comm)}`);
        if (type === "exec") {
          const want = ["/tmp/dsm-probe", "alpha", "two words", String(i + 1)];
          if (e.filename !== "/tmp/dsm-probe") wrong.push(`filename=${JSON.stringify(e.filename)}`);
          if (e.exe !== "/tmp/dsm-probe") wrong.push(`exe=${JSON.stringify(e.exe)}`);
          if (e.cwd !== "/") wrong.push(`cwd=${JSON.stringify(e.cwd)}`);
          if (JSON.stringify(e.args) !== JSON.stringify(want)) wrong.push(`args=${JSON.stringify(e.args)}`);
          if (e.args_truncated !== false || e.path_truncated !== false) wrong.push("truncated");
        } else {
          // busybox run as an unknown applet exits 127.
          if (e.exit_code !== 127 || e.signal !== 0)
            wrong.push(`exit_code=${String(e.exit_code)} signal=${String(e.signal)}`);
          // The exe at exit: the probe's on 6.16 and later, empty before (no mm left at the tracepoint).
          if (e.exe !== "" && e.exe !== "/tmp/dsm-probe") wrong.push(`exit exe=${JSON.stringify(e.exe)}`);
        }
        if (h.slot1_intact !== true || h.corrupt !== false) wrong.push("slot damage");
        if (h.transport !== transport) wrong.push(`transport=${String(h.transport)}`);
        if (wrong.length) bad.push(`probe ${i + 1} ${type}: ${wrong.join(" ")}`);
      }
    }
    const s = summary(caseLines(g, name, "err"));
    if (!s) bad.push(`no summary: ${tail(caseLines(g, name, "err"))}`);
    else if (s.get("lost") !== 0 || s.get("malformed") !== 0)
      bad.push(`lost=${s.get("lost")} malformed=${s.get("malformed")}`);
    add(
      name,
      bad.length === 0,
      bad.length ? bad.join("; ") : "3/3 execs (pid, ppid, comm, filename, args, exe, cwd) and exits (exit code)",
    );
  }

  // filters: what the kernel-side filters dropped and kept (and that every program loaded with them on)
  {
    const [argvDropped, kept, trusted] = (g.meta.get("filters")?.get("pids") ?? "")
      .split(",")
      .filter(Boolean)
      .map(Number);
    const evs = jsonLines(caseLines(g, "filters", "out"));
    const execOf = (pid: number | undefined) => evs.filter((e) => e.event === "exec" && e.pid === pid);
    const s = summary(caseLines(g, "filters", "err"));
    const bad: string[] = [];
    if (rc("filters") !== 0) bad.push(`rc=${rc("filters")} ${tail(caseLines(g, "filters", "err"))}`);
    if (trusted === undefined) bad.push("the probes did not run");
    if (execOf(argvDropped).length !== 0) bad.push("the --allow-argv exec was reported");
    if (execOf(trusted).length !== 0) bad.push("the --allow-exe exec was reported");
    const k = execOf(kept);
    if (k.length !== 1 || JSON.stringify(k[0]?.args) !== JSON.stringify(["/tmp/dsm-probe", "beta", "2"]))
      bad.push(`kept probe: ${k.length} exec events`);
    // --allow-exe keeps exits on every kernel (documented): before 6.16 the exe is unknown there.
    if (!evs.some((e) => e.event === "exit" && e.pid === trusted)) bad.push("no exit for the trusted binary");
    if (!s || (s.get("filtered_kernel") ?? 0) < 2 || s.get("lost") !== 0)
      bad.push(`filtered_kernel=${s?.get("filtered_kernel")} lost=${s?.get("lost")}`);
    add(
      "filters",
      bad.length === 0,
      bad.join("; ") ||
        `--events all under --uid, --cgroup, --allow-exe, --allow-argv: filtered_kernel=${s?.get("filtered_kernel")}`,
    );
  }

  // teardown after SIGINT (and, before it, after --count)
  {
    const left = caseLines(g, "teardown", "out").filter((l) => l.startsWith("left "));
    const statsRc = g.meta.get("teardown")?.get("stats_rc");
    const statsSays = caseLines(g, "teardown", "stats").join(" ");
    const s = summary(caseLines(g, "teardown", "err"));
    const ok =
      rc("teardown") === 0 && left.length === 0 && statsRc === "1" && /no dual-slot agent/.test(statsSays) && !!s;
    add(
      "teardown",
      ok,
      ok
        ? "no process, no BPF fd, stats finds no agent"
        : `rc=${rc("teardown")} ${left.join(",")} stats_rc=${statsRc} ${statsSays.slice(0, 200)} ${tail(caseLines(g, "teardown", "err"))}`,
    );
  }

  // events: one record of each syscall event type, its key fields.
  {
    const evs = jsonLines(caseLines(g, "events", "out"));
    const bad: string[] = [];
    const find = (type: string, f: (e: Record<string, unknown>) => boolean = () => true) =>
      evs.find(
        (e) =>
          e.event === type && (e.comm === "io-trigger" || e.comm === "trigger" || e.comm === "dsm-renamed") && f(e),
      );
    const want: Array<[string, (e: Record<string, unknown>) => boolean, Record<string, unknown>]> = [
      ["connect", (e) => e.dport === 9, { syscall: "connect", protocol: "udp", dip: "127.0.0.1", res: 0 }],
      ["bind", () => true, { syscall: "bind", family: "inet", sip: "127.0.0.1", res: 0 }],
      ["create_file", () => true, { syscall: "openat", path: "/tmp/ev/new.txt", file_type: "file", mode: "0640" }],
      [
        "rename",
        () => true,
        { syscall: "renameat", old_path: "/tmp/ev/new.txt", new_path: "/tmp/ev/moved.txt", res: 0 },
      ],
      [
        "link",
        (e) => e.kind === "hard",
        { syscall: "link", old_path: "/tmp/ev/moved.txt", new_path: "/tmp/ev/hard", res: 0 },
      ],
      [
        "link",
        (e) => e.kind === "symbolic",
        { syscall: "symlinkat", old_path: "moved.txt", new_path: "/tmp/ev/hard.sym", res: 0 },
      ],
      ["unlink", () => true, { syscall: "unlink", path: "/tmp/ev/hard", res: 0 }],
      [
        "mount",
        () => true,
        { syscall: "mount", source: "ds-tmpfs", mount_point: "/tmp/ev/mnt", fs_type: "tmpfs", res: 0 },
      ],
      [
        "dns",
        () => true,
        { syscall: "sendto", direction: "query", name: "matrix.example", qtype: 1, dport: 53, malformed: false },
      ],
      ["prctl", () => true, { syscall: "prctl", old_name: "trigger", new_name: "dsm-renamed", res: 0 }],
      ["memfd_create", () => true, { syscall: "memfd_create", name: "dsm-memfd" }],
      ["setsid", () => true, { syscall: "setsid" }],
      // A file that is not a module, refused by the kernel (res < 0): the record still names it.
      [
        "load_module",
        (e) => Number(e.res) < 0,
        { syscall: "finit_module", path: "/io-trigger", flags: 0, path_deleted: false, path_unreachable: false },
      ],
    ];
    if (rc("events") !== 0) bad.push(`rc=${rc("events")} ${tail(caseLines(g, "events", "err"))}`);
    for (const [type, which, fields] of want) {
      const e = find(type, which);
      if (!e) {
        bad.push(`no ${type} event`);
        continue;
      }
      const wrong = Object.entries(fields).filter(([k, v]) => e[k] !== v);
      if (wrong.length) bad.push(`${type}: ${wrong.map(([k]) => `${k}=${JSON.stringify(e[k])}`).join(" ")}`);
    }
    const s = summary(caseLines(g, "events", "err"));
    if (s?.get("lost") !== 0 || s.get("malformed") !== 0) bad.push(`summary: ${tail(caseLines(g, "events", "err"))}`);
    add("events", bad.length === 0, bad.join("; ") || `${want.length} records, fields as triggered`);
  }

  // lab thresholds
  {
    const doc = jsonDoc(caseLines(g, "lab", "out"));
    const rows = Array.isArray(doc?.rows) ? (doc.rows as Record<string, unknown>[]) : [];
    const row = (exp: string) => rows.find((r) => r.experiment === exp);
    const n = (r: Record<string, unknown> | undefined, f: string) => (typeof r?.[f] === "number" ? r[f] : Number.NaN);
    const most = Math.ceil(LAB_EXECS * 0.95);
    const bad: string[] = [];
    if (rc("lab") !== 0) bad.push(`rc=${rc("lab")} ${tail(caseLines(g, "lab", "err"))}`);
    // init.sh gives the interrupt-context experiments --irq-execs LAB_EXECS too: TCG is slow.
    for (const r of rows) {
      if (n(r, "events") !== LAB_EXECS || n(r, "lost") !== 0) {
        bad.push(`${r.experiment}: ${n(r, "events")}/${LAB_EXECS} events, lost ${n(r, "lost")}`);
      }
    }
    const want: [string, string, (v: number) => boolean, string][] = [
      ["dual", "corrupt", (v) => v === 0, "0"],
      ["single", "corrupt", (v) => v >= most, `>=${most}`],
      ["nest3 --slots 2", "corrupt", (v) => v >= most, `>=${most}`],
      ["nest3 --slots 3", "corrupt", (v) => v === 0, "0"],
      ["dual --guard", "clobbers_detected", (v) => v === 0, "0"],
      ["dual --guard --inject-clobber", "clobbers_detected", (v) => v >= most, `>=${most}`],
      // Whether an interrupt lands inside an exec program in a TCG guest is luck: only that it ran.
      ["irq --guard", "clobbers_detected", (v) => v >= 0, ">=0"],
      ["irq --guard, a pair per context", "clobbers_detected", (v) => v === 0, "0"],
      ["irq --guard, a pair per context", "corrupt", (v) => v === 0, "0"],
    ];
    for (const [exp, field, pass, text] of want) {
      const v = n(row(exp), field);
      if (!pass(v)) bad.push(`${exp}: ${field}=${v}, want ${text}`);
    }
    add(
      "lab",
      bad.length === 0 && rows.length === new Set(want.map((w) => w[0])).size,
      bad.join("; ") || `${rows.length} experiments`,
    );
  }

  // flood: the other record type, on sys_enter
  {
    const doc = jsonDoc(caseLines(g, "flood", "out"));
    const rows = Array.isArray(doc?.rows) ? (doc.rows as Record<string, unknown>[]) : [];
    const bad: string[] = [];
    if (rc("flood") !== 0 || rows.length !== 2)
      bad.push(`rc=${rc("flood")} rows=${rows.length} ${tail(caseLines(g, "flood", "err"))}`);
    for (const r of rows) {
      if (typeof r.captured !== "number" || r.captured <= 0 || r.lost !== 0 || r.captured !== r.expected) {
        bad.push(`${r.transport}: captured ${r.captured}/${r.expected}, lost ${r.lost}`);
      }
    }
    add(
      "flood",
      bad.length === 0,
      bad.join("; ") || rows.map((r) => `${r.transport} ${r.captured}/${r.expected}`).join(", "),
    );
  }

  // preempt: the guard on execs at several priorities, one CPU
  {
    const s = summary(caseLines(g, "preempt", "err"));
    const meta = g.meta.get("preempt") ?? new Map<string, string>();
    const execs = Number(meta.get("execs"));
    const chrt = meta.get("chrt") ?? "";
    const ok =
      rc("preempt") === 0 &&
      chrt !== "" &&
      !!s &&
      s.get("printed") === execs &&
      s.get("clobbers") === 0 &&
      s.get("corrupt") === 0 &&
      s.get("lost") === 0;
    add(
      "preempt",
      ok,
      s
        ? `${s.get("clobbers")} clobbers, ${s.get("corrupt")} corrupt in ${s.get("printed")}/${execs} execs ` +
            `(SCHED_OTHER + FIFO 10/50/90 on CPU 1${k.rt ? ", PREEMPT_RT" : ""}; involuntary switches: ` +
            `SCHED_OTHER loop ${meta.get("preempted_other") || "?"}, FIFO 10 loop ${meta.get("preempted_fifo10") || "?"})`
        : `rc=${rc("preempt")} chrt=${chrt} ${tail(caseLines(g, "preempt", "err"))}`,
    );
  }
  return out;
}

interface Result {
  kernel: string;
  checks: Check[];
  seconds: number;
  error: string | undefined;
  /** Where the time went, for the report. */
  timing: string;
  /** The guest kernel's oops, when its console shows one. */
  oops?: string | undefined;
  /** The guest never reported its end: killed at BOOT_TIMEOUT_MS, or qemu died. */
  stalled?: boolean;
  /** A first boot whose kernel oopsed or stalled, before the boot this result is of. */
  earlier?: string | undefined;
}

async function boot(k: Kernel, vmlinuz: string, initramfs: string, verbose: boolean): Promise<Result> {
  const started = performance.now();
  const qemu = spawn(
    [
      "qemu-system-x86_64",
      "-accel",
      "tcg",
      // Bun's x64 runtime needs AVX2, which TCG emulates only for -cpu max.
      "-cpu",
      "max",
      "-m",
      // The 110 MB agent lives in the initramfs (RAM) next to its own heap and
      // 4 MiB perf buffers per CPU; 1 GiB guests stalled or panicked in CI
      // once those buffers became the default.
      "2G",
      "-smp",
      "2",
      "-nographic",
      "-no-reboot",
      "-kernel",
      vmlinuz,
      "-initrd",
      initramfs,
      "-append",
      "console=ttyS0 panic=-1 loglevel=1 rdinit=/init",
    ],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  const killer = setTimeout(() => qemu.kill("SIGKILL"), BOOT_TIMEOUT_MS);
  let text = "";
  let ended = -1;
  const decoder = new TextDecoder();
  const reader = qemu.stdout.getReader();
  let partial = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const chunk = decoder.decode(value, { stream: true });
    text += chunk;
    if (verbose) process.stderr.write(chunk);
    partial += chunk;
    if (ended < 0 && new RegExp(`(^|\\n)[^\\n]*${PREFIX} end`).test(partial)) ended = performance.now();
    partial = partial.slice(Math.max(0, partial.lastIndexOf("\n")));
  }
  const code = await qemu.exited;
  clearTimeout(killer);
  const qemuErr = await new Response(qemu.stderr).text();
  const seconds = ((ended > 0 ? ended : performance.now()) - started) / 1000;
  const g = parseGuest(text);
  const crash = oops(g.console);
  let error: string | undefined;
  if (!g.begin)
    error = `the suite never started (qemu exit ${code}): ${tail(g.console.filter(Boolean), 5)} ${qemuErr.trim()}`;
  else if (!g.ended) {
    const last = [...g.status.keys()].at(-1) ?? "none";
    error =
      `the suite did not finish (qemu exit ${code}; timeout ${BOOT_TIMEOUT_MS / 1000} s?) after case ${last}; ` +
      `console: ${crash ?? tail(g.console.filter(Boolean), 5)}`;
  }
  const name = /kernel=(\S+)/.exec(g.begin ?? "")?.[1] ?? release(k);
  if (g.begin && name !== release(k)) error = `booted ${name}, expected ${release(k)}`;
  const all = g.begin ? checks(g, k) : [];
  const init = Number(/uptime_cs=(\d+)/.exec(g.begin ?? "")?.[1]) / 100;
  const cases = [...g.status].map(([c, s]) => `${c} ${s.seconds.toFixed(1)}`).join(", ");
  const timing = `init after ${init.toFixed(1)} s of guest uptime; cases (s): ${cases}`;
  return { kernel: name, checks: all, seconds, error, timing, oops: crash, stalled: g.begin !== undefined && !g.ended };
}

/**
 * An oops that is an int3 trap: what x86 text patching (text_poke_bp) leaves
 * for an instant in code other CPUs may run, which an emulated SMP guest has
 * been seen to execute. The report marks the two kinds apart; exported for
 * the unit test.
 */
export function emulatorArtifact(oops: string): boolean {
  // 6.12 writes "Oops: int3: 0000 [#1] ...", 6.1 "int3: 0000 [#1] ...".
  return /\bint3: [0-9a-f]{4} \[#\d+\]/.test(oops);
}

function oopsKind(o: string): string {
  return emulatorArtifact(o)
    ? "(an int3 trap during code patching: the kind seen before under TCG)"
    : "(NOT an int3 trap: not the known emulator artifact; look at it)";
}

function failures(r: Result): number {
  return r.checks.filter((c) => !c.ok).length + (r.error ? 1 : 0);
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(opts.bin)) throw new Error(`${opts.bin} is missing: run \`bun run build\` first`);
  which("qemu-system-x86_64");
  which("cpio");
  const cacheRoot = process.env.DUAL_SLOT_CACHE || "/var/cache/dual-slot";
  const kernels = KERNELS.filter((k) => opts.only === undefined || k.pkg.includes(opts.only));
  if (kernels.length === 0) throw new Error(`--only ${opts.only} matches no kernel`);

  const t0 = performance.now();
  const work = mkdtempSync(join(tmpdir(), "ds-matrix-"));
  let failedKernels = 0;
  try {
    const images = kernels.map((k) => kernelImage(k, cacheRoot));
    const initramfs = buildInitramfs(work, opts.bin);
    const prepared = (performance.now() - t0) / 1000;
    console.log(`matrix: ${kernels.length} kernels, kernels and initramfs ready in ${prepared.toFixed(1)} s`);
    // Longest first (PREEMPT_RT guests run slower), reported in the pinned order.
    const order = [...kernels.keys()].sort((a, b) => Number(kernels[b]!.rt) - Number(kernels[a]!.rt));
    const results = new Array<Promise<Result>>(kernels.length);
    const done: Array<(r: Result) => void> = [];
    for (const i of kernels.keys()) results[i] = new Promise<Result>((res) => done.push(res));
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let j = next++; j < order.length; j = next++) {
        const i = order[j]!;
        const k = kernels[i]!;
        const once = () =>
          boot(k, images[i]!, initramfs, opts.verbose).catch(
            (err: unknown): Result => ({
              kernel: release(k),
              checks: [],
              seconds: 0,
              error: `qemu: ${err instanceof Error ? err.message : String(err)}`,
              timing: "",
            }),
          );
        let r = await once();
        if (failures(r) > 0 && (r.oops !== undefined || r.stalled === true)) {
          // A guest kernel that oopsed (seen about once in ten CI kernels under TCG, at different cases
          // each time) says nothing of the suite after it: boot it once more, and report the oops
          // either way. Every one in the CI logs so far was an int3 trap while the kernel patched its
          // own code (a tracepoint's static key flipping as a program attached or detached), which
          // the report marks (see emulatorArtifact); any other kind deserves a look. A guest that
          // stopped reporting without an oops is booted again too (seen once in about twenty 6.1-rt
          // boots, after a case that had passed): each case's agent runs under `timeout -k`, so an
          // agent that hangs ends its case with rc 124 or 137 and cannot stall the guest, and what
          // stalls it is the emulated kernel. The first boot's failure is reported either way.
          const first =
            r.oops !== undefined
              ? `the guest kernel oopsed (${r.error ?? "a case failed"}): ${r.oops} ${oopsKind(r.oops)}`
              : `the guest stalled: ${r.error ?? "no end line"}`;
          console.log(`kernel ${r.kernel}: ${first}; booting it again`);
          r = { ...(await once()), earlier: first };
        }
        done[i]!(r);
      }
    };
    const workers = Array.from({ length: Math.min(opts.jobs, kernels.length) }, worker);
    for (const p of results) {
      const r = await p;
      const failed = failures(r);
      const passed = r.checks.filter((c) => c.ok).length;
      if (failed > 0) failedKernels++;
      console.log(`kernel ${r.kernel}: ${passed} passed, ${failed} failed (boot to result ${r.seconds.toFixed(1)} s)`);
      if (r.earlier) console.log(`  NOTE first boot: ${r.earlier}`);
      if (r.error) console.log(`  FAIL boot: ${r.error}`);
      else if (r.oops) console.log(`  NOTE the guest kernel oopsed during the suite: ${r.oops} ${oopsKind(r.oops)}`);
      console.log(`  time: ${r.timing}`);
      for (const c of r.checks) console.log(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
    }
    await Promise.all(workers);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log(
    `matrix: ${kernels.length - failedKernels} of ${kernels.length} kernels passed in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  return failedKernels > 0 ? 1 : 0;
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.log(`matrix: error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(2);
    },
  );
}
