import { dlopen, FFIType } from "bun:ffi";
import { describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kernelAtLeast } from "../../src/ebpf/host-facts.ts";
import { fcntl } from "../../src/ffi/libc.ts";
import { closeFd, memfdFromBytes } from "../../src/ffi/memfd.ts";
import { inCi } from "../helpers/kernel.ts";

const LIBBPF_SO = join(import.meta.dir, "../../out/native/x64/libbpf.so");
const haveLibbpf = process.arch === "x64" && existsSync(LIBBPF_SO);

const F_GET_SEALS = 1034;
const ALL_SEALS = 0x1 | 0x2 | 0x4 | 0x8; // SEAL | SHRINK | GROW | WRITE
const O_CLOEXEC = 0o2000000;

function fdFlags(fd: number): number {
  const info = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
  const m = /^flags:\s*([0-7]+)$/m.exec(info);
  if (!m?.[1]) throw new Error(`no flags in fdinfo: ${info}`);
  return parseInt(m[1], 8);
}

function patterned(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
}

function memfdMappings(): string[] {
  return readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((l) => l.includes("libbpf"));
}

describe("memfdFromBytes", () => {
  test("round-trips bytes through /proc/self/fd/N", () => {
    const bytes = patterned(3 * 1024 * 1024 + 17);
    const { fd, path } = memfdFromBytes("roundtrip", bytes);
    try {
      expect(path).toBe(`/proc/self/fd/${fd}`);
      expect(new Uint8Array(readFileSync(path))).toEqual(bytes);
    } finally {
      closeFd(fd);
    }
  });

  test("writes a subarray from its own offset, and empty input", () => {
    const backing = patterned(4096);
    const view = backing.subarray(100, 1100);
    const a = memfdFromBytes("view", view);
    const b = memfdFromBytes("empty", new Uint8Array(0));
    try {
      expect(new Uint8Array(readFileSync(a.path))).toEqual(view);
      expect(readFileSync(b.path).length).toBe(0);
    } finally {
      closeFd(a.fd);
      closeFd(b.fd);
    }
  });

  test("is fully sealed: writes, growth and truncation all fail", () => {
    const { fd, path } = memfdFromBytes("sealed", patterned(64));
    try {
      expect(fcntl(fd, F_GET_SEALS, 0)).toBe(ALL_SEALS);
      expect(() => appendFileSync(path, "x")).toThrow();
      expect(() => writeFileSync(path, "overwrite")).toThrow();
      expect(new Uint8Array(readFileSync(path))).toEqual(patterned(64));
    } finally {
      closeFd(fd);
    }
  });

  test("data (executable: false): the same bytes, sealed, and never executable where the kernel can say so", () => {
    const { fd, path } = memfdFromBytes("data", patterned(64), { executable: false });
    try {
      expect(new Uint8Array(readFileSync(path))).toEqual(patterned(64));
      // F_SEAL_EXEC (0x20) comes with MFD_NOEXEC_SEAL on 6.3+; older kernels know neither.
      const F_SEAL_EXEC = 0x20;
      const seals = fcntl(fd, F_GET_SEALS, 0);
      expect(seals & ALL_SEALS).toBe(ALL_SEALS);
      if (kernelAtLeast([6, 3])) {
        expect(seals & F_SEAL_EXEC).toBe(F_SEAL_EXEC);
        expect(statSync(path).mode & 0o111).toBe(0);
      }
    } finally {
      closeFd(fd);
    }
  });

  test("lives on no filesystem", () => {
    const { fd, path } = memfdFromBytes("nowhere", patterned(8));
    try {
      expect(readlinkSync(path)).toBe("/memfd:nowhere (deleted)");
      expect(statSync(path).nlink).toBe(0);
    } finally {
      closeFd(fd);
    }
  });

  test("is close-on-exec by default, and not when asked", () => {
    const a = memfdFromBytes("cloexec", patterned(8));
    const b = memfdFromBytes("inherit", patterned(8), { cloexec: false });
    try {
      expect(fdFlags(a.fd) & O_CLOEXEC).toBe(O_CLOEXEC);
      expect(fdFlags(b.fd) & O_CLOEXEC).toBe(0);
    } finally {
      closeFd(a.fd);
      closeFd(b.fd);
    }
  });

  test("closeFd reports errno text for a bad fd", () => {
    expect(() => closeFd(1 << 20)).toThrow(/^close failed: Bad file descriptor \(EBADF\)$/);
  });
});

describe("dlopen of the bundled libbpf.so through a memfd", () => {
  if (!haveLibbpf) {
    console.warn(`memfd.test: skipping libbpf dlopen tests: ${LIBBPF_SO} is missing (run: bash scripts/libbpf.sh x64)`);
  }

  // In CI a missing prerequisite fails the test instead of skipping it.
  test.skipIf(!haveLibbpf && !inCi())("loads, runs, and is mapped only from the memfd", () => {
    const { fd, path } = memfdFromBytes("libbpf.so", new Uint8Array(readFileSync(LIBBPF_SO)));
    const lib = dlopen(path, {
      libbpf_major_version: { args: [], returns: FFIType.u32 },
      libbpf_version_string: { args: [], returns: FFIType.cstring },
      btf__parse_elf: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.ptr },
      libbpf_get_error: { args: [FFIType.ptr], returns: FFIType.i64 },
      libbpf_set_print: { args: [FFIType.ptr], returns: FFIType.ptr },
    });
    // The mapping must outlive the fd.
    closeFd(fd);

    const version = readFileSync(join(LIBBPF_SO, "../libbpf.version"), "utf8").trim();
    expect(lib.symbols.libbpf_major_version()).toBe(Number(version.split(".")[0]));
    expect(lib.symbols.libbpf_version_string()).toBe(`v${version.split(".").slice(0, 2).join(".")}`);

    // Drives the bundled libelf (and its fstat shim) over a real ELF file:
    // it has no .BTF, so ENOENT proves the ELF was opened and walked, where
    // a broken libelf would give LIBBPF_ERRNO__FORMAT (-4001) or similar.
    lib.symbols.libbpf_set_print(null);
    const btf = lib.symbols.btf__parse_elf(Buffer.from(`${LIBBPF_SO}\0`), null);
    expect(btf).toBeNull();
    expect(lib.symbols.libbpf_get_error(btf)).toBe(-2n);

    const maps = memfdMappings();
    expect(maps.some((l) => l.endsWith(" /memfd:libbpf.so (deleted)"))).toBe(true);
    expect(maps.filter((l) => l.includes(LIBBPF_SO))).toEqual([]);
  });
});
