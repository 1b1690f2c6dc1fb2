/** openNullDevice(): the warm-up's writes go to the null device, and to nothing put in its place. */
import { describe, expect, test } from "bun:test";
import { closeSync, existsSync, fstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openNullDevice } from "../../src/output/null-device.ts";

function inTmp(run: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "ds-null-"));
  try {
    run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("openNullDevice", () => {
  test("/dev/null opens, write-only, and takes writes", () => {
    const fd = openNullDevice();
    expect(fd).toBeGreaterThanOrEqual(0);
    try {
      expect(fstatSync(fd).isCharacterDevice()).toBe(true);
      expect(writeSync(fd, Buffer.from("a line\n"))).toBe(7);
    } finally {
      closeSync(fd);
    }
  });

  test("a regular file in its place is refused and left as it was", () => {
    inTmp((dir) => {
      const path = join(dir, "null");
      writeFileSync(path, "kept");
      expect(openNullDevice(path)).toBe(-1);
      expect(readFileSync(path, "utf8")).toBe("kept");
    });
  });

  test("a missing path is not created", () => {
    inTmp((dir) => {
      const path = join(dir, "null");
      expect(openNullDevice(path)).toBe(-1);
      expect(existsSync(path)).toBe(false);
    });
  });

  test("a FIFO without a reader is refused at once instead of blocking the open", () => {
    inTmp((dir) => {
      const path = join(dir, "null");
      const mk = Bun.spawnSync(["mkfifo", path]);
      expect(mk.exitCode).toBe(0);
      // Without O_NONBLOCK this open would never return (no reader ever comes): the test times out.
      expect(openNullDevice(path)).toBe(-1);
    });
  });

  test("another character device (/dev/zero) is refused", () => {
    expect(openNullDevice("/dev/zero")).toBe(-1);
  });
});
