/**
 * The README's benchmark tables, rendered from the files `bun run bench`
 * writes (benchmarks/results.json, transports.json, io.json), between
 * `<!-- figures:NAME -->` and `<!-- /figures:NAME -->` markers. The bench runs
 * it after each run; a unit test checks that the README holds what the files
 * say, so no figure in those tables is typed by hand.
 *
 *   bun scripts/readme-figures.ts [--check]
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");

type Json = Record<string, unknown>;

const n = (v: unknown, digits = 1): string => {
  const x = Number(v);
  return Number.isFinite(x) ? x.toFixed(digits).replace(/\.0+$/, "") : "-";
};
const range = (v: unknown, digits = 1): string =>
  Array.isArray(v) && v.length === 2 ? `${n(v[0], digits)} to ${n(v[1], digits)}` : "-";
const kRate = (v: unknown): string => `${(Number(v) / 1000).toFixed(1)}k`;
/** An ISO time to the minute, as the tables show it. */
const minute = (v: unknown): string =>
  String(v ?? "")
    .slice(0, 16)
    .replace("T", " ");
const list = (v: unknown): string => (Array.isArray(v) ? v.join(", ") : "-");
const row = (cells: string[]): string => `| ${cells.join(" | ")} |`;

function table(head: string[], rows: string[][]): string {
  return [row(head), row(head.map(() => "---")), ...rows.map(row)].join("\n");
}

/** The exec storm: benchmarks/results.json's configurations, a column each. */
export function execTable(results: Json): string {
  const all = typeof results.configs === "object" && results.configs !== null ? (results.configs as Json) : {};
  const configs = Object.values(all).filter((c): c is Json => typeof c === "object" && c !== null);
  const a = configs[0];
  if (a === undefined) return "(no agent figures in benchmarks/results.json)";
  const head = [
    `agent on a ${Number(a.execs).toLocaleString("en")}-exec storm (${a.workers} workers), ${a.rounds} rounds, ${minute(results.date)} UTC`,
    ...configs.map((c) => `${String(c.label)}: \`${String(c.args)}\``),
  ];
  const rows: Array<[string, (c: Json) => string]> = [
    ["captured per storm / lost per round", (c) => `${list(c.captured_per_storm)} / ${list(c.lost)}`],
    [
      "storm rate, no agent → agent (medians)",
      (c) => `${kRate(c.baseline_rate_per_s)} → ${kRate(c.agent_rate_per_s)}/s`,
    ],
    [
      "storm slowdown (median rates; paired rounds)",
      (c) => `${n(c.storm_slowdown_pct)} % (${range(c.storm_slowdown_paired_range_pct)})`,
    ],
    [
      "agent CPU per event (one exec record per exec), warm (range) / cold",
      (c) =>
        `${n(c.agent_cpu_us_per_event, 2)} µs (${range(c.agent_cpu_us_per_event_range, 2)}) / ${n(c.agent_cpu_us_per_event_cold, 2)} µs`,
    ],
    ["records the compiled renderer handed to the general path", (c) => list(c.general_lines)],
    ['start to attached (spawn → "attached")', (c) => `${c.start_to_attached_ms} ms`],
    ["RSS after attach / peak", (c) => `${n(c.attached_rss_mib)} / ${n(c.peak_rss_mib)} MiB`],
    // Results from before the warm-up was timed took idle CPU 1.5 s after the attached line.
    ...(a.warm_up_ms === undefined
      ? []
      : ([
          ["warm-up after attach, once: wall time / CPU", (c) => `${c.warm_up_ms} ms / ${c.warm_up_cpu_ms} ms`],
        ] as Array<[string, (c: Json) => string]>)),
    [
      a.warm_up_ms === undefined
        ? "idle CPU, 1.5 s after attach / after the storms"
        : "idle CPU, after the warm-up / after the storms",
      (c) =>
        `${n(c.idle_cpu_ms_per_s, 2)} / ${c.idle_after_storms_cpu_ms_per_s === undefined ? "-" : n(c.idle_after_storms_cpu_ms_per_s, 2)} ms/s`,
    ],
  ];
  return table(
    head,
    rows.map(([label, f]) => [label, ...configs.map(f)]),
  );
}

/** `dual-slot bench`: benchmarks/transports.json's rows (exec storms, then each transport's flood limit). */
export function transportsTable(t: Json): string {
  const rows = Array.isArray(t.rows) ? (t.rows as Json[]) : [];
  const exec = rows
    .filter((r) => r.workload === "exec")
    .map((r) => [
      `exec, ${r.transport}, ${r.encoding}`,
      String(r.bytes_per_event),
      n(r.agent_cpu_us_per_event, 2),
      String(r.bpf_ns_per_event),
      `${r.captured}/${r.expected}, lost ${r.lost}`,
      `${n(r.slowdown_pct)} %`,
    ]);
  const transports = [...new Set(rows.filter((r) => r.workload === "flood").map((r) => String(r.transport)))];
  const flood = transports.map((tr) => {
    const clean = rows.filter((r) => r.workload === "flood" && r.transport === tr && Number(r.lost) === 0);
    const best = clean.sort((x, y) => Number(y.offered_per_s) - Number(x.offered_per_s))[0];
    return [
      `flood, ${tr}: highest rate with 0 lost`,
      best === undefined ? "-" : String(best.bytes_per_event),
      best === undefined ? "-" : n(best.agent_cpu_us_per_event, 2),
      best === undefined ? "-" : String(best.bpf_ns_per_event),
      best === undefined ? "none" : `${kRate(best.offered_per_s)} events/s`,
      "-",
    ];
  });
  const head = [
    `\`dual-slot bench\` (${t.execs}-exec storms x ${t.rounds} rounds)`,
    "bytes/event",
    "agent µs/event",
    "BPF ns/event",
    "captured",
    "slowdown",
  ];
  return table(head, [...exec, ...flood]);
}

/** The io storms: benchmarks/io.json's storms, a row each, and the untraced-syscall cost. */
export function ioTable(io: Json): string {
  const storms = (io.storms ?? {}) as Record<string, Json>;
  const runs = (io.runs ?? {}) as Record<string, Json>;
  const names = Object.keys(storms).filter((k) => typeof storms[k]?.agent_rate_per_s === "number");
  const when = (r: Json) => `${minute(r.date)}, ${String(r.commit ?? "?").split(" ")[0]}`;
  const head = [
    "storm (output), measured",
    "ops x workers, rounds",
    "no agent → agent",
    "slowdown (paired rounds)",
    "lost per round",
    "agent µs/event warm (range) / cold",
    "BPF µs/event: enter + exit",
    "attached, peak RSS",
  ];
  const rows = names.map((k) => {
    const s = storms[k]!;
    const progs = Object.values((s.bpf_programs ?? {}) as Record<string, Json>).map((p) =>
      n(Number(p.ns_per_run) / 1000, 2),
    );
    return [
      `${s.event} (${s.sink ?? "pipe"}${s.events !== undefined ? `, \`--events ${s.events}\`` : ""}), ${when(runs[k] ?? {})}`,
      `${s.ops} x ${s.workers}, ${Array.isArray(s.lost) ? s.lost.length : "?"}`,
      `${kRate(s.baseline_rate_per_s)} → ${kRate(s.agent_rate_per_s)}/s`,
      `${n(s.storm_slowdown_pct)} % (${range(s.storm_slowdown_paired_range_pct)})`,
      list(s.lost),
      `${n(s.agent_cpu_us_per_event, 2)} (${range(s.agent_cpu_us_per_event_range, 2)}) / ${n(s.agent_cpu_us_per_event_cold, 2)}`,
      `${n(Number(s.bpf_ns_per_event) / 1000, 2)}: ${progs.join(" + ")}${progs.length === 1 ? " (an exit alone)" : ""}`,
      `${s.start_to_attached_ms} ms, ${n(s.peak_rss_mib)} MiB`,
    ];
  });
  const out = [table(head, rows)];
  const sys = (io.syscall ?? {}) as Record<string, Json>;
  for (const [set, c] of Object.entries(sys)) {
    if (typeof c.overhead_ns !== "number") continue;
    // The floor (an empty program on the same syscall tracepoints) came with 2026-12-04's later runs.
    const floor =
      typeof c.floor_overhead_ns === "number"
        ? ` The floor, an empty program on the same ${c.tracepoints} syscall tracepoints (the kernel's own cost): ` +
          `${signed(c.floor_overhead_ns)} ns (${n(c.floor_overhead_min_ns)} to ${n(c.floor_overhead_max_ns)}); ` +
          `the set over its floor: ${signed(c.over_floor_ns)} ns ` +
          `(${n(c.over_floor_min_ns)} to ${n(c.over_floor_max_ns)}).`
        : "";
    out.push(
      `\nAn untraced syscall (getppid, ${c.rounds} ${floor === "" ? "paired" : "interleaved"} rounds of ${Number(c.calls_per_round).toLocaleString("en")}), ` +
        `${set === "all" ? "every event" : "the default set"} attached: +${n(c.overhead_ns)} ns ` +
        `(${n(c.overhead_min_ns)} to ${n(c.overhead_max_ns)}; bare ${n(c.bare_ns)} ns; ${when(c)}).${floor}`,
    );
  }
  return out.join("\n");
}

/** A difference with its sign: "+5.1", "-7.1". */
function signed(x: unknown): string {
  return `${Number(x) >= 0 ? "+" : ""}${n(x)}`;
}

function readJson(name: string): Json {
  const p = join(ROOT, "benchmarks", name);
  return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as Json) : {};
}

/** The README with every figures block rendered anew from the benchmark files. */
export function renderReadme(readme: string): string {
  const blocks: Record<string, () => string> = {
    exec: () => execTable(readJson("results.json")),
    transports: () => transportsTable(readJson("transports.json")),
    io: () => ioTable(readJson("io.json")),
  };
  return readme.replace(/<!-- figures:(\w+) -->[\s\S]*?<!-- \/figures:\1 -->/g, (whole, name: string) => {
    const f = blocks[name];
    return f === undefined ? whole : `<!-- figures:${name} -->\n${f()}\n<!-- /figures:${name} -->`;
  });
}

export const README_PATH = join(ROOT, "README.md");

/** What `bun run bench` calls after writing its files. */
export function rewriteReadmeFigures(): void {
  const before = readFileSync(README_PATH, "utf8");
  const after = renderReadme(before);
  if (after === before) return;
  writeFileSync(README_PATH, after);
  console.log("README.md: figures tables rewritten from benchmarks/*.json");
}

if (import.meta.main) {
  if (process.argv.includes("--check")) {
    const readme = readFileSync(README_PATH, "utf8");
    if (renderReadme(readme) !== readme) {
      console.log("README.md: its figures tables differ from benchmarks/*.json: run `bun scripts/readme-figures.ts`");
      process.exit(1);
    }
  } else rewriteReadmeFigures();
}
