/**
 * The flag validators and the help layout, without the binary: checkArgv
 * against real args definitions, the value checks, help wrapping and the
 * service log line.
 */
import { describe, expect, test } from "bun:test";
import { type ArgsDef, parseArgs } from "citty";
import { DEFAULT_MAX_ARGS, defaultPages, sessionOptions } from "../../src/cli/agent-args.ts";
import { checkArgv, MAX_DURATION_S, secondsArg } from "../../src/cli/args.ts";
import { commandHelp, flagSections, helpWidth, rootHelp, summary, wrap } from "../../src/cli/help.ts";
import { UsageError } from "../../src/errors.ts";
import { runArgs } from "../../src/run/command.ts";
import { splitArgs } from "../../src/wire/decode.ts";

const def = runArgs as ArgsDef;

function usage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    const msg = (e as Error).message;
    expect(msg).not.toContain("\n");
    return msg;
  }
  throw new Error("expected a UsageError");
}

describe("checkArgv", () => {
  test("normalises values and switches for citty", () => {
    expect(checkArgv(["--count", "3", "--json", "--no-order", "--comm=-bash"], def)).toEqual([
      "--count=3",
      "--json",
      "--no-order",
      "--comm=-bash",
    ]);
    // A negative number is a value (rejected by its own range check), not a flag.
    expect(checkArgv(["--count", "-1"], def)).toEqual(["--count=-1"]);
    // So is anything that is not one of the command's flags.
    expect(checkArgv(["--comm", "--x y"], def)).toEqual(["--comm=--x y"]);
  });

  test("--switch=true and --switch=false are honoured; citty reads them back as such", () => {
    const argv = checkArgv(["--json=false", "--guard=true", "--order=false"], def);
    expect(argv).toEqual(["--no-json", "--guard", "--no-order"]);
    const parsed: Record<string, unknown> = parseArgs(argv, def);
    expect(parsed.json).toBe(false);
    expect(parsed.guard).toBe(true);
    expect(parsed.order).toBe(false);
  });

  test.each([
    [["--guard=no"], /--guard is a switch.*--guard=no/],
    [["--json=yes"], /--json is a switch/],
    [["--no-order=true"], /--no-order is a switch/],
    [["--count"], /--count needs a value/],
    [["--count", "--json"], /--count needs a value/],
    [["--duration", ""], /--duration needs a value, got an empty one/],
    [["--comm="], /--comm needs a value, got an empty one/],
    [["--duration", "  "], /--duration needs a value/],
    [["extra"], /unexpected argument 'extra': dual-slot takes no arguments/],
    [["--json", "--", "x"], /unexpected argument 'x'/],
    [["-1"], /unexpected argument '-1'/],
    [["--duraton", "1"], /unknown flag '--duraton'/],
    [["--no-comm"], /unknown flag '--no-comm'/],
    [["-x"], /unknown flag '-x'/],
    [["--count", "1", "--count", "2"], /--count given after --count/],
    [["--order", "--no-order"], /--no-order given after --order/],
  ])("%p is rejected", (argv, want) => {
    expect(usage(() => checkArgv(argv, def))).toMatch(want);
  });

  test("names the command in its messages", () => {
    expect(usage(() => checkArgv(["x"], def, "dual-slot run"))).toContain("dual-slot run takes no arguments");
  });

  test("declared positionals, aliases and enums come from the definition", () => {
    const d: ArgsDef = {
      target: { type: "positional", required: false },
      level: { type: "enum", options: ["a", "b"] },
      quiet: { type: "boolean", alias: "q" },
      out: { type: "string", alias: "o" },
    };
    expect(checkArgv(["t", "-q", "-o", "f", "--level", "a"], d)).toEqual(["t", "--quiet", "--out=f", "--level=a"]);
    expect(usage(() => checkArgv(["t", "u"], d))).toMatch(/unexpected argument 'u'/);
    expect(usage(() => checkArgv(["--level", "c"], d))).toMatch(/--level must be one of a, b, got 'c'/);
    expect(usage(() => checkArgv(["-o"], d))).toMatch(/-o needs a value/);
  });
});

describe("values", () => {
  test("--duration: capped at what setTimeout holds (2^31-1 ms), never at once", () => {
    expect(MAX_DURATION_S).toBe(2147483);
    expect(MAX_DURATION_S * 1000).toBeLessThanOrEqual(0x7fffffff);
    expect(secondsArg("duration", String(MAX_DURATION_S))).toBe(MAX_DURATION_S);
    expect(usage(() => secondsArg("duration", "2147484"))).toMatch(/--duration must be at most 2147483 seconds/);
    expect(usage(() => secondsArg("duration", "1e9"))).toMatch(/duration/);
    expect(secondsArg("duration", "0.5")).toBe(0.5);
  });

  test("--max-args: 1024 by default, up to what --max-arg-bytes can hold", () => {
    const o = sessionOptions({});
    expect(o.maxArgs).toBe(DEFAULT_MAX_ARGS);
    expect(DEFAULT_MAX_ARGS).toBe(1024);
    expect(sessionOptions({ "max-args": "8191" }).maxArgs).toBe(8191);
    expect(usage(() => sessionOptions({ "max-args": "8192" }))).toMatch(/max-args/);
    expect(usage(() => sessionOptions({ "max-args": "0" }))).toMatch(/max-args/);
  });

  test("the default keeps an ordinary gcc link line (collect2) whole", () => {
    const link = [
      "/usr/lib/gcc/x86_64-linux-gnu/12/collect2",
      "-plugin",
      "/usr/lib/gcc/x86_64-linux-gnu/12/liblto_plugin.so",
      "-plugin-opt=/usr/lib/gcc/x86_64-linux-gnu/12/lto-wrapper",
      "-plugin-opt=-fresolution=/tmp/ccXXXXXX.res",
      "--build-id",
      "--eh-frame-hdr",
      "-m",
      "elf_x86_64",
      "--hash-style=gnu",
      "-dynamic-linker",
      "/lib64/ld-linux-x86-64.so.2",
      "-pie",
      "-o",
      "app",
      "/usr/lib/gcc/x86_64-linux-gnu/12/../../../x86_64-linux-gnu/Scrt1.o",
      ...Array.from({ length: 40 }, (_, i) => `obj/module${i}.o`),
      "-L/usr/lib/gcc/x86_64-linux-gnu/12",
      "-lgcc",
      "--push-state",
      "--as-needed",
      "-lgcc_s",
      "--pop-state",
      "-lc",
    ];
    const raw = new TextEncoder().encode(`${link.join("\0")}\0`);
    expect(raw.length).toBeLessThan(4096); // fits the default --max-arg-bytes
    const { args, cut } = splitArgs(raw, sessionOptions({}).maxArgs);
    expect(cut).toBe(false);
    expect(args).toEqual(link);
  });
});

describe("help layout", () => {
  test("wraps to the width, words whole", () => {
    const lines = wrap("aaa bbb ccc ddd eee fff ggg hhh iii jjj kkk lll mmm nnn", 24, 2);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(24);
    expect(lines.join(" ").replace(/\s+/g, " ").trim()).toBe("aaa bbb ccc ddd eee fff ggg hhh iii jjj kkk lll mmm nnn");
  });

  test("the terminal's width on a TTY, 80 elsewhere", () => {
    expect(helpWidth({ isTTY: true, columns: 132 })).toBe(132);
    expect(helpWidth({ isTTY: false, columns: 132 })).toBe(80);
    expect(helpWidth({})).toBe(80);
  });

  for (const width of [60, 80, 120]) {
    test(`root and run help fit ${width} columns (bar an unbreakable example)`, () => {
      const text = rootHelp({ run: "Stream exec events. More.", doctor: "Can this host run it?" }, "run", def, width);
      const cmd = commandHelp("run", { name: "run", description: "Stream exec events.", args: def }, width);
      for (const l of [...text.split("\n"), ...cmd.split("\n")]) {
        if (!l.trimStart().startsWith("sudo ")) expect(l.length).toBeLessThanOrEqual(width);
      }
    });
  }

  test("the lab knobs come after the operator's flags, under their own heading", () => {
    const lines = flagSections(def, 80);
    const at = (s: string) => lines.findIndex((l) => l.trimStart().startsWith(s));
    const heading = lines.indexOf("Lab and tuning:");
    expect(heading).toBeGreaterThan(0);
    for (const f of ["--json", "--duration", "--count", "--pid", "--comm", "--max-args", "--verbose"])
      expect(at(f)).toBeLessThan(heading);
    for (const f of ["--mode", "--slots", "--guard", "--inject-clobber", "--transport", "--encoding", "--pages"])
      expect(at(f)).toBeGreaterThan(heading);
    for (const f of ["--ring-size", "--interval"]) expect(at(f)).toBeGreaterThan(heading);
  });

  test("a command's summary is its first sentence, short of colons and parentheses", () => {
    expect(summary("Memory of the heap, read from the kernel: loads it. More.")).toBe(
      "Memory of the heap, read from the kernel",
    );
    expect(summary("Can this host run dual-slot? Checks things.")).toBe("Can this host run dual-slot?");
  });
});

describe("defaultPages", () => {
  test("4 MiB per CPU up to 16 CPUs, then 64 MiB in all, never under 1 MiB per CPU", () => {
    expect([1, 2, 16, 17, 32, 64, 128, 512].map((c) => defaultPages(c))).toEqual([
      1024, 1024, 1024, 512, 512, 256, 256, 256,
    ]);
  });
});

describe("what a bad value is told", () => {
  test("the value as given, not as a float rounded it; 'all' only on its own", () => {
    expect(() => sessionOptions({ interval: "99999999999999999999" })).toThrow(
      "--interval must be between 1 and 10000, got 99999999999999999999",
    );
    expect(() => sessionOptions({ events: "all,exec" })).toThrow(
      "--events: 'all' stands alone (--events all), not in a list",
    );
  });
});

describe("a size for a transport the command will not use", () => {
  test("bench: refused only when none of its --transports uses it", () => {
    expect(sessionOptions({ "ring-size": "1048576" }, ["perf", "ringbuf"]).ringSize).toBe(1048576);
    expect(() => sessionOptions({ "ring-size": "1048576" }, ["perf"])).toThrow(/--ring-size sizes the ring buffer/);
    expect(sessionOptions({ pages: "8" }, ["perf", "ringbuf"]).pages).toBe(8);
    expect(() => sessionOptions({ pages: "8" }, ["ringbuf", "ringbuf-output"])).toThrow(
      /--pages sizes the perf buffers/,
    );
  });
});
