/**
 * The native boundary: one binding table per library in src/ffi/, modules
 * that do nothing when imported, the libc wrappers other modules use, and the
 * kernel's struct sizes read through libbpf.
 */
import { dlopen, type Pointer, ptr, read } from "bun:ffi";
import { describe, expect, test } from "bun:test";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fsMagic, kernelSizes } from "../../src/ebpf/host-facts.ts";
import { errno, errnoText, memcpy, mmap, munmap, pageSize } from "../../src/ffi/libc.ts";
import { openLibbpf } from "../../src/ffi/libpath.ts";
import { startThread } from "../../src/ffi/pthread.ts";
import { openBell } from "../../src/reader/ring.ts";
import { inCi } from "../helpers/kernel.ts";

const ROOT = join(import.meta.dir, "../..");

/** dlopen calls in code, not in comments. */
function dlopenLines(file: string): string[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => /\bdlopen\(/.test(l) && !/^\s*(\*|\/\/|\/\*)/.test(l));
}

function sources(): string[] {
  return [...new Bun.Glob("src/**/*.ts").scanSync({ cwd: ROOT })].sort();
}

describe("one binding table per native library", () => {
  test("nothing outside src/ffi/ calls dlopen", () => {
    const offenders = sources()
      .filter((f) => !f.startsWith("src/ffi/"))
      .filter((f) => dlopenLines(join(ROOT, f)).length > 0);
    expect(offenders).toEqual([]);
  });

  test("libc is opened in libc.ts alone, libpthread in pthread.ts alone, libbpf in libbpf.ts alone", () => {
    const where = (lib: RegExp) => sources().filter((f) => dlopenLines(join(ROOT, f)).some((l) => lib.test(l)));
    expect(where(/libc\.so/)).toEqual(["src/ffi/libc.ts"]);
    expect(where(/libpthread\.so/)).toEqual(["src/ffi/pthread.ts"]);
    expect(where(/./)).toEqual(["src/ffi/libbpf.ts", "src/ffi/libc.ts", "src/ffi/pthread.ts"]);
  });

  test("a native thread runs a C function on its argument, and join gives its int back", () => {
    // The test's own binding (tests may dlopen): strlen takes one pointer and returns a size.
    const { symbols } = dlopen("libc.so.6", { strlen: { args: ["ptr"], returns: "u64" } });
    const address = (symbols.strlen as unknown as { ptr: Pointer }).ptr;
    const text = Buffer.from("shared out\0");
    const threads = [startThread(address, ptr(text)), startThread(address, ptr(text))];
    expect(threads.map((t) => t.join())).toEqual([10, 10]);
    expect(() => threads[0]!.join()).toThrow(/already joined/);
  });

  test("every function in the libc table resolves", () => {
    // errno() opens libc with the whole table; a missing symbol would throw.
    expect(typeof errno()).toBe("number");
    expect(errnoText(1)).toBe("Operation not permitted (EPERM)");
  });
});

describe("no import side effects", () => {
  test("importing the start-up modules neither re-executes nor sets NO_COLOR", () => {
    const script = [
      `import "${ROOT}/src/cli/color.ts";`,
      `import "${ROOT}/src/ffi/libc.ts";`,
      `import "${ROOT}/src/ebpf/host-facts.ts";`,
      "process.stdout.write(JSON.stringify([process.env.NO_COLOR ?? null, process.env.MIMALLOC_PURGE_DELAY ?? null]));",
    ].join("\n");
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== "NO_COLOR" && k !== "MIMALLOC_PURGE_DELAY") env[k] = v;
    }
    // stdout is a pipe: the old import-time code would have set NO_COLOR, and
    // with no command it would have re-executed bun with the purge delay set.
    const r = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe", env });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toEqual([null, null]);
  });
});

describe("start-up", () => {
  // The agent used to re-execute itself to set MIMALLOC_PURGE_DELAY; an exec
  // of anything at start is a path an attacker may race (the unit sets the
  // variable instead). The binary runs once, as started.
  test("the binary executes nothing at start: one execve, its own", () => {
    const bin = join(ROOT, "dual-slot");
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`bun run build\` first`);
    // A usage error ends the run right after start-up: no root, no BPF needed.
    const r = Bun.spawnSync(["strace", "-f", "-qq", "-e", "trace=execve", bin, "run", "--count", "0"], {
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    const execs = [...r.stderr.toString().matchAll(/execve\("([^"]*)"/g)].map((m) => m[1]);
    expect(execs).toEqual([bin]);
    expect(r.exitCode).toBe(2);
  });
});

describe("libc wrappers", () => {
  const PROT_READ = 1;
  const PROT_WRITE = 2;
  const MAP_PRIVATE = 0x02;
  const MAP_ANONYMOUS = 0x20;

  test("mmap, memcpy, munmap", () => {
    const page = pageSize();
    const p = mmap(null, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect(p).not.toBeNull();
    try {
      const src = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
      memcpy(p!, ptr(src), src.length);
      expect(read.u32(p!, 0)).toBe(0x04030201);
      const back = new Uint8Array(8);
      memcpy(ptr(back), p!, back.length);
      expect(back).toEqual(src);
    } finally {
      expect(munmap(p!, page)).toBe(0);
    }
  });

  test("a failed mmap is null with errno set", () => {
    expect(mmap(null, pageSize(), PROT_READ, MAP_PRIVATE, -1, 0)).toBeNull();
    expect(errno()).toBe(9); // EBADF: a file mapping of no file
  });

  test("statfs through fsMagic", () => {
    expect(fsMagic("/proc")).toBe(0x9fa0); // PROC_SUPER_MAGIC
    expect(fsMagic("/no/such/path")).toBeNull();
  });
});

describe("kernel struct sizes through libbpf", () => {
  const haveBtf = existsSync("/sys/kernel/btf/vmlinux");
  // In CI a missing prerequisite fails the test instead of skipping it.
  test.skipIf(!haveBtf && !inCi())("plausible for this kernel, and kept", () => {
    openLibbpf();
    const k = kernelSizes();
    expect(k).not.toBeNull();
    // struct bpf_array starts with a whole struct bpf_map (a few hundred bytes).
    expect(k!.bpfArray).toBeGreaterThanOrEqual(128);
    expect(k!.bpfArray).toBeLessThan(4096);
    expect(k!.ringbufMap).toBeGreaterThanOrEqual(128);
    expect(k!.ringbufMap).toBeLessThan(4096);
    // Header page(s), consumer page, producer page.
    expect(k!.ringbufMetaPages).toBeGreaterThanOrEqual(2);
    expect(k!.ringbufMetaPages).toBeLessThanOrEqual(4);
    expect(k!.pageSize).toBe(pageSize());
    expect(kernelSizes()).toBe(k);
  });
});

describe("the ring buffer's doorbell", () => {
  test("perf buffers that cannot be opened leave the run without a doorbell, not without a start", () => {
    openLibbpf();
    // An fd that is no perf event array: libbpf refuses it, as it would a doorbell it cannot open.
    const fd = openSync("/dev/null", "r");
    const warnings: string[] = [];
    try {
      expect(openBell(fd, 2, (m) => warnings.push(m))).toBeNull();
    } finally {
      closeSync(fd);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^ring buffer: no doorbell \(.+\); draining every --interval instead$/);
  });
});
