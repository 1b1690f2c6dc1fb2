/**
 * Generates src/render/lines.gen.ts: the compiled renderers as TypeScript,
 * one function per record type for its NDJSON line and one for its table
 * summary, from the same compiled steps (src/render/compile.ts) that the
 * schemas' field tables compile to. Runs of statements that several types
 * share (the common header after the time, the heap object at the end) are
 * functions of their own that those types call (sharedRuns).
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

import { compile, compileSummary, Kind, Op, type Step } from "../src/render/compile.ts";
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
  u64OrNaN: "./compile.ts",
  u16At: "../wire/decode.ts",
  u32At: "../wire/decode.ts",
};

/** One generated function's source, and the helpers and locals it uses. */
class Emitter {
  readonly helpers = new Set<string>(["BAIL"]);
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
    // Every branch's constants count, and each run's overrun: an upper bound on what one line writes.
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

  /** The statements of steps [from, to), one per step at that level (an Object's or When's holds its own). */
  statements(steps: readonly Step[], from: number, to: number): string[] {
    const out: string[] = [];
    for (let i = from; i < to; i++) {
      const st = steps[i]!;
      out.push(this.bytes(st.pre) + this.step(st, steps, i));
      if (st.op === Op.Object || st.op === Op.When) i += st.skip;
    }
    return out;
  }

  body(steps: readonly Step[], from: number, to: number): string {
    return this.statements(steps, from, to).join("");
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
        if (st.bool) return `if (${v} !== 0) { ${this.bytes(TRUE)} } else { ${this.bytes(FALSE)} }`;
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
        return `p = ctx.args(bytes, off[${st.at}]!, len[${st.at}]!, out, p); if (p < 0) return BAIL; argsCut = ctx.argsCut;`;
      case Op.Absent: {
        let s = "";
        if (st.mask !== 0) s += `if ((flags & ${st.mask}) !== 0) return BAIL;`;
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

const SIGNATURE =
  "(bytes: Uint8Array, off: Int32Array, len: Int32Array, out: Uint8Array, d: DataView, p: number, ctx: RenderContext): number";

/** A function of these statements: the locals they use first, `p` returned last. */
function fn(e: Emitter, name: string, statements: readonly string[], flagsAt: number): string {
  const body = statements.join("");
  let head = "";
  if (/\bflags\b/.test(body)) head += `const flags = ${e.call("u32At", `bytes, ${flagsAt}`)};`;
  if (/\bargsCut\b/.test(body)) head += "let argsCut = false;";
  return `function ${name}${SIGNATURE} {${head}${body}return p; }`;
}

/** A line renderer's statements, one per top-level step, and where a run shared with other types may start. */
interface LineParts {
  name: string;
  type: number;
  flagsAt: number;
  statements: string[];
  /** The first statement after the time (the constant before the time names the type). */
  from: number;
}

/** Shared runs this short are not worth a call. */
const MIN_SHARED = 6;

/** The statements [start, end) of a line's run of k at one end of where runs may lie. */
type Span = (l: LineParts, k: number) => [number, number];

/**
 * For each line, the run of statements at one end of its movable part that
 * it shares with the most other lines, weighed by length: the common header
 * (ids, creds, namespaces, pid_tree, exe...) right after the time, and the
 * heap object at the end, which every syscall record has at the same
 * offsets. Each run becomes one function that every line sharing it calls:
 * one hot function the JIT compiles once, instead of a copy per type that
 * tiers up on its own. Statements that use argsCut do not move (it is the
 * calling function's local). Returns each line's run: its key, its span.
 */
function sharedRuns(lines: readonly LineParts[], span: Span): Map<string, [string, number, number]> {
  const key = (l: LineParts, k: number) => {
    const [start, end] = span(l, k);
    return `${l.flagsAt}\n${l.statements.slice(start, end).join("\n")}`;
  };
  const movable = (l: LineParts) => {
    let k = 0;
    for (;;) {
      const [start, end] = span(l, k + 1);
      if (start < l.from || end > l.statements.length) return k;
      if (/\bargsCut\b|ctx\.args/.test(l.statements.slice(start, end).join(""))) return k;
      k++;
    }
  };
  const counts = new Map<string, number>();
  for (const l of lines)
    for (let k = MIN_SHARED; k <= movable(l); k++) counts.set(key(l, k), (counts.get(key(l, k)) ?? 0) + 1);
  const chosen = new Map<string, [string, number, number]>();
  for (const l of lines) {
    let best = 0;
    let bestScore = 0;
    for (let k = MIN_SHARED; k <= movable(l); k++) {
      const n = counts.get(key(l, k))!;
      if (n >= 2 && (n - 1) * k > bestScore) {
        best = k;
        bestScore = (n - 1) * k;
      }
    }
    if (best > 0) chosen.set(l.name, [key(l, best), ...span(l, best)]);
  }
  return chosen;
}

/**
 * Moves each line's shared run (sharedRuns) into a function of its own, one
 * per distinct run, named `${prefix}N`; returns those functions.
 */
function factor(e: Emitter, lines: LineParts[], span: Span, prefix: string): string[] {
  const runs = sharedRuns(lines, span);
  const names = new Map<string, string>();
  const fns: string[] = [];
  for (const l of lines) {
    const run = runs.get(l.name);
    if (run === undefined) continue;
    const [k, start, end] = run;
    let name = names.get(k);
    if (name === undefined) {
      name = `${prefix}${names.size + 1}`;
      names.set(k, name);
      fns.push(fn(e, name, l.statements.slice(start, end), l.flagsAt));
    }
    const call = `p = ${name}(bytes, off, len, out, d, p, ctx); if (p < 0) return BAIL;`;
    l.statements = [...l.statements.slice(0, start), call, ...l.statements.slice(end)];
    // What follows the call may still be shared; what it replaced may not be again.
    if (start === l.from) l.from++;
  }
  return fns;
}

/**
 * The runs of a line that the renderer keeps (src/render/memo.ts): fields
 * that repeat from one record to the next of a process, or of the children of
 * one parent, looked up by that pid. A syscall record's run from `ppid` to
 * `exe_memfd` is its process's (ids, names, exec ids, pid_tree, exe); an
 * exec's `cgroup_id`..`nodename` and `cwd`..`path_truncated` are what a
 * parent's children share (namespaces, the executable, inherited fds). Where
 * two overlap, the first of this list that the line can keep wins (exec's
 * `ppid`..`exe_memfd` holds argv, which is not kept: its other two are).
 */
const MEMO_RUNS: ReadonlyArray<{ first: string; last: string; by: "pid" | "ppid"; records?: true }> = [
  // Only where one process makes many records: an exec or an exit is one per process.
  { first: "ppid", last: "exe_unreachable", by: "pid", records: true },
  { first: "cgroup_id", last: "nodename", by: "ppid" },
  { first: "cwd", last: "path_truncated", by: "ppid" },
];

/** The record bytes a step reads, as [start, end) ranges, and its string and flag inputs; null: not kept. */
function inputs(st: Step, ranges: Array<[number, number]>, strings: number[]): number | null {
  const size = (k: Kind) => (k === Kind.U8 ? 1 : k === Kind.U16 ? 2 : k === Kind.U64 || k === Kind.S64 ? 8 : 4);
  switch (st.op) {
    case Op.Dec64:
    case Op.S64:
      ranges.push([st.at, st.at + 8]);
      return 0;
    case Op.Small:
    case Op.HeaderInt:
      ranges.push([st.at, st.at + st.width]);
      return 0;
    case Op.Name:
      ranges.push([st.at, st.at + 1]);
      return 0;
    case Op.Join:
      for (const [at, width] of st.parts) ranges.push([at, at + width]);
      return 0;
    case Op.Enum:
      ranges.push([st.at, st.at + size(st.kind)]);
      if (st.condAt >= 0) ranges.push([st.condAt, st.condAt + size(st.condKind)]);
      return 0;
    case Op.Str:
      strings.push(st.at);
      return 0;
    case Op.Flags:
      return st.argsCut ? null : st.mask;
    case Op.Absent:
      // A check that sends the record to the general path: a kept run passed it.
      if (st.dualOnly) ranges.push([ds_header.off.mode, ds_header.off.mode + 1]);
      return st.mask;
    case Op.Const:
      return 0;
    default:
      return null;
  }
}

/**
 * Wraps each of the line's MEMO_RUNS in a RunMemo lookup keyed by every byte
 * the run reads, widened to whole words (more bytes in the key can only cost
 * hits, never correctness). `runs`: each distinct run's spec (its bank, then
 * what it reads) and its constant's name, shared by the lines whose runs read
 * the same bytes by the same pid.
 */
function memoize(
  e: Emitter,
  steps: readonly Step[],
  statements: string[],
  off: Readonly<Record<string, number>>,
  runs: Map<string, string>,
): void {
  const top: Step[] = [];
  for (let i = 0; i < steps.length; i++) {
    top.push(steps[i]!);
    if (steps[i]!.op === Op.Object || steps[i]!.op === Op.When) i += steps[i]!.skip;
  }
  const key = (st: Step) => new TextDecoder().decode(st.pre);
  const at = (name: string) => top.findIndex((st) => key(st).endsWith(`"${name}":`));
  const chosen: Array<{
    first: number;
    last: number;
    by: string;
    ranges: Array<[number, number]>;
    strings: number[];
    mask: number;
  }> = [];
  for (const { first: f, last: l, by, records } of MEMO_RUNS) {
    const first = at(f);
    const last = at(l);
    if (first < 0 || last < first || off[by] === undefined) continue;
    if (records && off.syscall === undefined) continue;
    if (chosen.some((c) => first <= c.last && c.first <= last)) continue;
    const ranges: Array<[number, number]> = [];
    const strings: number[] = [];
    let mask = 0;
    let kept = true;
    for (let i = first; i <= last && kept; i++) {
      const m = inputs(top[i]!, ranges, strings);
      if (m === null) kept = false;
      else mask |= m;
    }
    if (kept) chosen.push({ first, last, by, ranges, strings, mask });
  }
  // From the end, so that each splice leaves the statements of the runs before it where they were.
  for (const { first, last, by, ranges, strings, mask } of chosen.sort((x, y) => y.first - x.first)) {
    const words: Array<[number, number]> = [];
    for (const [a, b] of ranges.map(([a, b]): [number, number] => [a & ~3, (b + 3) & ~3]).sort((x, y) => x[0] - y[0])) {
      const prev = words[words.length - 1];
      if (prev !== undefined && a <= prev[1]) prev[1] = Math.max(prev[1], b);
      else words.push([a, b]);
    }
    const body = `${words.length}, ${words.flat().join(", ")}, ${strings.length}, ${strings.join(", ")}`;
    const id = `${by}: ${body}`;
    let name = runs.get(id);
    if (name === undefined) {
      name = `RUN_${runs.size}`;
      runs.set(id, name);
    }
    const bits = mask === 0 ? "0" : `flags & ${mask}`;
    const pid = e.call("u32At", `bytes, ${off[by]}`);
    const run =
      `{ const q = ctx.memo.copy(${pid}, ${name}, ${bits}, bytes, off, len, out, p); if (q >= 0) p = q; else { const from = p;` +
      `${statements.slice(first, last + 1).join("")}` +
      `ctx.memo.keep(${name}, bytes, off, len, out, from, p); } }`;
    statements.splice(first, last - first + 1, run);
  }
}

/** The whole module. */
export function generateRenderers(): string {
  const e = new Emitter();
  const fns: string[] = [];
  const lines: LineParts[] = [];
  const summaries: string[] = [];
  const runs = new Map<string, string>();
  for (const spec of EVENTS) {
    const schema = schemaFor(spec.name);
    const name = spec.name.replace(/_(.)/g, (_, c: string) => c.toUpperCase());
    const flagsAt = spec.struct.off.flags;
    if (flagsAt === undefined) throw new Error(`${spec.name} has no flags member`);
    const c = compile<never>(schema, spec);
    const before = e.constants;
    const statements = [...e.statements(c.steps, 0, c.steps.length), e.bytes(c.tail)];
    if (e.constants - before > MAX_CONSTANT_BYTES) throw new Error(`${name}: ${e.constants - before} constant bytes`);
    memoize(e, c.steps, statements, spec.struct.off, runs);
    const time = statements.findIndex((s) => s.includes("ctx.time("));
    lines.push({ name: `${name}Line`, type: spec.type, flagsAt, statements, from: time + 1 });
    if (schema.summaryParts !== undefined) {
      const sum = compileSummary(schema.summaryParts, spec);
      const start = e.constants;
      const body = [...e.statements(sum.steps, 0, sum.steps.length), e.bytes(sum.tail)];
      if (e.constants - start > MAX_CONSTANT_BYTES) throw new Error(`${name}Summary: too many constant bytes`);
      fns.push(fn(e, `${name}Summary`, body, flagsAt));
      summaries.push(`  ${spec.type}: ${name}Summary,`);
    }
  }
  const shared = [
    ...factor(e, lines, (l, k) => [l.from, l.from + k], "common"),
    ...factor(e, lines, (l, k) => [l.statements.length - k, l.statements.length], "heap"),
  ];
  for (const l of lines) {
    fns.push(fn(e, l.name, l.statements, l.flagsAt));
  }
  const byModule = new Map<string, string[]>();
  for (const h of [...e.helpers].sort()) {
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
    ...[...runs].map(
      ([id, name], bank) => `const ${name} = new Int32Array([${bank}, ${id.slice(id.indexOf(":") + 2)}]);`,
    ),
    ...shared,
    ...fns,
    "",
    "/** How many runs the renderers keep (RunMemo's banks). */",
    `export const RUN_BANKS = ${runs.size};`,
    "",
    "/** Each record type's NDJSON line renderer, by type. */",
    `export const LINES: Readonly<Record<number, Generated>> = {\n${lines.map((l) => `  ${l.type}: ${l.name},`).join("\n")}\n};`,
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
