/**
 * The systemd unit `dual-slot service install` writes: the agent as a
 * long-running service, sandboxed down to what loading BPF and reading the
 * buffers need. Pure text, so tests verify it with systemd-analyze.
 */
import { dirname, posix } from "node:path";
import { UsageError } from "../errors.ts";

export const UNIT_NAME = "dual-slot.service";
export const BINARY_PATH = "/usr/local/sbin/dual-slot";
export const UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`;
/** Where `systemctl enable` puts its symlink (the unit's WantedBy). */
export const WANTS_PATH = `/etc/systemd/system/multi-user.target.wants/${UNIT_NAME}`;
export const LOG_DIR = "/var/log/dual-slot";
export const DEFAULT_ARGS = "--json --output /var/log/dual-slot/events.json";

/**
 * The environment the unit starts the agent in (Bun reads it before any of
 * our code runs, so the agent cannot set it for itself). BUN_GC_TIMER_DISABLE:
 * no collection by Bun once a second for the 30 s after the heap last changed
 * (an eden collection each, 0.86-1.06 ms/s of an idle agent's CPU, and now and
 * then a full one landing in an idle second); JavaScriptCore still collects
 * as the agent allocates. `bun run bench -- --only=agent --compare-cli`
 * (2026-12-08 00:36, exec storm, 3 rounds, medians per configuration): idle
 * after the warm-up 0.29-0.60 ms/s against 1.34-1.46, after the storms
 * 0.76-2.08 against 1.68-2.05; RSS after attach, peak RSS and CPU per event
 * unchanged; a minute after the storms, 1.3-2 MiB more RSS (the ring buffer's
 * agent, garbage nothing collects while idle). The exec storm benchmark starts
 * the agent in this environment too.
 */
export const SERVICE_ENVIRONMENT: Readonly<Record<string, string>> = { BUN_GC_TIMER_DISABLE: "1" };
/** The same names, unset: an environment to start the agent in as `sudo ./dual-slot` is (benchmarks, tests). */
export const WITHOUT_SERVICE_ENVIRONMENT: Readonly<Record<string, undefined>> = Object.fromEntries(
  Object.keys(SERVICE_ENVIRONMENT).map((k) => [k, undefined]),
);

/**
 * Splits `--args "..."` as a shell would for plain words and quotes: blanks
 * separate, '...' is literal, "..." and a backslash escape one character.
 * No expansion of any kind.
 */
export function splitArgs(raw: string): string[] {
  const out: string[] = [];
  let cur: string | null = null;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (c === "\\") {
      const next = raw[++i];
      if (next === undefined) throw new UsageError("--args ends with a lone backslash");
      cur = (cur ?? "") + next;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      cur ??= "";
    } else if (c === " " || c === "\t" || c === "\n") {
      if (cur !== null) out.push(cur);
      cur = null;
    } else {
      cur = (cur ?? "") + c;
    }
  }
  if (quote !== null) throw new UsageError(`--args has an unterminated ${quote} quote`);
  if (cur !== null) out.push(cur);
  return out;
}

/**
 * One ExecStart word: bare when safe, else double-quoted with systemd's C
 * escapes. `%` (specifiers) and `$` (variable expansion) are doubled so a
 * value reaches the agent as written. Control characters are refused: no
 * flag of the agent takes one, and a line feed would end the directive.
 */
export function quoteExecArg(a: string): string {
  if (/[\x00-\x1f\x7f]/.test(a)) throw new UsageError(`--args: a control character in '${JSON.stringify(a)}'`);
  const escaped = a.replaceAll("%", "%%").replaceAll("$", "$$$$");
  if (a !== "" && /^[A-Za-z0-9_@%+=:,./$-]+$/.test(a)) return escaped;
  return `"${escaped.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The value of `--output` in the run flags, if any (`--output X` or `--output=X`). */
export function outputPath(args: readonly string[], flag = "output"): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") return undefined;
    if (a === `--${flag}`) return args[i + 1];
    if (a.startsWith(`--${flag}=`)) return a.slice(flag.length + 3);
  }
  return undefined;
}

/**
 * The unit has PrivateTmp=yes: under /tmp or /var/tmp the service writes into
 * a directory of its own that systemd deletes when the unit stops, so events
 * and spooled batches would vanish with no count.
 */
function refusePrivateTmp(flag: string, path: string): void {
  const p = posix.normalize(path);
  for (const tmp of ["/tmp", "/var/tmp"])
    if (p === tmp || p.startsWith(`${tmp}/`))
      throw new UsageError(
        `--args: ${flag} ${path} is under ${tmp}, which the service sees as a private directory systemd deletes at every stop: use a directory under /var/log or /var/lib`,
      );
}

export interface UnitOptions {
  /** Absolute path of the agent on the target system. */
  binary: string;
  /** `run` flags, one word each. */
  args: readonly string[];
}

export function renderUnit({ binary, args }: UnitOptions): string {
  if (!posix.isAbsolute(binary)) throw new UsageError(`the service binary must be an absolute path, got '${binary}'`);
  const output = outputPath(args);
  if (output !== undefined && !posix.isAbsolute(output))
    throw new UsageError(`--args: --output must be an absolute path for a service, got '${output}'`);
  if (output !== undefined) refusePrivateTmp("--output", output);
  // ProtectSystem=strict makes everything read-only; the output's directory
  // must be writable too when it is not the logs directory.
  const writable = [LOG_DIR];
  if (output !== undefined) {
    const dir = dirname(output);
    if (dir !== LOG_DIR && !dir.startsWith(`${LOG_DIR}/`)) writable.push(dir);
  }
  // --spool DIR (the ClickHouse sink's queue): the agent creates DIR, so its parent must be writable.
  const spool = outputPath(args, "spool");
  if (spool !== undefined) {
    if (!posix.isAbsolute(spool))
      throw new UsageError(`--args: --spool must be an absolute path for a service, got '${spool}'`);
    refusePrivateTmp("--spool", spool);
    writable.push(`-${dirname(spool)}`); // "-": a parent that is missing is the agent's one-line error, not systemd's
  }
  const exec = [binary, "run", ...args].map(quoteExecArg).join(" ");
  return `# Written by \`dual-slot service install\`; \`dual-slot service uninstall\` removes it.
[Unit]
Description=dual-slot exec event agent (eBPF)
Documentation=https://github.com/bytedance/Elkeid
After=local-fs.target
# A host that cannot run the agent fails fast and stays failed after 5 tries in 10 minutes.
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=simple
ExecStart=${exec}
${output !== undefined ? "# SIGHUP reopens --output (for logrotate's postrotate and systemctl reload).\nExecReload=/bin/kill -HUP $MAINPID\n" : ""}Restart=on-failure
RestartSec=5s
# Exit 2 is a bad flag: restarting cannot fix it.
RestartPreventExitStatus=2
# Exit 3 is a clean stop after losing events (counted in the summary line): not a failure.
SuccessExitStatus=3
TimeoutStopSec=30s
# Bun's once-a-second collection off: it was most of an idle agent's CPU.
${Object.entries(SERVICE_ENVIRONMENT)
  .map(([k, v]) => `Environment=${k}=${v}`)
  .join("\n")}
# No MIMALLOC_PURGE_DELAY=-1: bun run bench (2026-12-04, exec storm, 5 paired
# rounds) put it at +23 MiB RSS after attach and +18 MiB at peak, for 5 % less
# CPU per event and 1.6 ms/s less when idle.

# stderr carries the agent's warnings and its summary line: never rate-limited away.
StandardError=journal
LogRateLimitIntervalSec=0

# Privileges: root, with only what loading and reading BPF needs.
# CAP_BPF+CAP_PERFMON: load programs, attach the raw tracepoint, open the perf buffers.
# CAP_SYS_ADMIN: bpf_enable_stats (BPF run time for --metrics); older kernels also need it for BPF.
# CAP_SYS_RESOURCE: raise RLIMIT_MEMLOCK (perf buffers are charged to it).
# Not CAP_DAC_READ_SEARCH: the agent reads only its own /proc entries and world-readable
# files (/sys/kernel/btf/vmlinux); exe paths come from the kernel, not /proc/PID/exe.
CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_ADMIN CAP_SYS_RESOURCE
LimitMEMLOCK=infinity
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${writable.map(quoteExecArg).join(" ")}
LogsDirectory=dual-slot
LogsDirectoryMode=0750
# /run/dual-slot: the kernel's BTF cut to the types the programs read, kept between starts
# (src/ebpf/core-btf-cache.ts); /run empties at boot, and the cut is only good for one boot.
RuntimeDirectory=dual-slot
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
UMask=0077
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
# AF_INET/AF_INET6 for --metrics; BPF and perf events need no socket.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
# Not MemoryDenyWriteExecute: Bun's JavaScript JIT needs writable+executable memory.

[Install]
WantedBy=multi-user.target
`;
}
