/**
 * The Bun runtime a cross-compiled release embeds: fetched from npm once per
 * Bun version, checked against a pinned integrity, cached. The host's own
 * architecture uses the Bun that runs build.ts.
 */
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, dirname } from "node:path";
import { $ } from "bun";

/**
 * npm integrity (sha512 of the tarball) of the Bun runtime used to
 * cross-compile, per Bun version: the runtime becomes the release
 * executable, so it is pinned, not merely fetched over TLS. The host's own
 * architecture uses the Bun running this script. Add a line when Bun is
 * upgraded (`npm view @oven/bun-linux-aarch64@<version> dist.integrity`).
 */
const BUN_RUNTIME_INTEGRITY: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  "1.4.4": {
    "@oven/bun-linux-x64":
      "sha512-CHbbkmHVM28T1GFq+6GL4Ao4ujwwYwj1CxFFwEFzLanPfNsId9AhbIP0Q4reWuWBkGimUkoQygrK7Rgjtj3vog==",
    "@oven/bun-linux-aarch64":
      "sha512-ZTVtpf9zmHSBVPX1sBwe5agGb/rN34yPGg/Hby8e2Ax2uCUA2URZKlZH7qLntK7qaFJCMXh9v0GWNYN2zINz1w==",
  },
};

/** Bun runtime for cross-compiling to `arch`: from npm, integrity-checked, cached by version. */
export async function bunRuntime(npm: string, cache: string, step: (msg: string) => void): Promise<string> {
  const version = Bun.version;
  const dir = `${cache}/${version}/${basename(npm)}`;
  const bin = `${dir}/bun`;
  if (existsSync(bin)) return bin;
  const integrity = BUN_RUNTIME_INTEGRITY[version]?.[npm];
  if (integrity === undefined) {
    throw new Error(
      `no pinned integrity for ${npm}@${version}: add it to BUN_RUNTIME_INTEGRITY in scripts/bun-runtime.ts`,
    );
  }
  step(`fetching ${npm}@${version} (npm pack) -> ${dir}`);
  mkdirSync(dirname(dir), { recursive: true });
  const work = mkdtempSync(`${dirname(dir)}/.fetch-`);
  try {
    const packed = await $`npm pack ${`${npm}@${version}`} --pack-destination ${work}`.nothrow().quiet();
    if (packed.exitCode !== 0) {
      const why = packed.stderr
        .toString()
        .split("\n")
        .map((l) => l.replace(/^npm (ERR!|error) ?/, "").trim())
        .filter(Boolean);
      throw new Error(
        `npm pack ${npm}@${version} failed (exit ${packed.exitCode}): ${why.slice(0, 2).join(" ") || "no message"}`,
      );
    }
    const tgz = readdirSync(work).find((f) => f.endsWith(".tgz"));
    if (tgz === undefined) throw new Error(`npm pack ${npm}@${version} produced no tarball`);
    const got = `sha512-${createHash("sha512")
      .update(readFileSync(`${work}/${tgz}`))
      .digest("base64")}`;
    if (got !== integrity)
      throw new Error(`${npm}@${version}: tarball integrity ${got} does not match the pinned ${integrity}`);
    await $`tar -xzf ${`${work}/${tgz}`} -C ${work} package/bin/bun`.quiet();
    mkdirSync(`${work}/out`);
    renameSync(`${work}/package/bin/bun`, `${work}/out/bun`);
    chmodSync(`${work}/out/bun`, 0o755);
    try {
      renameSync(`${work}/out`, dir);
    } catch (e) {
      // A concurrent build published the same runtime first.
      if (!existsSync(bin)) throw e;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}
