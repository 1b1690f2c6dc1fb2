/**
 * `dual-slot doctor`'s checklist: the agent's own required checks
 * (src/agent/preflight.ts) plus everything else that decides whether this host
 * can run it, each with a verdict and, for anything short of ok, the fix.
 *
 * Everything here must work unprivileged: a user who cannot run the agent is
 * exactly who runs doctor. Probes that need privileges say so instead of
 * reporting "unsupported".
 */
import { readFileSync } from "node:fs";
import {
  type Check,
  checkBtf,
  checkKernel,
  checkPrivileges,
  effectiveCaps,
  hasCapability,
} from "../agent/preflight.ts";
import { unavailable } from "../ebpf/availability.ts";
import { BPF_FS_MAGIC, cpuList, fsMagic, kernelVersion, pageSize } from "../ebpf/host-facts.ts";
import { type Libbpf, libbpf } from "../ffi/libbpf.ts";
import { errno, errnoText, memlockLimit } from "../ffi/libc.ts";
import { perfBufferBytes, scratchBytes } from "../mem/model.ts";
import { formatBytes } from "../render/columns.ts";
import { EVENTS } from "../wire/events.ts";

export type Status = "ok" | "fail" | "warn" | "skip" | "info";

export interface DoctorCheck extends Check {
  status: Status;
}

const EPERM = 1;
const EACCES = 13;
const CAP_IPC_LOCK = 14;
const BPF_PROG_TYPE_RAW_TRACEPOINT = 17;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
const BPF_MAP_TYPE_RINGBUF = 27;

/** A preflight Check as a doctor line: required failures fail, optional ones warn. */
export function fromPreflight(c: Check): DoctorCheck {
  return { ...c, status: c.ok ? "ok" : c.required ? "fail" : "warn" };
}

/**
 * libbpf's probe answers 1 (supported), 0 (the load failed) or <0 (cannot
 * tell). Unprivileged, every load fails with EPERM and libbpf reports 0, so
 * the errno decides between "unsupported" and "not allowed to ask".
 */
export function probeVerdict(
  ret: number,
  err: number,
  what: string,
  fix: string,
  name: string,
  required = true,
): DoctorCheck {
  if (ret === 1) return { name, ok: true, required, status: "ok", detail: `${what}: supported (probe loaded)` };
  if (ret === 0 && (err === EPERM || err === EACCES)) {
    return {
      name,
      ok: true,
      required,
      status: "skip",
      detail: `${what}: cannot probe without privileges (${err === EPERM ? "EPERM" : "EACCES"})`,
      fix: "run doctor as root to probe",
    };
  }
  if (ret === 0)
    return {
      name,
      ok: false,
      required,
      status: required ? "fail" : "warn",
      detail: `${what}: not supported by this kernel`,
      fix,
    };
  return {
    name,
    ok: false,
    required,
    status: required ? "fail" : "warn",
    detail: `${what}: probe failed: ${errnoText(-ret)}`,
    fix,
  };
}

export function probeChecks(l: Libbpf): DoctorCheck[] {
  const upgrade = "boot a newer kernel (5.19+) built with CONFIG_BPF_SYSCALL=y";
  const probe = (f: () => number): [number, number] => {
    const r = f();
    return [r, errno()];
  };
  const [rt, rtErr] = probe(() => l.libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT, null));
  const [pc, pcErr] = probe(() => l.libbpf_probe_bpf_map_type(BPF_MAP_TYPE_PERCPU_ARRAY, null));
  const [rb, rbErr] = probe(() => l.libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, null));
  return [
    probeVerdict(rt, rtErr, "BPF_PROG_TYPE_RAW_TRACEPOINT (ds_exec on sched_process_exec)", upgrade, "raw_tracepoint"),
    probeVerdict(pc, pcErr, "BPF_MAP_TYPE_PERCPU_ARRAY (the dual-slot heap)", upgrade, "percpu_array"),
    probeVerdict(
      rb,
      rbErr,
      "BPF_MAP_TYPE_RINGBUF (ds_ring, created in every mode)",
      "boot a kernel 5.19 or newer",
      "ringbuf",
    ),
  ];
}

/**
 * Lockdown in confidentiality mode removes bpf_probe_read_kernel from tracing
 * programs, so ds_exec fails verification. The mode is in securityfs, which
 * many VMs and containers do not mount; as root we therefore also ask the
 * verifier directly with a helper probe (unprivileged, libbpf's helper probe
 * cannot tell EPERM from "supported", so it is not used).
 */
export function lockdownVerdict(o: {
  text: string | null;
  securityfs: boolean;
  helperProbe: number | null;
}): DoctorCheck {
  const base = { name: "lockdown", required: true };
  const mode = o.text === null ? null : (/\[(\w+)\]/.exec(o.text)?.[1] ?? o.text.trim());
  const seen =
    mode !== null
      ? `lockdown=${mode}`
      : o.securityfs
        ? "no lockdown LSM in this kernel"
        : "lockdown mode not visible (securityfs not mounted)";
  const fix =
    "boot with lockdown=integrity or none (Secure Boot often implies confidentiality: check your distribution's policy)";
  if (mode === "confidentiality" || o.helperProbe === 0) {
    return {
      ...base,
      ok: false,
      status: "fail",
      detail: `${seen}: bpf_probe_read_kernel is refused, so ds_exec cannot read exec arguments or paths`,
      fix,
    };
  }
  if (o.helperProbe === 1)
    return { ...base, ok: true, status: "ok", detail: `${seen}; bpf_probe_read_kernel allowed (probe loaded)` };
  if (mode !== null || o.securityfs) return { ...base, ok: true, status: "ok", detail: seen };
  return {
    ...base,
    ok: true,
    status: "skip",
    detail: `${seen}; cannot probe bpf_probe_read_kernel without privileges`,
    fix: "run doctor as root to probe",
  };
}

const SECURITYFS_MAGIC = 0x73636673;
const BPF_FUNC_probe_read_kernel = 113;

function probeReadKernel(): number | null {
  const r = libbpf().libbpf_probe_bpf_helper(BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_FUNC_probe_read_kernel, null);
  return r < 0 ? null : r;
}

function readTrim(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return null;
  }
}

export function checkBpffs(path = "/sys/fs/bpf"): DoctorCheck {
  const magic = fsMagic(path);
  const ok = magic === BPF_FS_MAGIC;
  return {
    name: "bpffs",
    ok,
    required: false,
    status: ok ? "ok" : "warn",
    detail: ok
      ? `${path} is bpffs (not needed by dual-slot: stats finds agents by id)`
      : `${path} is not bpffs (dual-slot does not pin, so it runs anyway)`,
    fix: `mount -t bpf bpf ${path} (for bpftool and pinning tools)`,
  };
}

export function paranoidVerdict(value: number | null, privileged: boolean): DoctorCheck {
  const base = { name: "perf_event_paranoid", required: false };
  if (value === null)
    return { ...base, ok: true, status: "info", detail: "/proc/sys/kernel/perf_event_paranoid unreadable" };
  if (privileged || value <= 0) {
    return {
      ...base,
      ok: true,
      status: "ok",
      detail: `${value}${privileged ? ": does not apply with CAP_PERFMON/CAP_SYS_ADMIN" : ""}`,
    };
  }
  return {
    ...base,
    ok: false,
    status: "warn",
    detail: `${value}: system-wide perf buffers need CAP_PERFMON${value >= 3 ? " (3 = perf disabled for unprivileged users, a Debian setting)" : ""}`,
    fix: "grant CAP_PERFMON (see privileges); lowering kernel.perf_event_paranoid is the less safe alternative",
  };
}

export function statsVerdict(value: string | null): DoctorCheck {
  const base = { name: "bpf_stats_enabled", ok: true, required: false };
  if (value === "1") return { ...base, status: "ok", detail: "1: `stats` shows ds_exec run count and time" };
  return {
    ...base,
    status: "info",
    detail: `${value ?? "unreadable"}: program run time is not measured (the default; costs a few ns per run when on)`,
    fix: "sysctl -w kernel.bpf_stats_enabled=1 while you want run times in `dual-slot stats`",
  };
}

/**
 * Before 5.11 every BPF map is charged to RLIMIT_MEMLOCK, and a low default
 * (64 KiB) cannot even hold the two 16 KiB slots on a 2-CPU host. Since 5.11
 * maps are charged to the memory cgroup instead. Perf buffers are still
 * charged beyond perf_event_mlock_kb unless the process has CAP_IPC_LOCK.
 */
export function memlockVerdict(o: {
  kernel: [number, number] | null;
  limit: number;
  needed: number;
  perfBytes: number;
  perfAllowance: number | null;
  canRaise: boolean;
}): DoctorCheck {
  const lim = Number.isFinite(o.limit) ? formatBytes(o.limit) : "unlimited";
  const charged = o.kernel !== null && (o.kernel[0] < 5 || (o.kernel[0] === 5 && o.kernel[1] < 11));
  const base = { name: "memlock", required: charged };
  if (charged) {
    const ok = o.canRaise || o.limit >= o.needed;
    return {
      ...base,
      ok,
      status: ok ? "ok" : "fail",
      detail: `kernel charges BPF maps to RLIMIT_MEMLOCK: limit ${lim}, the agent needs about ${formatBytes(o.needed)}${o.canRaise ? " (the agent raises it as root)" : ""}`,
      fix: "run as root (the agent lifts the limit) or raise it: ulimit -l unlimited / LimitMEMLOCK=infinity",
    };
  }
  const perfNote =
    o.canRaise || o.perfAllowance === null
      ? ""
      : o.perfBytes <= o.perfAllowance
        ? `; perf buffers (${formatBytes(o.perfBytes)}) fit the perf_event_mlock_kb allowance`
        : `; perf buffers (${formatBytes(o.perfBytes)}) exceed the perf_event_mlock_kb allowance (${formatBytes(o.perfAllowance)}): use --pages smaller or grant CAP_IPC_LOCK`;
  return {
    ...base,
    ok: true,
    status: "ok",
    detail: `not charged for maps on this kernel (memory cgroup since 5.11); RLIMIT_MEMLOCK ${lim}${perfNote}`,
  };
}

const hasCap = (bit: number) => hasCapability(effectiveCaps(), bit);

function hostMemlock(): DoctorCheck {
  const possible = cpuList("possible").count;
  const online = cpuList("online").count;
  const page = pageSize();
  const perfBytes = perfBufferBytes(online, 64, page);
  const mlockKb = Number(readTrim("/proc/sys/kernel/perf_event_mlock_kb") ?? Number.NaN);
  return memlockVerdict({
    kernel: kernelVersion(),
    limit: memlockLimit(),
    // Heap (2 slots) plus a 1 MiB-class margin for the ring and small maps.
    needed: scratchBytes(possible, 2, 16384) + (1 << 20),
    perfBytes,
    // The kernel scales the per-user allowance by online CPUs.
    perfAllowance: Number.isFinite(mlockKb) ? mlockKb * 1024 * online : null,
    canRaise: hasCap(CAP_IPC_LOCK) || process.geteuid?.() === 0,
  });
}

/** Every check, the agent's required ones first; `l` is null when libbpf itself could not be loaded. */
export function doctorChecks(l: Libbpf | null, libbpfError: string | null): DoctorCheck[] {
  const priv = checkPrivileges();
  const checks: DoctorCheck[] = [fromPreflight(priv), fromPreflight(checkKernel()), fromPreflight(checkBtf())];
  if (l !== null) checks.push(...probeChecks(l));
  else {
    checks.push({
      name: "libbpf",
      ok: false,
      required: true,
      status: "fail",
      detail: `cannot load libbpf: ${libbpfError ?? "unknown error"}`,
      fix: "use the release build, which embeds libbpf",
    });
  }
  checks.push(
    lockdownVerdict({
      text: readTrim("/sys/kernel/security/lockdown"),
      securityfs: fsMagic("/sys/kernel/security") === SECURITYFS_MAGIC,
      helperProbe: l !== null && priv.ok ? probeReadKernel() : null,
    }),
  );
  checks.push(checkBpffs());
  const paranoid = readTrim("/proc/sys/kernel/perf_event_paranoid");
  checks.push(paranoidVerdict(paranoid === null ? null : Number(paranoid), priv.ok));
  checks.push(statsVerdict(readTrim("/proc/sys/kernel/bpf_stats_enabled")));
  checks.push(hostMemlock());
  checks.push(eventsVerdict(EVENTS.map((e) => unavailable(e.name)).filter((r) => r !== undefined)));
  return checks;
}

/** Event types this kernel cannot report (load_module without module support): info, the rest still runs. */
export function eventsVerdict(reasons: readonly string[]): DoctorCheck {
  const base = { name: "events", ok: true, required: false };
  if (reasons.length === 0) return { ...base, status: "ok", detail: "every event type can be captured" };
  return { ...base, status: "info", detail: reasons.join("; ") };
}
