/**
 * The flags that configure a loaded agent, shared by `run`, `lab` and `bench`,
 * and their translation into SessionOptions.
 */
import type { ArgsDef } from "citty";
import type { SessionOptions } from "../agent/session.ts";
import { cpuList } from "../ebpf/host-facts.ts";
import { UsageError } from "../errors.ts";
import { FILTER_MAX, parseFilters } from "../filters/filters.ts";
import { EVENTS } from "../wire/events.ts";
import type { EventName } from "../wire/names.ts";
import { choiceArg, intArg, powerOfTwoArg } from "./args.ts";

export const MODES = ["dual", "single", "nest3"] as const;
export const TRANSPORTS = ["perf", "ringbuf", "ringbuf-output"] as const;
export const ENCODINGS = ["compact", "fixed"] as const;

export const DEFAULT_MAX_ARGS = 1024;
/**
 * Perf buffer pages per CPU, when --pages is not given. Events are drained on
 * a timer, so one CPU's buffer must hold a burst until the agent runs again:
 * on 2 vCPUs, where the storm's workers and the agent share the CPUs, 256
 * pages (1 MiB) lost 5-20 % of a 40k connects/s storm, 1024 (4 MiB) none.
 * 4 MiB per CPU up to 16 CPUs, then 64 MiB in all, at least 1 MiB per CPU: a
 * large host spreads the same events over more buffers.
 */
export function defaultPages(cpus: number): number {
  const MAX = 1024;
  const MIN = 256;
  const TOTAL = 16384; // 64 MiB of 4 KiB pages
  let pages = MAX;
  while (pages > MIN && pages * cpus > TOTAL) pages /= 2;
  return pages;
}
export const PAGES_DOC = "4 MiB per CPU up to 16 CPUs, 64 MiB in all past that, at least 1 MiB per CPU";

/**
 * The ring buffer's bytes, when --ring-size is not given: what the perf
 * buffers get in all (one ring holds every CPU's burst), rounded up to a
 * power of two. 1 MiB, the old default, lost a 20,000-exec storm's events on
 * 2 vCPUs at the default drain period.
 */
export function defaultRingSize(cpus: number): number {
  const total = defaultPages(cpus) * 4096 * cpus;
  let size = 1 << 20;
  while (size < total && size < 1 << 26) size *= 2;
  return size;
}
export const RING_SIZE_DOC = "the perf buffers' total at the defaults, as a power of two: 4 MiB per CPU, up to 64 MiB";

/** As many arguments as 8191 bytes hold: each takes at least its NUL. */
export const MAX_ARGS = 8191;

/**
 * The flags that pick the experiment or tune buffers rather than what an
 * operator sees; help lists them apart, after the operator's flags.
 */
export const LAB_FLAGS: ReadonlySet<string> = new Set([
  "mode",
  "slots",
  "guard",
  "inject-clobber",
  "transport",
  "encoding",
  "pages",
  "ring-size",
  "interval",
  "output-buffer",
]);

/** Event types an operator can pick (the benchmark's flood is not one). */
const SELECTABLE = EVENTS.filter((e) => e.name !== "flood");

export const agentArgs = {
  events: {
    type: "string",
    valueHint: "TYPE,...",
    description: `event types to capture, comma-separated, or "all"; default: those marked *. ${SELECTABLE.map(
      (e) => `${e.name}${e.byDefault ? "*" : ""}: ${e.doc}`,
    ).join("; ")}. Unselected programs are not loaded`,
  },
  mode: {
    type: "string",
    default: "dual",
    valueHint: MODES.join("|"),
    description:
      "slot layout: dual (business in slot 1, serializer in slot 0), single (both in slot 0: watch it corrupt), nest3 (a third level takes a slot too)",
  },
  slots: {
    type: "string",
    valueHint: "N",
    description: "entries in the per-CPU scratch map (1-3); default: 1 for single, 2 otherwise",
  },
  guard: {
    type: "boolean",
    default: false,
    description: "track slot ownership per CPU and flag events whose slot 1 was taken by a nested helper",
  },
  "inject-clobber": {
    type: "boolean",
    default: false,
    description:
      "call a refresh_tid()-like helper that grabs slot 1 while it is held, in every record between its two levels (to see --guard catch it; the records come out corrupt)",
  },
  transport: {
    type: "string",
    default: "perf",
    valueHint: TRANSPORTS.join("|"),
    description:
      "perf (slot 0 + perf buffer), ringbuf (reserve in the ring, no slot 0), ringbuf-output (slot 0 + copy into the ring)",
  },
  encoding: {
    type: "string",
    default: "compact",
    valueHint: ENCODINGS.join("|"),
    description: "compact (strings packed, len<<16|offset descriptors) or fixed (each string in a fixed array)",
  },
  pages: {
    type: "string",
    description: `perf buffer pages per CPU (power of two; default: ${PAGES_DOC})`,
  },
  "ring-size": {
    type: "string",
    description: `ring buffer bytes (power of two, >= 4096; default: ${RING_SIZE_DOC})`,
  },
  interval: {
    type: "string",
    default: "100",
    description:
      "drain the buffers every N ms while events flow (batched, not one wakeup each); on Linux 6.10+: up to 1 s while none do, woken at once by a half-full buffer",
  },
  // Bounded by --max-arg-bytes anyway (the kernel copies the bytes whatever
  // the count, and decoding costs per byte): a count is only a second limit,
  // set past what a compiler driver passes to collect2/ld.
  "max-args": {
    type: "string",
    default: String(DEFAULT_MAX_ARGS),
    description: `arguments kept per event (1-${MAX_ARGS}); the bytes are bounded by --max-arg-bytes`,
  },
  "max-arg-bytes": {
    type: "string",
    default: "4096",
    description: "argument bytes copied per event (up to 8191, what slot 1 holds)",
  },
  order: {
    type: "boolean",
    default: true,
    description:
      "perf only: sort events across CPUs by kernel time (a stamp-to-output gap under 10 ms; --no-order to print as read)",
  },
  verbose: { type: "boolean", default: false, description: "debug logs, including libbpf's own" },
  ...filterArgs(),
} as const satisfies ArgsDef;

/**
 * Elkeid's driver filter: decided in the BPF programs before any record is
 * built, counted as filtered_kernel (summary line, `dual-slot stats`,
 * --metrics). A function only so its help text can name the limit.
 */
function filterArgs() {
  const max = `at most ${FILTER_MAX}`;
  return {
    uid: {
      type: "string",
      valueHint: "UID,...",
      description: `kernel-side: report only records whose task's real uid is one of these (a set*id privilege_escalation: the uid the call was made as, or the one it got) (${max}; repeatable)`,
    },
    cgroup: {
      type: "string",
      valueHint: "PATH|ID,...",
      description: `kernel-side: report only tasks in these cgroup v2 groups: a directory of the cgroup2 mount (its inode number is the id) or the numeric id; a task in a child group does not match (${max}; repeatable)`,
    },
    "allow-exe": {
      type: "string",
      valueHint: "PATH,...",
      description: `kernel-side: drop every record (except exit) of tasks running these executables, matched by the file's device and inode as stat() finds them at start, not by path: a copy elsewhere is not trusted, and a binary replaced since (a package upgrade) is not either until the agent restarts (with --output, SIGHUP stat()s the paths again) (${max} with --allow-exe-file; repeatable)`,
    },
    "allow-exe-file": {
      type: "string",
      valueHint: "FILE",
      description: "--allow-exe paths from FILE, one per line (blank lines and # comments skipped)",
    },
    "allow-argv": {
      type: "string",
      valueHint: '"ARG0 ARG1 ..."',
      description: `kernel-side: drop exec records whose whole argv equals this command line (the arguments separated by single spaces, argv[0] as the process got it, e.g. "/usr/bin/python3 -m http.server"); exec records only, compared by a seeded 64-bit hash and the length; an argv cut by --max-arg-bytes never matches (${max} with --allow-argv-file; repeat the flag for more, no commas)`,
    },
    "allow-argv-file": {
      type: "string",
      valueHint: "FILE",
      description: "--allow-argv command lines from FILE, one per line (blank lines and # comments skipped)",
    },
  } as const;
}

type Raw = { [K in keyof typeof agentArgs]?: string | boolean | undefined };

/** --events exec,exit: known names, no repeats, at least one. */
export function eventsArg(raw: unknown): EventName[] {
  if (raw === undefined) return SELECTABLE.filter((e) => e.byDefault).map((e) => e.name);
  if (raw === "all") return SELECTABLE.map((e) => e.name);
  const names = String(raw)
    .split(",")
    .map((s) => s.trim());
  const known = SELECTABLE.map((e) => e.name as string);
  const out: EventName[] = [];
  for (const n of names) {
    if (n === "all") throw new UsageError("--events: 'all' stands alone (--events all), not in a list");
    if (!known.includes(n)) throw new UsageError(`--events: unknown event type '${n}' (known: ${known.join(", ")})`);
    if (out.includes(n as EventName)) throw new UsageError(`--events: '${n}' given twice`);
    out.push(n as EventName);
  }
  return out;
}

/**
 * `transports`: the ones the command will use, when it takes a list (bench)
 * rather than --transport: a size is refused only when none of them uses it.
 */
export function sessionOptions(a: Raw, transports?: readonly string[]): SessionOptions {
  const mode = choiceArg("mode", a.mode ?? "dual", MODES);
  const defaultSlots = mode === "single" ? 1 : 2;
  const slots = a.slots === undefined || a.slots === "" ? defaultSlots : intArg("slots", a.slots, 1, 3);
  if (mode === "single" && slots !== 1)
    throw new UsageError("--mode single uses a single-slot map; drop --slots or use --slots 1");
  if (mode !== "single" && slots < 2) throw new UsageError(`--mode ${mode} needs --slots 2 or 3`);
  const maxArgBytes = intArg("max-arg-bytes", a["max-arg-bytes"] ?? "4096", 0, 8191);
  const transport = choiceArg("transport", a.transport ?? "perf", TRANSPORTS);
  // A size for the transport not in use would be silently ignored: say so instead.
  const given = (v: unknown) => v !== undefined && v !== "";
  const used = transports ?? [transport];
  if (!used.includes("perf") && given(a.pages))
    throw new UsageError(
      `--pages sizes the perf buffers, which ${used.join(", ")} does not use: size the ring with --ring-size`,
    );
  if (!used.some((t) => t !== "perf") && given(a["ring-size"]))
    throw new UsageError(
      "--ring-size sizes the ring buffer; it needs a ring buffer transport (ringbuf or ringbuf-output)",
    );
  return {
    mode,
    slots,
    guard: a.guard === true,
    injectClobber: a["inject-clobber"] === true,
    transport,
    encoding: choiceArg("encoding", a.encoding ?? "compact", ENCODINGS),
    pages:
      a.pages === undefined || a.pages === ""
        ? defaultPages(cpuList("possible").count)
        : powerOfTwoArg("pages", a.pages, 1, 16384),
    ringSize:
      a["ring-size"] === undefined || a["ring-size"] === ""
        ? defaultRingSize(cpuList("possible").count)
        : powerOfTwoArg("ring-size", a["ring-size"], 4096, 1 << 30),
    intervalMs: intArg("interval", a.interval ?? "100", 1, 10_000),
    maxArgs: intArg("max-args", a["max-args"] ?? String(DEFAULT_MAX_ARGS), 1, MAX_ARGS),
    maxArgBytes,
    order: a.order !== false,
    events: eventsArg(a.events),
    filters: parseFilters(a, maxArgBytes),
  };
}
