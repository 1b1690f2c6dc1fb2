/**
 * The compiled ./dual-slot with bad input: one line on stderr, a non-zero exit,
 * no stack trace. Flag validation runs before any privilege check, so these
 * hold for root too.
 */
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";

const ROOT = path.join(import.meta.dir, "../..");
const BIN = path.join(ROOT, "dual-slot");

function requireBin(): void {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: run \`bun run build\` first (it compiles ./dual-slot)`);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], prefix: string[] = []): Run {
  requireBin();
  const r = Bun.spawnSync([...prefix, BIN, ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    timeout: 30_000,
    env: { ...process.env, NO_COLOR: "1" },
  });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Exactly one non-empty line, ending in a newline, from the program itself. */
function assertOneLineError(r: Run, label: string): string {
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`${label}: ${what} (exit=${r.code}, stderr=${JSON.stringify(r.stderr)})`);
  };
  check(r.code !== null && r.code !== 0, "expected a non-zero exit");
  check(r.stderr.endsWith("\n"), "stderr does not end in a newline");
  const lines = r.stderr.slice(0, -1).split("\n");
  check(lines.length === 1 && lines[0] !== "", "expected exactly one line on stderr");
  check(lines[0]!.startsWith("dual-slot: "), "the line does not start with 'dual-slot: '");
  // No stack trace, no Bun "error:" banner, no terminal escapes.
  check(!/^\s+at\s/m.test(r.stderr), "stack frames on stderr");
  check(!/^error:/im.test(r.stderr), "a Bun 'error:' banner on stderr");
  check(!/\x1b/.test(r.stderr), "terminal escapes on stderr");
  return lines[0]!;
}

describe("bad input: one-line error, non-zero exit, no stack trace", () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["unknown flag", ["--duraton", "1"], /--duraton/],
    ["--pages not a power of two", ["--pages", "3"], /pages.*power of two/],
    ["--pages not a number", ["--pages", "abc"], /pages.*abc/],
    ["--interval 0", ["--interval", "0"], /interval/],
    ["--mode bogus", ["--mode", "bogus"], /mode.*bogus/],
    ["--mode single --slots 2", ["--mode", "single", "--slots", "2"], /single|slots/],
    ["--transport x", ["--transport", "x"], /transport/],
    ["--count -1", ["--count", "-1"], /count|-1/],
    ["--count=-1", ["--count=-1"], /count.*-1/],
    ["unknown command", ["frobnicate"], /frobnicate/],
    ["explicit run with a bad flag", ["run", "--pages", "3"], /power of two/],
    ["--mode dual --slots 1", ["--mode", "dual", "--slots", "1"], /slots/],
    ["--slots 4", ["--slots", "4"], /slots/],
    ["--ring-size not a power of two", ["--ring-size", "5000"], /ring-size/],
    ["--encoding x", ["--encoding", "x"], /encoding/],
    ["--duration 0", ["--duration", "0"], /duration/],
    ["--duration abc", ["--duration", "abc"], /duration/],
    ["--max-arg-bytes too large", ["--max-arg-bytes", "8192"], /max-arg-bytes/],
    ["--comm too long", ["--comm", "a-very-long-command-name"], /comm/],
  ];
  for (const [label, args, mention] of cases) {
    test(`${label}: dual-slot ${args.join(" ")}`, () => {
      const r = run(args);
      const line = assertOneLineError(r, label);
      expect(line).toMatch(mention);
      // Usage errors exit 2 (src/errors.ts), like other CLI tools.
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
    });
  }
});

describe("--help and --version", () => {
  const FLAGS = [
    "--json",
    "--duration",
    "--count",
    "--pid",
    "--comm",
    "--mode",
    "--slots",
    "--guard",
    "--inject-clobber",
    "--transport",
    "--encoding",
    "--pages",
    "--ring-size",
    "--interval",
    "--max-args",
    "--max-arg-bytes",
    "--verbose",
  ];

  test("run --help exits 0 and lists every flag", () => {
    const r = run(["run", "--help"]);
    expect(r.code).toBe(0);
    for (const f of FLAGS) expect(r.stdout.includes(f) ? f : `missing ${f}`).toBe(f);
  });

  // The default command is `run`, and `dual-slot --pages 3` is validated as run's
  // flag, yet top-level --help lists only the commands and points to
  // `dual-slot run --help` (src/main.ts dispatch: showUsage(main) when the only
  // argument is --help).
  test("--help exits 0 and mentions the flags", () => {
    const r = run(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("run");
    for (const f of ["--mode", "--transport", "--encoding", "--duration", "--json"]) {
      expect(r.stdout.includes(f) ? f : `missing ${f}`).toBe(f);
    }
  });

  test("-h is --help", () => {
    const r = run(["run", "-h"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--pages");
  });

  test("--version prints version, libbpf version and commit", () => {
    for (const flag of ["--version", "-v"]) {
      const r = run([flag]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
      expect(r.stdout).toMatch(
        /^dual-slot \d+\.\d+\.\d+\S* \(libbpf (\d+\.\d+(\.\d+)? embedded|from the system), commit ([0-9a-f]{7,40}(-dirty)?|unknown), \w+\)\n$/,
      );
      expect(r.stdout).toContain(`dual-slot ${pkg.version} `);
    }
  });
});

describe("without privileges", () => {
  const root = process.getuid?.() === 0;
  if (!root) console.warn("[cli.test] SKIPPED: not root; cannot switch to the unprivileged user dsnobody");

  // In CI a missing prerequisite fails the test instead of skipping it.
  test.skipIf(!root && !process.env.CI)(
    "as an unprivileged user: one line naming privileges and the fix, non-zero exit",
    () => {
      const SETPRIV = Bun.which("setpriv") ?? "/usr/bin/setpriv";
      if (Bun.spawnSync(["id", "dsnobody"], { stdout: "ignore", stderr: "ignore" }).exitCode !== 0) {
        const USERADD = Bun.which("useradd") ?? "/usr/sbin/useradd";
        const add = Bun.spawnSync([USERADD, "-M", "-s", "/usr/sbin/nologin", "dsnobody"], {
          stdout: "pipe",
          stderr: "pipe",
        });
        // A concurrent test may have created it in the meantime; only a still missing user is an error.
        if (add.exitCode !== 0 && Bun.spawnSync(["id", "dsnobody"]).exitCode !== 0) {
          throw new Error(`useradd dsnobody failed: ${add.stderr.toString()}`);
        }
      }
      const r = run(["--duration", "1"], [SETPRIV, "--reuid=dsnobody", "--regid=dsnobody", "--clear-groups"]);
      const line = assertOneLineError(r, "unprivileged");
      expect(line).toMatch(/privilege/i);
      // The fix: run as root or grant the capabilities.
      expect(line).toMatch(/fix|sudo|root|setcap/i);
      expect(line).toMatch(/CAP_BPF|cap_bpf|root/i);
      expect(r.stdout).toBe("");
    },
  );
});
