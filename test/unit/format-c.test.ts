/**
 * bpf/format.bpf.h, the BPF side's hand-written decimal numbers (pid_tree,
 * an fd's inode number), compiled natively and checked against the C
 * library's printf, which the kernel's bpf_snprintf %u agrees with: the text
 * for edge and random values, the returned position, and that no store lands
 * outside [pos, pos + 10). Needs clang (the build's BPF compiler).
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BPF_DIR = join(import.meta.dir, "../../bpf");

const HARNESS = String.raw`
#include <linux/types.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#include "format.bpf.h"

static int bad;

/* buf[0..96) starts as 0xa5; pos 7; text must be printf's, nothing else touched but the spill room. */
static void check(__u32 v)
{
	char buf[96], want[32];
	const int max = 10;
	__u32 end;
	int n;

	memset(buf, 0xa5, sizeof(buf));
	end = ds_put_u32_swar(buf, 7, v, 127);
	n = snprintf(want, sizeof(want), "%u", v);
	if (end != 7u + n || memcmp(buf + 7, want, n) != 0) {
		printf("value %u: got %.*s end %u\n", v, (int)(end - 7), buf + 7, end);
		bad++;
	}
	for (int i = 0; i < (int)sizeof(buf); i++)
		if ((i < 7 || i >= 7 + max) && (unsigned char)buf[i] != 0xa5) {
			printf("value %u: store outside the room at %d\n", v, i);
			bad++;
			break;
		}
}

int main(void)
{
	__u64 x = 0x9e3779b97f4a7c15ull, p = 1;

	for (__u32 v = 0; v < 100000; v++)
		check(v);
	for (int k = 0; k < 10; k++, p *= 10) {
		__u64 e[] = { p - 1, p, p + 1, p * 9, p * 9 + 9 };
		for (int i = 0; i < 5; i++)
			if (e[i] <= UINT32_MAX)
				check((__u32)e[i]);
	}
	check(UINT32_MAX);
	check(UINT32_MAX - 1);
	for (int i = 0; i < 1000000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		check((__u32)(x >> (i % 33)));
	}
	printf(bad ? "FAIL %d\n" : "ok\n", bad);
	return bad != 0;
}
`;

test("format.bpf.h: decimal text as printf's %u, stores only in [pos, pos + 10)", () => {
  const dir = mkdtempSync(join(tmpdir(), "ds-format-c-"));
  try {
    const src = join(dir, "harness.c");
    const bin = join(dir, "harness");
    writeFileSync(src, HARNESS);
    const cc = Bun.spawnSync(["clang", "-O2", "-Wall", "-Werror", `-I${BPF_DIR}`, src, "-o", bin], { stderr: "pipe" });
    expect(cc.stderr.toString()).toBe("");
    expect(cc.exitCode).toBe(0);
    const run = Bun.spawnSync([bin], { stdout: "pipe" });
    expect(run.stdout.toString()).toBe("ok\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
