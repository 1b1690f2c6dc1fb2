import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { execTable, README_PATH, renderReadme } from "../../scripts/readme-figures.ts";

describe("README figures", () => {
  test("every figures table in the README is what benchmarks/*.json say (`bun scripts/readme-figures.ts` rewrites them)", () => {
    const readme = readFileSync(README_PATH, "utf8");
    for (const name of ["exec", "transports", "io"]) expect(readme).toContain(`<!-- figures:${name} -->`);
    expect(renderReadme(readme)).toBe(readme);
  });

  test("a table is rendered from the file's fields, and says so when there are none", () => {
    expect(execTable({})).toBe("(no agent figures in benchmarks/results.json)");
    const t = execTable({
      date: "2026-12-04T17:36:11.313Z",
      configs: {
        ndjson: {
          label: "NDJSON, perf buffers (the defaults)",
          args: "--json --comm NAME",
          env: "(none)",
          execs: 20000,
          workers: 2,
          rounds: 1,
          captured_per_storm: ["20000/20000"],
          lost: [0],
          baseline_rate_per_s: 12353,
          agent_rate_per_s: 11710,
          storm_slowdown_pct: 5.5,
          storm_slowdown_paired_range_pct: [-7.6, 13.6],
          agent_cpu_us_per_event: 4.72,
          agent_cpu_us_per_event_range: [4.25, 6.61],
          agent_cpu_us_per_event_cold: 5.53,
          general_lines: [0],
          start_to_attached_ms: 577,
          attached_rss_mib: 58.8,
          peak_rss_mib: 81.2,
          warm_up_ms: 1650,
          warm_up_cpu_ms: 1540,
          idle_cpu_ms_per_s: 5.89,
        },
      },
    });
    expect(t).toContain(
      "| agent on a 20,000-exec storm (2 workers), 1 rounds, 2026-12-04 17:36 UTC | NDJSON, perf buffers (the defaults): `--json --comm NAME` |",
    );
    expect(t).toContain("| storm slowdown (median rates; paired rounds) | 5.5 % (-7.6 to 13.6) |");
    expect(t).toContain(
      "| agent CPU per event (one exec record per exec), warm (range) / cold | 4.72 µs (4.25 to 6.61) / 5.53 µs |",
    );
    expect(t).toContain("| warm-up after attach, once: wall time / CPU | 1650 ms / 1540 ms |");
    expect(t).toContain("| idle CPU, after the warm-up / after the storms | 5.89 / - ms/s |");
  });
});
