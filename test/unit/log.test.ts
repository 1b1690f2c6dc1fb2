/**
 * The agent's log (src/log.ts): one line per message for a service, consola's
 * look on a terminal, and the start's lines written straight to fd 2.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ConsolaOptions, LogObject } from "consola";
import { isTerminal } from "../../src/ffi/libc.ts";
import { log, serviceLine, terminalReporter } from "../../src/log.ts";

const ROOT = join(import.meta.dir, "../..");

describe("terminal log lines", () => {
  test("consola's own look, loaded at the first line a terminal shows, on stderr (the log's options name no stream)", () => {
    let out = "";
    const real = process.stderr.write;
    process.stderr.write = ((s: string | Uint8Array): boolean => {
      out += String(s);
      return true;
    }) as typeof process.stderr.write;
    try {
      const entry: LogObject = { type: "info", level: 3, tag: "", args: ["attached exec"], date: new Date() };
      terminalReporter.log(entry, { options: log.options as ConsolaOptions });
    } finally {
      process.stderr.write = real;
    }
    expect(out).toContain("attached exec");
    expect(out).not.toMatch(/^\d{4}-\d\d-\d\dT/); // not a service line
  });

  test("on a real terminal (script(1)'s pty), the log writes its lines and the command goes on", () => {
    const child = `import { log } from "${ROOT}/src/log.ts"; log.info("attached exec"); log.warn("a warning"); console.log("went on");`;
    const p = Bun.spawnSync(["script", "-qec", `bun -e '${child}'`, "/dev/null"], { stdout: "pipe", stderr: "pipe" });
    const out = p.stdout.toString();
    expect(p.exitCode).toBe(0);
    expect(out).toContain("attached exec");
    expect(out).toContain("a warning");
    expect(out).toContain("went on");
    expect(out).not.toContain("undefined is not an object");
  }, 30_000);
});

describe("service log lines", () => {
  test("ISO time, level, one line, control bytes escaped", () => {
    const d = new Date("2026-12-02T21:50:00.123Z");
    expect(serviceLine(d, "info", ["attached ds_exec"])).toBe("2026-12-02T21:50:00.123Z INFO attached ds_exec\n");
    expect(serviceLine(d, "warn", ["a\nb\x1b[31m"])).toBe("2026-12-02T21:50:00.123Z WARN a\\nb\\x1b[31m\n");
    expect(serviceLine(d, "debug", ["libbpf: %s", "x"])).toBe("2026-12-02T21:50:00.123Z DEBUG libbpf: x\n");
    expect(serviceLine(d, "error", [new Error("boom\nstack")])).toBe("2026-12-02T21:50:00.123Z ERROR boom\\nstack\n");
    expect(serviceLine(d, "success", ["ok"])).toContain(" INFO ok");
    // One string is written as util.format writes it: as it is, its % signs too.
    expect(serviceLine(d, "info", ["50%% %s %d"])).toBe("2026-12-02T21:50:00.123Z INFO 50%% %s %d\n");
  });

  test("no module of ours imports node:net (2-3 ms of a start) or node:util (citty loads it, but a log line skips its inspector)", () => {
    const root = ROOT;
    const offenders = [...new Bun.Glob("src/**/*.ts").scanSync({ cwd: root })].filter((f) =>
      /^import[^;]*from "node:(util|net)";/m.test(readFileSync(join(root, f), "utf8")),
    );
    expect(offenders).toEqual([]);
  });
});

describe("the start's lines, straight to fd 2", () => {
  test("isTerminal: a pseudo-terminal is one, a pipe and /dev/null are not (no process.stdout needed)", () => {
    const pty = openSync("/dev/ptmx", "r+");
    const nul = openSync("/dev/null", "r");
    try {
      expect(isTerminal(pty)).toBe(true);
      expect(isTerminal(nul)).toBe(false);
    } finally {
      closeSync(pty);
      closeSync(nul);
    }
    const p = Bun.spawnSync(
      ["bun", "-e", `import { isTerminal } from "${ROOT}/src/ffi/libc.ts"; console.log(isTerminal(1), isTerminal(2))`],
      {
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    expect(p.stdout.toString().trim()).toBe("false false");
  });

  test("a non-blocking stderr that fills: every line arrives, in order, the rest through process.stderr", () => {
    // 210 lines of 1 KB into a pipe of 64 KB whose reader waits a second: write(2) meets EAGAIN part
    // way, and the lines from there on go through Bun's stream, which waits for the reader.
    const child = `
      import { fcntl } from "${ROOT}/src/ffi/libc.ts";
      import { log, writeStartDirectly } from "${ROOT}/src/log.ts";
      writeStartDirectly(true);
      fcntl(2, 4, fcntl(2, 3, 0) | 0o4000); // F_SETFL(F_GETFL | O_NONBLOCK)
      const pad = "x".repeat(1000);
      for (let i = 0; i < 200; i++) log.info("line " + i + " " + pad);
      writeStartDirectly(false);
      for (let i = 200; i < 210; i++) log.info("line " + i + " " + pad);
      process.stderr.write("END\\n", () => process.exit(0));
    `;
    const p = Bun.spawnSync(["sh", "-c", 'bun -e "$0" 2>&1 >/dev/null | (sleep 1; cat)', child], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const lines = p.stdout
      .toString()
      .split("\n")
      .filter((l) => l !== "");
    expect(lines.at(-1)).toBe("END");
    const numbers = lines.slice(0, -1).map((l) => Number(/ INFO line (\d+) x+$/.exec(l)?.[1]));
    expect(numbers).toEqual(Array.from({ length: 210 }, (_, i) => i));
  }, 30_000);
});
