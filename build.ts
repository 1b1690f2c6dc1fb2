/**
 * Builds dual-slot: the BPF object, the native workload tools, the
 * self-contained libbpf, and one `bun build --compile` executable that embeds
 * them all. On the way it regenerates src/wire/layout.gen.ts from the object's
 * BTF (scripts/wire-gen.ts), and from that the compiled renderers,
 * src/render/lines.gen.ts (scripts/render-gen.ts).
 *
 *   bun run build                  ./dual-slot (embedded libbpf) and
 *                                  ./dual-slot-syslibbpf (dlopens the host's libbpf.so.1;
 *                                  tests and the startup bench compare the two)
 *   bun run build --system-libbpf  ./dual-slot-syslibbpf only
 *   bun run release                dist/dual-slot-linux-x64, dist/dual-slot-linux-arm64
 *                                  (when it can be cross-built) and dist/SHA256SUMS
 *
 * Every variant has its own generated assets module (out/gen/<arch>[-syslibbpf]/assets.ts);
 * a bundler plugin points src/assets.ts at the right one, so building one
 * variant never changes what another build, or `bun src/main.ts`, embeds.
 * out/gen/assets.ts (what source runs import) names the host's embedded build.
 *
 * Cache: ${DUAL_SLOT_CACHE:-/var/cache/dual-slot} holds the native libbpf
 * builds (scripts/libbpf.sh) and the cross-compile Bun runtimes (bun/).
 */

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import type { BunPlugin } from "bun";
import { $ } from "bun";
import pkg from "./package.json" with { type: "json" };
import { bunRuntime } from "./scripts/bun-runtime.ts";
import { eventsDoc } from "./scripts/events-doc.ts";
import { atMost, elfMachine, ffiLibcFloor, glibcFloor, newestFirst } from "./scripts/glibc-floor.ts";
import { generateWire } from "./scripts/wire-gen.ts";

const KNOWN_FLAGS = new Set(["--release", "--system-libbpf"]);
const argv = process.argv.slice(2);
for (const a of argv) {
  if (!KNOWN_FLAGS.has(a)) {
    process.stderr.write(`build: unknown flag ${a} (known: ${[...KNOWN_FLAGS].join(", ")})\n`);
    process.exit(2);
  }
}
const release = argv.includes("--release");
const systemOnly = argv.includes("--system-libbpf");
const root = import.meta.dir;
const B = `${root}/out`;
const CACHE = process.env.DUAL_SLOT_CACHE ?? "/var/cache/dual-slot";

const ARCHES = {
  x64: {
    clang: "x86",
    bun: "bun-linux-x64",
    cc: "cc",
    triple: "x86_64-linux-gnu",
    elfMachine: 62,
    npm: "@oven/bun-linux-x64",
    qemu: null,
  },
  arm64: {
    clang: "arm64",
    bun: "bun-linux-arm64",
    cc: "aarch64-linux-gnu-gcc",
    triple: "aarch64-linux-gnu",
    elfMachine: 183,
    npm: "@oven/bun-linux-aarch64",
    qemu: "qemu-aarch64-static",
  },
} as const;
type Arch = keyof typeof ARCHES;
const hostArch: Arch = process.arch === "arm64" ? "arm64" : "x64";

/** The newest glibc symbol version an ELF file needs; the README states these. */
const GLIBC_TARGET = "2.28";

const t0 = performance.now();
const timings: Array<[string, number]> = [];

function step(msg: string): void {
  process.stderr.write(`build: ${msg}\n`);
}

async function timed<T>(label: string, f: () => Promise<T>): Promise<T> {
  const s = performance.now();
  try {
    return await f();
  } finally {
    timings.push([label, (performance.now() - s) / 1000]);
  }
}

/** Write through a temporary name and rename: a concurrent build or test never sees half a file. */
function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${dirname(path)}/.${basename(path)}.tmp.${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

function firstLine(e: unknown): string {
  if (e instanceof $.ShellError) {
    const err = e.stderr.toString().trim().split("\n").filter(Boolean).at(-1);
    return `exit ${e.exitCode}${err ? `: ${err}` : ""}`;
  }
  return (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? "";
}

async function which(cmd: string): Promise<boolean> {
  return Bun.which(cmd) !== null;
}

async function vmlinuxHeader(): Promise<string> {
  const vmlinux = `${B}/vmlinux.h`;
  if (!existsSync(vmlinux)) {
    step("generating out/vmlinux.h from /sys/kernel/btf/vmlinux");
    const bpftool = existsSync("/usr/sbin/bpftool") ? "/usr/sbin/bpftool" : "bpftool";
    const tmp = `${vmlinux}.tmp.${process.pid}`;
    await $`${bpftool} btf dump file /sys/kernel/btf/vmlinux format c > ${tmp}`;
    renameSync(tmp, vmlinux);
  }
  return vmlinux;
}

/**
 * The program uses no pt_regs or other arch-specific kernel types, so the
 * host's vmlinux.h serves both targets: CO-RE relocates every field access
 * against the running kernel's BTF, and -D__TARGET_ARCH_<arch> only selects
 * bpf_tracing.h's register macros.
 */
async function bpfObject(arch: Arch): Promise<string> {
  await vmlinuxHeader();
  const out = `${B}/dual_slot.${arch}.bpf.o`;
  const tmp = `${B}/.dual_slot.${arch}.bpf.o.tmp.${process.pid}`;
  step(`clang -> ${out}`);
  try {
    await $`clang -O2 -g -target bpf -mcpu=v3 -D__TARGET_ARCH_${ARCHES[arch].clang} -Wall -Werror -I${B} -I${root}/bpf -c ${root}/bpf/dual_slot.bpf.c -o ${tmp}`;
    // DWARF is only for humans; BTF and BTF.ext (CO-RE relocations) stay.
    await $`llvm-strip -g ${tmp}`;
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
  return out;
}

async function tools(arch: Arch): Promise<string> {
  const dir = `${B}/workloads/${arch}`;
  step(`tools -> ${dir}`);
  const cc = ARCHES[arch].cc;
  if (!(await which(cc))) {
    const pkgs = arch === hostArch ? "gcc libc6-dev" : `gcc-${ARCHES[arch].triple} libc6-dev-${arch}-cross`;
    throw new Error(`${cc} is not installed (apt-get install ${pkgs})`);
  }
  await $`bash ${root}/scripts/workloads.sh ${dir} ${cc}`.quiet();
  return dir;
}

/**
 * src/wire/layout.gen.ts from the object's BTF, formatted as the rest of the
 * tree. It is committed (a fresh clone type-checks without a build); CI fails
 * when a build changes it.
 */
async function wireLayout(obj: string): Promise<void> {
  const out = `${root}/src/wire/layout.gen.ts`;
  writeIfChanged(out, formatted(out, generateWire(obj)));
}

/**
 * src/render/lines.gen.ts: the compiled renderers (scripts/render-gen.ts),
 * generated in a child process so that it reads the layout just written.
 * Committed, as the layout is.
 */
function renderers(): void {
  const out = `${root}/src/render/lines.gen.ts`;
  const gen = Bun.spawnSync([process.execPath, `${root}/scripts/render-gen.ts`], { stderr: "pipe" });
  if (gen.exitCode !== 0) throw new Error(`scripts/render-gen.ts failed: ${gen.stderr.toString().trim()}`);
  writeIfChanged(out, formatted(out, gen.stdout.toString()));
}

/** `text` as biome formats the file at `path`. */
function formatted(path: string, text: string): string {
  const fmt = Bun.spawnSync([`${root}/node_modules/.bin/biome`, "format", `--stdin-file-path=${path}`], {
    stdin: Buffer.from(text),
    stderr: "pipe",
  });
  if (fmt.exitCode !== 0) throw new Error(`biome format of ${basename(path)} failed: ${fmt.stderr.toString().trim()}`);
  return fmt.stdout.toString();
}

/** Generated files are committed: say so when a build changes one. */
function writeIfChanged(path: string, text: string): void {
  if (existsSync(path) && readFileSync(path, "utf8") === text) return;
  step(`${path.slice(root.length + 1)} changed: commit it`);
  mkdirSync(dirname(path), { recursive: true });
  writeAtomic(path, text);
}

interface NativeLib {
  so: string;
  version: string;
}

async function nativeLibbpf(arch: Arch): Promise<NativeLib> {
  step(`self-contained libbpf (${arch})`);
  await $`bash ${root}/scripts/libbpf.sh ${arch}`;
  const dir = `${B}/native/${arch}`;
  return { so: `${dir}/libbpf.so`, version: readFileSync(`${dir}/libbpf.version`, "utf8").trim() };
}

async function gitCommit(): Promise<string> {
  const r = await $`git -C ${root} rev-parse --short=12 HEAD`.nothrow().quiet();
  if (r.exitCode !== 0) return "unknown";
  const dirty = (await $`git -C ${root} status --porcelain --untracked-files=no`.nothrow().quiet()).text().trim();
  return r.text().trim() + (dirty ? "-dirty" : "");
}

/** Generated module behind src/assets.ts for one variant: embedded files and build facts. */
function writeAssets(
  variant: string,
  arch: Arch,
  obj: string,
  toolsDir: string,
  lib: NativeLib | null,
  commit: string,
): string {
  const gen = `${B}/gen/${variant}`;
  mkdirSync(gen, { recursive: true });
  const imp = (name: string, path: string) => `import ${name} from ${JSON.stringify(path)} with { type: "file" };`;
  const src = [
    "// Generated by build.ts. Do not edit. Typed by src/assets.ts.",
    "// @ts-nocheck: the imports are binary files, which have no type declarations",
    imp("bpfObject", obj),
    imp("storm", `${toolsDir}/storm`),
    imp("noop", `${toolsDir}/noop`),
    imp("flood", `${toolsDir}/flood`),
    lib ? imp("libbpfSo", lib.so) : "const libbpfSo = null;",
    `export const embedded = { bpfObject, storm, noop, flood, libbpfSo: libbpfSo as string | null };`,
    `export const buildInfo = ${JSON.stringify({ version: pkg.version, commit, libbpf: lib ? lib.version : "system", arch })};`,
    "",
  ].join("\n");
  const file = `${gen}/assets.ts`;
  writeAtomic(file, src);
  return file;
}

/** Points source runs (`bun src/main.ts`, unit tests) at one variant's assets. */
function pointSourceAt(variant: string, onlyIfMissing: boolean): void {
  const p = `${B}/gen/assets.ts`;
  if (onlyIfMissing && existsSync(p)) return;
  writeAtomic(p, `export * from "./${variant}/assets.ts";\n`);
}

/** Redirects src/assets.ts's import of out/gen/assets.ts to one variant's module. */
function assetsPlugin(assetsModule: string): BunPlugin {
  return {
    name: "dual-slot-assets",
    setup(b) {
      b.onResolve({ filter: /(^|\/)out\/gen\/assets\.ts$/ }, (a) =>
        a.importer === `${root}/src/assets.ts` ? { path: assetsModule } : undefined,
      );
    },
  };
}

async function compile(arch: Arch, assetsModule: string, outfile: string): Promise<void> {
  step(`bun build --compile (${ARCHES[arch].bun}) -> ${outfile}`);
  const executablePath =
    arch === hostArch ? undefined : await bunRuntime(ARCHES[arch].npm, `${CACHE}/bun`, (m) => step(m));
  // The output's name is recorded inside the executable (its entry point is
  // /$bunfs/root/<name>), so the temporary file gets the final name, in a
  // private directory beside the target: identical inputs, identical bytes.
  const tmpDir = mkdtempSync(`${dirname(outfile)}/.${basename(outfile)}.build-`);
  const tmp = `${tmpDir}/${basename(outfile)}`;
  try {
    const r = await Bun.build({
      entrypoints: [`${root}/src/main.ts`],
      minify: true,
      sourcemap: "none",
      // Precompiled bytecode: the executable skips parsing its JavaScript at start.
      bytecode: true,
      format: "esm",
      plugins: [assetsPlugin(assetsModule)],
      compile: {
        target: ARCHES[arch].bun,
        outfile: tmp,
        ...(executablePath !== undefined ? { executablePath } : {}),
        // A root agent must not take code or settings from wherever it is
        // started: by default a compiled Bun program reads ./bunfig.toml
        // (whose `preload` runs any script) and ./.env from its working directory.
        autoloadBunfig: false,
        autoloadDotenv: false,
        autoloadTsconfig: false,
        autoloadPackageJson: false,
        // Only code inside the executable runs: this also makes Bun refuse
        // --preload/--require/--import smuggled in through BUN_OPTIONS.
        execArgv: ["--disallow-code-generation-from-strings=strict"],
      },
    });
    if (!r.success) throw new Error(`bun build failed: ${r.logs.map(String).join("; ")}`);
    renameSync(tmp, outfile);
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

interface Variant {
  arch: Arch;
  embedLibbpf: boolean;
  outfile: string;
}

interface Built {
  outfile: string;
  arch: Arch;
  lib: NativeLib | null;
}

async function buildVariants(variants: Variant[], commit: string): Promise<Built[]> {
  mkdirSync(B, { recursive: true });
  const objs = new Map<Arch, string>();
  const toolDirs = new Map<Arch, string>();
  const libs = new Map<Arch, NativeLib>();
  const out: Built[] = [];
  for (const v of variants) {
    const { arch } = v;
    if (!objs.has(arch)) {
      const obj = await timed(`bpf object ${arch}`, () => bpfObject(arch));
      objs.set(arch, obj);
      if (arch === hostArch) await timed("wire layout", () => wireLayout(obj));
      if (arch === hostArch) await timed("renderers", async () => renderers());
      if (arch === hostArch) writeIfChanged(`${root}/docs/events.md`, eventsDoc());
    }
    // libbpf first: as root, scripts/libbpf.sh installs the (cross) compiler the tools need too.
    let lib: NativeLib | null = null;
    if (v.embedLibbpf) {
      lib = libs.get(arch) ?? (await timed(`libbpf.so ${arch}`, () => nativeLibbpf(arch)));
      libs.set(arch, lib);
    }
    if (!toolDirs.has(arch)) toolDirs.set(arch, await timed(`tools ${arch}`, () => tools(arch)));
    const variant = v.embedLibbpf ? arch : `${arch}-syslibbpf`;
    const assets = writeAssets(variant, arch, objs.get(arch)!, toolDirs.get(arch)!, lib, commit);
    if (arch === hostArch) pointSourceAt(variant, !v.embedLibbpf);
    await timed(`compile ${basename(v.outfile)}`, () => compile(arch, assets, v.outfile));
    out.push({ outfile: v.outfile, arch, lib });
  }
  return out;
}

// --- release --------------------------------------------------------------------

/** Runs `--version` of the artifact (arm64 under qemu-user when available) and checks what it says. */
async function smoke(b: Built, commit: string): Promise<string> {
  const q = ARCHES[b.arch].qemu;
  let cmd: string[];
  if (b.arch === hostArch) cmd = [b.outfile, "--version"];
  else if (q !== null && (await which(q))) cmd = [q, "-L", `/usr/${ARCHES[b.arch].triple}`, b.outfile, "--version"];
  else return `not run (no ${q ?? "emulator"} for ${b.arch})`;
  const p = Bun.spawnSync(cmd, {
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  const text = p.stdout.toString().trim();
  const want = `libbpf ${b.lib?.version ?? "?"} embedded, commit ${commit}, ${b.arch})`;
  if (p.exitCode !== 0 || !text.endsWith(want)) {
    throw new Error(
      `${basename(b.outfile)} --version said ${JSON.stringify(text)} (exit ${p.exitCode}), expected it to end with ${JSON.stringify(want)}: ${p.stderr.toString().trim()}`,
    );
  }
  return `${b.arch === hostArch ? "" : `${q}: `}${text}`;
}

async function doRelease(commit: string): Promise<void> {
  const dist = `${root}/dist`;
  mkdirSync(dist, { recursive: true });
  if (commit.endsWith("-dirty")) step(`warning: releasing from a dirty tree (commit ${commit})`);
  const built: Built[] = [];
  const skipped: string[] = [];
  const arches = [hostArch, ...(Object.keys(ARCHES) as Arch[]).filter((a) => a !== hostArch)];
  for (const arch of arches) {
    const outfile = `${dist}/dual-slot-linux-${arch}`;
    try {
      built.push(...(await buildVariants([{ arch, embedLibbpf: true, outfile }], commit)));
    } catch (e) {
      if (arch === hostArch) throw e;
      // No stale artifact may sit beside a SHA256SUMS that does not list it.
      rmSync(outfile, { force: true });
      skipped.push(`${arch}: ${firstLine(e)}`);
      step(`SKIPPING dist/dual-slot-linux-${arch}: cannot cross-build it: ${firstLine(e)}`);
    }
  }

  const rows: Array<Record<string, string | number>> = [];
  const sums: string[] = [];
  for (const b of built) {
    const name = basename(b.outfile);
    const machine = elfMachine(b.outfile);
    if (machine !== ARCHES[b.arch].elfMachine)
      throw new Error(`${name}: ELF machine ${machine}, expected ${ARCHES[b.arch].elfMachine}`);
    const sha = createHash("sha256").update(readFileSync(b.outfile)).digest("hex");
    sums.push(`${sha}  ${name}`);
    const triple = ARCHES[b.arch].triple;
    const soFloor = b.lib ? await glibcFloor(b.lib.so, triple) : "-";
    const exeFloor = await glibcFloor(b.outfile, triple);
    const libc = b.arch === hostArch ? `/lib/${triple}/libc.so.6` : `/usr/${triple}/lib/libc.so.6`;
    const ffi = await ffiLibcFloor(libc, triple);
    if (ffi.missing.length > 0)
      step(`warning: bun:ffi binds ${ffi.missing.join(", ")} from libc.so.6, which ${libc} does not export`);
    const overall = [soFloor, exeFloor, ffi.floor].filter((v) => /^[0-9.]+$/.test(v)).sort(newestFirst)[0] ?? "unknown";
    for (const [what, f] of [
      ["libbpf.so", soFloor],
      [name, exeFloor],
      ["bun:ffi libc bindings", ffi.floor],
    ] as const) {
      if (f !== "-" && !atMost(f, GLIBC_TARGET))
        step(`warning: ${what} needs glibc ${f}, above the ${GLIBC_TARGET} target`);
    }
    rows.push({
      file: `dist/${name}`,
      bytes: statSync(b.outfile).size,
      libbpf: b.lib?.version ?? "system",
      "libbpf.so bytes": b.lib ? statSync(b.lib.so).size : 0,
      "glibc (libbpf.so)": soFloor,
      "glibc (executable)": exeFloor,
      "glibc (bun:ffi libc)": `${ffi.floor}${ffi.by.length ? ` (${ffi.by.join(", ")})` : ""}`,
      "glibc needed": overall,
      "--version": await smoke(b, commit),
      sha256: sha,
    });
  }
  writeAtomic(`${dist}/SHA256SUMS`, `${sums.join("\n")}\n`);

  process.stderr.write("\nrelease:\n");
  for (const r of rows) {
    process.stderr.write(`  ${r.file}\n`);
    for (const [k, v] of Object.entries(r)) if (k !== "file") process.stderr.write(`    ${k.padEnd(20)} ${v}\n`);
  }
  process.stderr.write(`  dist/SHA256SUMS (${sums.length} file${sums.length === 1 ? "" : "s"})\n`);
  for (const s of skipped) process.stderr.write(`  NOT BUILT ${s}\n`);
}

// --- main --------------------------------------------------------------------

try {
  const commit = await gitCommit();
  if (release) {
    await doRelease(commit);
  } else if (systemOnly) {
    await buildVariants([{ arch: hostArch, embedLibbpf: false, outfile: `${root}/dual-slot-syslibbpf` }], commit);
  } else {
    await buildVariants(
      [
        { arch: hostArch, embedLibbpf: true, outfile: `${root}/dual-slot` },
        { arch: hostArch, embedLibbpf: false, outfile: `${root}/dual-slot-syslibbpf` },
      ],
      commit,
    );
  }
} catch (e) {
  if (e instanceof $.ShellError) process.stderr.write(e.stderr.toString());
  else if (process.env.DEBUG) console.error(e);
  step(`FAILED: ${firstLine(e)}`);
  process.exit(1);
}
step(`timings: ${timings.map(([l, s]) => `${l} ${s.toFixed(1)}s`).join(", ")}`);
step(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
