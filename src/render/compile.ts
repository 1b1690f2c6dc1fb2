/**
 * The compiled renderers' compiler: a schema's field tables (schema.ts, and
 * the record schemas) or a summary's parts become a list of steps, each a
 * value read from the record's bytes where its `wire` says, with the constant
 * bytes before it (keys, punctuation, folded constants). scripts/render-gen.ts
 * turns them into the JavaScript of src/render/lines.gen.ts at build time.
 */
import { u32At } from "../wire/decode.ts";
import { type EventSpec, memberAt } from "../wire/events.ts";
import { ds_header } from "../wire/layout.gen.ts";
import { byValue, Encoding, Mode, Transport } from "../wire/names.ts";
import type { EventSchema, JsonType, SummaryPart, Wire } from "./schema.ts";

const enc = new TextEncoder();
const H = ds_header.off;

/** A u64 as a number when it is below 2^53, else -1 (the general path renders it with BigInt). */
export function u64At(b: Uint8Array, at: number): number {
  const hi = u32At(b, at + 4);
  return hi >= 0x200000 ? -1 : hi * 4294967296 + u32At(b, at);
}

export enum Op {
  HeaderInt,
  Dec64,
  S64,
  /** A u8, u16, u32 or s32 member. */
  Small,
  Name,
  Flags,
  Str,
  Cstr,
  Level0,
  Args,
  Absent,
  Time,
  Join,
  Enum,
  Hex,
  Octal,
  Ip,
  /** An optional object: its key and "{" when a member is non-zero, else skip its steps. */
  Object,
  /** Nothing but the step's constant bytes. */
  Const,
  /** A summary's conditional parts: skip them unless a member has a value. */
  When,
  /** The host name, a JSON string known only at run time. */
  Host,
}

/** A scalar member's C type: how the generated code reads it. */
export enum Kind {
  U8,
  U16,
  U32,
  S32,
  U64,
  S64,
}

const KINDS: Readonly<Record<string, Kind>> = {
  u8: Kind.U8,
  u16: Kind.U16,
  u32: Kind.U32,
  s32: Kind.S32,
  u64: Kind.U64,
  s64: Kind.S64,
};

/** A s64 as a number when its magnitude is below 2^53 (less 2^32), else NaN. */
export function s64At(b: Uint8Array, at: number): number {
  const hi = u32At(b, at + 4) | 0;
  return hi >= 0x200000 || hi < -0x1fffff ? Number.NaN : hi * 4294967296 + u32At(b, at);
}

/** A u64 member as the generated code compares it: a number, NaN past 2^53 (never equal to anything). */
export function u64OrNaN(b: Uint8Array, at: number): number {
  const v = u64At(b, at);
  return v < 0 ? Number.NaN : v;
}

export interface Step {
  op: Op;
  /** Constant bytes written before the value ("," + key + ":", and folded constants). */
  pre: Uint8Array;
  /** Byte offset in the record (header or struct member), or string index. */
  at: number;
  width: number;
  kind: Kind;
  quoted: boolean;
  bool: boolean;
  /** A summary's value: plain text, no JSON quoting or escaping. */
  text: boolean;
  shift: number;
  mask: number;
  signed: boolean;
  optional: boolean;
  argsCut: boolean;
  dualOnly: boolean;
  /** Name: the JSON bytes of each enum value. */
  names: Array<Uint8Array | undefined>;
  /** Join: each member's offset and width (4 or 8). */
  parts: Array<[number, number]>;
  /** Enum: each value's name as written; its `otherwise`, or null for the value itself. */
  table: Map<number, Uint8Array> | null;
  other: Uint8Array | null;
  /** Enum's onlyIf, Object's ifNonZero, When's member: offset (-1: none), kind and value. */
  condAt: number;
  condKind: Kind;
  condValue: number;
  /** Object, When: the steps that follow that belong to it. */
  skip: number;
}

export interface Compiled {
  steps: Step[];
  tail: Uint8Array;
}

const NAMES = {
  mode: byValue(Mode),
  transport: byValue(Transport),
  encoding: byValue(Encoding),
} as const;

function jsonBytes(v: unknown): Uint8Array {
  return enc.encode(JSON.stringify(v));
}

/** What escapeText() passes through unchanged (its SAFE_TEXT): constants of a summary must be it. */
const SAFE_TEXT = /^[\x20-\x5b\x5d-\x7e]*$/;

function safeText(s: string): string {
  if (!SAFE_TEXT.test(s)) throw new Error(`summary text ${JSON.stringify(s)} would be escaped`);
  return s;
}

/** A field as compile() walks it: a schema field or a nested object's. */
interface Walked {
  key: string;
  type: JsonType;
  optional?: true;
  wire?: Wire;
}

/**
 * Compiles schema fields (walked as jsonObject() walks them) or a summary's
 * parts into steps, for one record type and context: constant text is folded
 * into the next step's `pre` as it goes.
 */
class Compiler {
  readonly steps: Step[] = [];
  pending = "";

  constructor(private readonly spec: EventSpec) {}

  /** The step of a value, its `pre` the pending constants. */
  private push(op: Op): Step {
    const step: Step = {
      op,
      pre: enc.encode(this.pending),
      at: 0,
      width: 0,
      kind: Kind.U32,
      quoted: false,
      bool: false,
      text: false,
      shift: 0,
      mask: 0xffffffff,
      signed: false,
      optional: false,
      argsCut: false,
      dualOnly: false,
      names: [],
      parts: [],
      table: null,
      other: null,
      condAt: -1,
      condKind: Kind.U32,
      condValue: 0,
      skip: 0,
    };
    this.pending = "";
    this.steps.push(step);
    return step;
  }

  private member(name: string): { off: number; kind: string } {
    const m = memberAt(this.spec.struct, name);
    if (m === undefined) throw new Error(`${this.spec.name} has no member ${name}`);
    return m;
  }

  private scalar(name: string): { off: number; kind: Kind } {
    const { off, kind } = this.member(name);
    const k = KINDS[kind];
    if (k === undefined) throw new Error(`member ${name} of kind ${kind}`);
    return { off, kind: k };
  }

  private stringIndex(name: string): number {
    const i = this.spec.strings.indexOf(name);
    if (i < 0) throw new Error(`${this.spec.name} has no string ${name}`);
    return i;
  }

  /** The fields of one JSON object, after its "{". */
  fields(fields: ReadonlyArray<Walked>): void {
    fields.forEach((f, i) => {
      const w = f.wire;
      if (w === undefined) throw new Error(`schema field ${f.key} has no wire source`);
      // A leading optional field would leave a dangling comma out.
      if (i === 0 && (f.optional === true || w.from === "absent")) throw new Error(`first field ${f.key} is optional`);
      const key = `${i === 0 ? "" : ","}${JSON.stringify(f.key)}:`;
      switch (w.from) {
        case "const":
          this.pending += key + JSON.stringify(w.value);
          return;
        case "host":
          this.pending += key;
          this.push(Op.Host);
          return;
        case "type":
          this.pending += key + JSON.stringify(this.spec.name);
          return;
        case "absent": {
          // Absent fields write nothing.
          const st = this.push(Op.Absent);
          st.mask = w.unlessFlags ?? 0;
          st.dualOnly = w.dualOnly === true;
          return;
        }
        case "object": {
          if (w.ifNonZero === undefined) {
            this.pending += `${key}{`;
            this.fields(w.fields);
            this.pending += "}";
            return;
          }
          const st = this.push(Op.Object);
          st.names = [enc.encode(`${key}{`)];
          this.cond(st, w.ifNonZero, 0);
          const from = this.steps.length;
          this.fields(w.fields);
          this.pending += "}";
          this.push(Op.Const);
          st.skip = this.steps.length - from;
          return;
        }
        case "string":
          if (w.ifPresent === true) {
            // An optional string writes its key only when present.
            const st = this.value(w, f.type, false);
            st.optional = true;
            st.names = [enc.encode(key)];
            return;
          }
      }
      this.pending += key;
      this.value(w, f.type, false);
    });
  }

  /** A summary's parts, as text. */
  summary(parts: readonly SummaryPart[]): void {
    for (const part of parts) {
      if (typeof part === "string") this.pending += safeText(part);
      else if ("from" in part) this.value(part, "string", true);
      else {
        const st = this.push(Op.When);
        this.cond(st, part.when.member, part.when.value);
        const from = this.steps.length;
        this.summary(part.parts);
        if (this.pending !== "") this.push(Op.Const);
        st.skip = this.steps.length - from;
      }
    }
  }

  private cond(st: Step, member: string, value: number): void {
    const { off, kind } = this.scalar(member);
    st.condAt = off;
    st.condKind = kind;
    st.condValue = value;
  }

  /** The step of one value read as `w` says. */
  private value(w: Wire, type: JsonType, text: boolean): Step {
    const names = (n: string) => (text ? enc.encode(safeText(n)) : jsonBytes(n));
    switch (w.from) {
      case "time":
        return this.push(Op.Time);
      case "header": {
        const st = this.push(ds_header.bytes[w.member] === 8 ? Op.Dec64 : Op.HeaderInt);
        st.at = H[w.member];
        st.width = ds_header.bytes[w.member];
        st.quoted = type === "string" && !text;
        return st;
      }
      case "name": {
        const st = this.push(Op.Name);
        st.at = H[w.member];
        st.names = NAMES[w.member].map((n) => (n === undefined ? undefined : names(n)));
        return st;
      }
      case "member": {
        const { off, kind } = this.scalar(w.member);
        const wide = kind === Kind.U64 || kind === Kind.S64;
        if (wide && (w.shift !== undefined || w.mask !== undefined)) throw new Error(`${w.member}: a 64-bit mask`);
        const st = this.push(kind === Kind.U64 ? Op.Dec64 : kind === Kind.S64 ? Op.S64 : Op.Small);
        st.at = off;
        st.kind = kind;
        st.width = kind === Kind.U8 ? 1 : kind === Kind.U16 ? 2 : 4;
        st.quoted = type === "string" && !text;
        st.bool = type === "boolean";
        st.shift = w.shift ?? 0;
        st.mask = w.mask ?? 0xffffffff;
        st.signed = kind === Kind.S32 && w.shift === undefined && w.mask === undefined;
        return st;
      }
      case "join": {
        const st = this.push(Op.Join);
        st.quoted = !text;
        st.parts = w.members.map((name): [number, number] => {
          const { off, kind } = this.member(name);
          if (kind !== "u32" && kind !== "u64") throw new Error(`joined member ${name} of kind ${kind}`);
          return [off, kind === "u64" ? 8 : 4];
        });
        return st;
      }
      case "flags": {
        const st = this.push(Op.Flags);
        st.at = this.member("flags").off;
        st.mask = w.mask;
        st.argsCut = w.orArgsCut === true;
        return st;
      }
      case "string": {
        const st = this.push(Op.Str);
        st.at = this.stringIndex(w.name);
        st.text = text;
        return st;
      }
      case "cstr": {
        const st = this.push(Op.Cstr);
        st.at = this.stringIndex(w.name);
        return st;
      }
      case "level0Observed": {
        const st = this.push(Op.Level0);
        st.at = this.member("level").off;
        return st;
      }
      case "args": {
        const st = this.push(Op.Args);
        st.at = this.stringIndex("args");
        return st;
      }
      case "enum": {
        const { off, kind } = this.scalar(w.member);
        const st = this.push(Op.Enum);
        st.at = off;
        st.kind = kind;
        st.quoted = !text;
        if (w.mask !== undefined) st.mask = w.mask;
        st.table = new Map([...w.names].map(([v, n]) => [v, names(n)]));
        st.other = w.otherwise === undefined ? null : names(w.otherwise);
        if (w.onlyIf !== undefined) this.cond(st, w.onlyIf.member, w.onlyIf.value);
        return st;
      }
      case "hex": {
        const { off, kind } = this.scalar(w.member);
        if (kind !== Kind.U64 && kind !== Kind.S64) throw new Error(`hex member ${w.member} is not 64-bit`);
        const st = this.push(Op.Hex);
        st.at = off;
        st.quoted = !text;
        return st;
      }
      case "octal": {
        const { off, kind } = this.scalar(w.member);
        const st = this.push(Op.Octal);
        st.at = off;
        st.kind = kind;
        st.mask = w.mask;
        st.width = w.digits;
        st.quoted = !text;
        return st;
      }
      case "ip": {
        const family = this.member(`${w.sock}.family`);
        const lo = this.member(`${w.sock}.${w.end}_0`);
        const hi = this.member(`${w.sock}.${w.end}_1`);
        if (family.kind !== "u16" || hi.off !== lo.off + 8) throw new Error(`${w.sock} is not a struct ds_sock_data`);
        const st = this.push(Op.Ip);
        st.at = lo.off;
        st.condAt = family.off;
        st.quoted = !text;
        return st;
      }
      default:
        throw new Error(`a ${w.from} wire is not a value`);
    }
  }

  /** The steps, and the constants left as the tail. */
  done(): Compiled {
    return { steps: this.steps, tail: enc.encode(this.pending) };
  }
}

/** Walks one schema as jsonObject() does and compiles it for one record type and context. */
export function compile<E>(schema: EventSchema<E>, spec: EventSpec): Compiled {
  const c = new Compiler(spec);
  c.pending = "{";
  c.fields(schema.fields);
  if (schema.heap.length > 0) {
    c.pending += `,"heap":{`;
    c.fields(schema.heap);
    c.pending += "}";
  }
  c.pending += "}";
  return c.done();
}

/** A summary's parts, compiled: the text after a table row's slot0_seq and a space. */
export function compileSummary(parts: readonly SummaryPart[], spec: EventSpec): Compiled {
  const c = new Compiler(spec);
  c.summary(parts);
  return c.done();
}
