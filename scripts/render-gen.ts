/**
 * Generates src/render/lines.gen.ts: the compiled renderers as TypeScript,
 * one function per record type for its NDJSON line and one for its table
 * summary, from the same compiled steps (src/render/compile.ts) that the
 * schemas' field tables compile to.
 *
 * Every offset, mask and enum table is a literal in the output, and every
 * constant byte run (keys, punctuation, folded values) is a run of 4-byte
 * little-endian DataView stores. A step interpreter paid a switch and a dozen
 * property loads per field and copied constants a byte at a time; the JIT
 * turns this into straight-line code. It is generated at build time, not with
 * `new Function` at start: the executable refuses code from strings.
 *
 *   bun scripts/render-gen.ts [OUT]    (build.ts runs it after the wire layout)
 */

import { type Compiled, compile, compileSummary, Kind, Op, type Step } from "../src/render/compile.ts";
import { schemaFor } from "../src/render/record-schema.ts";
import { EVENTS } from "../src/wire/events.ts";
import { ds_header, ds_level } from "../src/wire/layout.gen.ts";
import { Mode } from "../src/wire/names.ts";

/**
 * Constant bytes a generated line may write, at most: fast.ts ensures room for
 * WORST_FIXED (4096) bytes beyond what comes from the record, host name aside.
 */
const MAX_CONSTANT_BYTES = 2048;

const enc = new TextEncoder();
const TRUE = enc.encode("true");
const FALSE = enc.encode("false");
const Q = "out[p++]=34;";

/** Where each helper the generated code calls comes from. */
const HELPER_MODULES: Readonly<Record<string, string>> = {
  BAIL: "./writers.ts",
  copyPlainJson: "./writers.ts",
  jsonText: "./writers.ts",
  plainEnd: "./writers.ts",
  plainText: "./writers.ts",
  put: "./writers.ts",
  writeDec: "./writers.ts",
  writeHex: "./writers.ts",
  writeIp: "./writers.ts",
  writeNum: "./writers.ts",
  writeOctal: "./writers.ts",
  s64At: "./compile.ts",
  u64At: "./compile.ts",
  u64OrNaN: "./context.ts",
  u16At: "../wire/decode.ts",
  u32At: "../wire/decode.ts",
};

/** One generated function's source, and the helpers and locals it uses. */
class Emitter {
  readonly helpers = new Set<string>(["BAIL"]);
  usesFlags = false;
  usesArgsCut = false;
  constants = 0;

  /** `name(...)`, noting the helper for the imports. */
  call(name: string, args: string): string {
    if (HELPER_MODULES[name] === undefined) throw new Error(`no helper ${name}`);
    this.helpers.add(name);
    return `${name}(${args})`;
  }

  /** The expression reading a member of `kind` at `at` as a number (NaN for a u64/s64 past 2^53). */
  scalar(at: number, kind: Kind): string {
    switch (kind) {
      case Kind.U8:
        return `bytes[${at}]!`;
      case Kind.U16:
        return this.call("u16At", `bytes, ${at}`);
      case Kind.U32:
        return this.call("u32At", `bytes, ${at}`);
      case Kind.S32:
        return `(${this.call("u32At", `bytes, ${at}`)} | 0)`;
      case Kind.U64:
        return this.call("u64OrNaN", `bytes, ${at}`);
      case Kind.S64:
        return this.call("s64At", `bytes, ${at}`);
    }
  }

  /** A u8, u16 or u32 read by width. */
  raw(at: number, width: number): string {
    return width === 4
      ? this.call("u32At", `bytes, ${at}`)
      : width === 2
        ? this.call("u16At", `bytes, ${at}`)
        : `bytes[${at}]!`;
  }

  /**
   * Statements writing constant bytes at p: 4-byte little-endian stores, the
   * last one running up to 3 bytes past the run. Those land in the room
   * render() ensures and are overwritten by what follows (p moves by the
   * run's length only): fewer statements, and the JIT compiles and tiers up
   * a smaller function sooner.
   */
  bytes(b: Uint8Array): string {
    const n = b.length;
    if (n === 0) return "";
    this.constants += n + 3;
    if (n <= 2) return [...b].map((c) => `out[p++] = ${c};`).join("");
    let s = "";
    for (let i = 0; i < n; i += 4) {
      const word = ((b[i] ?? 0) | ((b[i + 1] ?? 0) << 8) | ((b[i + 2] ?? 0) << 16) | ((b[i + 3] ?? 0) << 24)) >>> 0;
      s += `d.setUint32(p + ${i}, 0x${word.toString(16)}, true);`;
    }
    return `${s}p += ${n};`;
  }

  /** The cases of a switch: each value's constant bytes; `otherwise` for the rest. */
  cases(table: ReadonlyMap<number, Uint8Array>, otherwise: string): string {
    let s = "";
    for (const [v, b] of table) {
      if (!Number.isInteger(v)) throw new Error(`enum value ${v}`);
      s += `case ${v}: ${this.bytes(b)} break;`;
    }
    return `${s} default: ${otherwise}`;
  }

  /** The statements of steps [from, to). */
  body(steps: readonly Step[], from: number, to: number): string {
    let s = "";
    for (let i = from; i < to; i++) {
      const st = steps[i]!;
      s += this.bytes(st.pre);
      s += this.step(st, steps, i);
      if (st.op === Op.Object || st.op === Op.When) i += st.skip;
    }
    return s;
  }

  private step(st: Step, steps: readonly Step[], i: number): string {
    const q = st.quoted ? Q : "";
    switch (st.op) {
      case Op.HeaderInt:
        return `p = ${this.call("writeDec", `out, p, ${this.raw(st.at, st.width)}`)};`;
      case Op.Dec64:
        return `{ const v = ${this.call("u64At", `bytes, ${st.at}`)}; if (v < 0) return BAIL; ${q} p = ${this.call("writeDec", "out, p, v")}; ${q} }`;
      case Op.S64:
        return `{ const v = ${this.call("s64At", `bytes, ${st.at}`)}; if (Number.isNaN(v)) return BAIL; ${q} p = ${this.call("writeNum", "out, p, v")}; ${q} }`;
      case Op.Small: {
        const raw = this.raw(st.at, st.width);
        const v = st.signed
          ? `(${raw} | 0)`
          : st.shift === 0 && st.mask === 0xffffffff
            ? raw
            : `(((${raw} >>> ${st.shift}) & ${st.mask}) >>> 0)`;
        if (st.bool) {
          this.constants += FALSE.length - TRUE.length; // bytes() counts both branches
          return `if (${v} !== 0) { ${this.bytes(TRUE)} } else { ${this.bytes(FALSE)} }`;
        }
        return `${q} p = ${this.call("writeNum", `out, p, ${v}`)}; ${q}`;
      }
      case Op.Name: {
        const table = new Map<number, Uint8Array>();
        st.names.forEach((n, v) => {
          if (n !== undefined) table.set(v, n);
        });
        return `switch (bytes[${st.at}]) { ${this.cases(table, "return BAIL;")} }`;
      }
      case Op.Flags: {
        this.usesFlags = true;
        if (st.argsCut) this.usesArgsCut = true;
        const cond = `(flags & ${st.mask}) !== 0${st.argsCut ? " || argsCut" : ""}`;
        return `if (${cond}) { ${this.bytes(TRUE)} } else { ${this.bytes(FALSE)} }`;
      }
      case Op.Str: {
        const span = `const s = off[${st.at}]!; const n = len[${st.at}]!;`;
        if (st.text)
          return `{ ${span} p = ${this.call("plainText", "bytes, s, s + n, out, p")}; if (p < 0) return BAIL; }`;
        const write = `${Q} p = ${this.call("jsonText", "bytes, s, s + n, out, p")}; if (p < 0) return BAIL; ${Q}`;
        return st.optional
          ? `{ ${span} if (n !== 0) { ${this.bytes(st.names[0]!)} ${write} } }`
          : `{ ${span} ${write} }`;
      }
      case Op.Cstr:
        return (
          `{ const s = off[${st.at}]!; const e = ${this.call("plainEnd", `bytes, s, s + len[${st.at}]!, 64`)}; if (e < 0) return BAIL;` +
          `${Q} p = ${this.call("copyPlainJson", "bytes, s, e, out, p")}; ${Q} }`
        );
      case Op.Level0: {
        const s0 = st.at + ds_level.off.data_observed;
        return (
          `if (bytes[${st.at + ds_level.off.used}] === 0) return BAIL;` +
          `{ const e = ${this.call("plainEnd", `bytes, ${s0}, ${s0 + ds_level.bytes.data_observed}, 64`)}; if (e < 0) return BAIL;` +
          `${Q} p = ${this.call("copyPlainJson", `bytes, ${s0}, e, out, p`)}; ${Q} }`
        );
      }
      case Op.Args:
        this.usesArgsCut = true;
        return `p = ctx.args(bytes, off[${st.at}]!, len[${st.at}]!, out, p); if (p < 0) return BAIL; argsCut = ctx.argsCut;`;
      case Op.Absent: {
        let s = "";
        if (st.mask !== 0) {
          this.usesFlags = true;
          s += `if ((flags & ${st.mask}) !== 0) return BAIL;`;
        }
        if (st.dualOnly) s += `if (bytes[${ds_header.off.mode}] !== ${Mode.dual}) return BAIL;`;
        return s;
      }
      case Op.Time:
        return "p = ctx.time(bytes, out, p); if (p < 0) return BAIL;";
      case Op.Host:
        return `p = ${this.call("put", "out, p, ctx.hostJson")};`;
      case Op.Join: {
        let s = q;
        st.parts.forEach(([at, width], k) => {
          if (k > 0) s += "out[p++] = 58;";
          s +=
            width === 8
              ? `{ const v = ${this.call("u64At", `bytes, ${at}`)}; if (v < 0) return BAIL; p = ${this.call("writeDec", "out, p, v")}; }`
              : `p = ${this.call("writeDec", `out, p, ${this.call("u32At", `bytes, ${at}`)}`)};`;
        });
        return s + q;
      }
      case Op.Enum: {
        const wide = st.kind === Kind.U64 || st.kind === Kind.S64;
        let e = `{ const r = ${this.scalar(st.at, st.kind)};`;
        if (wide) e += "if (Number.isNaN(r)) return BAIL;";
        e += st.mask !== 0xffffffff ? `const v = r & ${st.mask};` : "const v = r;";
        const number = `${q} p = ${this.call("writeNum", "out, p, v")}; ${q}`;
        e += `switch (v) { ${this.cases(st.table!, st.other === null ? number : this.bytes(st.other))} } }`;
        if (st.condAt < 0) return e;
        return `if (${this.scalar(st.condAt, st.condKind)} !== ${st.condValue}) { ${q}${q} } else ${e}`;
      }
      case Op.Hex:
        return (
          `{ ${q} out[p++] = 48; out[p++] = 120; const hi = ${this.call("u32At", `bytes, ${st.at + 4}`)};` +
          `const lo = ${this.call("u32At", `bytes, ${st.at}`)};` +
          `p = hi !== 0 ? ${this.call("writeHex", `out, ${this.call("writeHex", "out, p, hi, 1")}, lo, 8`)} : ${this.call("writeHex", "out, p, lo, 1")}; ${q} }`
        );
      case Op.Octal: {
        const wide = st.kind === Kind.U64 || st.kind === Kind.S64;
        return (
          `{ const v = ${this.scalar(st.at, st.kind)};${wide ? "if (Number.isNaN(v)) return BAIL;" : ""}` +
          `${q} p = ${this.call("writeOctal", `out, p, (v & ${st.mask}) >>> 0, ${st.width}`)}; ${q} }`
        );
      }
      case Op.Ip:
        return `${q} p = ${this.call("writeIp", `bytes, ${this.call("u16At", `bytes, ${st.condAt}`)}, ${st.at}, out, p`)}; ${q}`;
      case Op.Object:
        return `if (${this.scalar(st.condAt, st.condKind)} !== 0) { ${this.bytes(st.names[0]!)} ${this.body(steps, i + 1, i + 1 + st.skip)} }`;
      case Op.Const:
        return "";
      case Op.When:
        return `if (${this.scalar(st.condAt, st.condKind)} === ${st.condValue}) { ${this.body(steps, i + 1, i + 1 + st.skip)} }`;
    }
  }
}

/** One generated function: its source, and the helpers it imports. */
function generateFunction(name: string, c: Compiled, flagsAt: number): { src: string; helpers: Set<string> } {
  const e = new Emitter();
  const body = e.body(c.steps, 0, c.steps.length) + e.bytes(c.tail);
  if (e.constants > MAX_CONSTANT_BYTES) throw new Error(`${name}: ${e.constants} constant bytes`);
  let head = "";
  if (e.usesFlags) head += `const flags = ${e.call("u32At", `bytes, ${flagsAt}`)};`;
  if (e.usesArgsCut) head += "let argsCut = false;";
  const src =
    `function ${name}(bytes: Uint8Array, off: Int32Array, len: Int32Array, out: Uint8Array, d: DataView, p: number, ctx: RenderContext): number {` +
    `${head}${body}return p; }`;
  return { src, helpers: e.helpers };
}

/** The whole module. */
export function generateRenderers(): string {
  const fns: string[] = [];
  const helpers = new Set<string>();
  const lines: string[] = [];
  const summaries: string[] = [];
  for (const spec of EVENTS) {
    const schema = schemaFor(spec.name);
    const fn = spec.name.replace(/_(.)/g, (_, c: string) => c.toUpperCase());
    const flagsAt = spec.struct.off.flags;
    if (flagsAt === undefined) throw new Error(`${spec.name} has no flags member`);
    const line = generateFunction(`${fn}Line`, compile<never>(schema, spec), flagsAt);
    fns.push(line.src);
    for (const h of line.helpers) helpers.add(h);
    lines.push(`  ${spec.type}: ${fn}Line,`);
    if (schema.summaryParts !== undefined) {
      const sum = generateFunction(`${fn}Summary`, compileSummary(schema.summaryParts, spec), flagsAt);
      fns.push(sum.src);
      for (const h of sum.helpers) helpers.add(h);
      summaries.push(`  ${spec.type}: ${fn}Summary,`);
    }
  }
  const byModule = new Map<string, string[]>();
  for (const h of [...helpers].sort()) {
    const m = HELPER_MODULES[h]!;
    byModule.set(m, [...(byModule.get(m) ?? []), h]);
  }
  byModule.set("./context.ts", ["type Generated", "type RenderContext"]);
  // In biome's order (by path), so the generated file passes `biome check` as formatted.
  const imports = [...byModule]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([m, names]) =>
      names.every((n) => n.startsWith("type "))
        ? `import type { ${names.map((n) => n.slice(5)).join(", ")} } from "${m}";`
        : `import { ${names.join(", ")} } from "${m}";`,
    );
  return [
    "// Generated by scripts/render-gen.ts from the schemas' compiled steps: do not edit.",
    "// biome-ignore-all lint/correctness/noUnusedFunctionParameters: every renderer has the one signature",
    ...imports,
    "",
    ...fns,
    "",
    "/** Each record type's NDJSON line renderer, by type. */",
    `export const LINES: Readonly<Record<number, Generated>> = {\n${lines.join("\n")}\n};`,
    "",
    "/** Each DS_RECORD_HEAD type's table summary renderer, by type. */",
    `export const SUMMARIES: Readonly<Record<number, Generated>> = {\n${summaries.join("\n")}\n};`,
    "",
  ].join("\n");
}

if (import.meta.main) {
  const out = process.argv[2];
  const src = generateRenderers();
  if (out === undefined) process.stdout.write(src);
  else await Bun.write(out, src);
}
