/**
 * Opens the embedded BPF object from memory, applies the load-time
 * configuration, loads and attaches it, and releases everything exactly once.
 *
 * Configuration goes in before bpf_object__load: the .rodata constants (so the
 * verifier sees them as known and prunes unused modes), the slot map's
 * max_entries, the ring size, and which programs load at all.
 */

import { type Pointer, ptr, toArrayBuffer } from "bun:ffi";
import { availableParallelism } from "node:os";
import { asPtr, checkInt, checkPtr, LibbpfError, libbpf } from "../ffi/libbpf.ts";
import { closeFd } from "../ffi/libc.ts";
import { fnv1a64, hasFilters, type KernelFilters, randomSeed, type TrustedExe } from "../filters/filters.ts";
import { log } from "../log.ts";
import { ALL_PROGRAMS, EMITTER, eventMask, type ProgramSpec, programsFor } from "../wire/events.ts";
import { ds_bss, ds_config, ds_exe_key, programInsns, sections } from "../wire/layout.gen.ts";
import {
  Encoding,
  type EncodingName,
  type EventName,
  Mode,
  type ModeName,
  Transport,
  type TransportName,
} from "../wire/names.ts";
import type { KernelTypes } from "./core-btf.ts";
import { perfOutputSignals } from "./host-facts.ts";
import { setRdonlyCastId } from "./kfunc-calls.ts";
import { castConfig, cutFile, loaderTypes, rdonlyCastId } from "./loader-types.ts";
import { loadAtOnce, loadOnThread, MAX_LOADERS, quietly, splitByWeight } from "./shared-load.ts";
import { verifiedInsns } from "./verify-weights.gen.ts";

export interface LoadConfig {
  mode: ModeName;
  slots: number;
  transport: TransportName;
  encoding: EncodingName;
  guard: boolean;
  injectClobber: boolean;
  maxArgBytes: number;
  ringSize: number;
  /** The record types to emit: only their programs are loaded (see src/wire/events.ts). */
  events: readonly EventName[];
  /** false: exec without the execve/execveat tracepoints (no failed execs): the lab's exec-only object. */
  failedExecs?: boolean;
  /** Kernel-side filters (bpf/filter.bpf.h); absent: none. */
  filters?: KernelFilters;
  /**
   * The lab's interrupt-context programs (experiments "irq"): absent or 0,
   * none; 1, on Elkeid's shared pair of slots; 2, on a pair per context
   * (needs slots 6).
   */
  irqSlots?: 0 | 1 | 2;
  /** true: only FLOOR_PROGRAM is loaded, for attachFloor() (the benchmark's floor). */
  floor?: boolean;
  /**
   * What libbpf resolves CO-RE relocations against: "cut" (default), the
   * kernel's BTF cut to the types the programs read (src/ebpf/core-btf.ts);
   * "whole", all of it, as libbpf does on its own (the cut's differential test).
   */
  kernelBtf?: "cut" | "whole";
  /**
   * How many threads share the programs' load, each with an object of its own
   * over the same maps (src/ebpf/shared-load.ts). 1: this thread loads them
   * all, libbpf's log complete. Default: one per CPU this process may use
   * (Bun's count honours its affinity and a cgroup's CPU quota), up to
   * MAX_LOADERS; 1 when libbpf's debug log is wanted (trace level).
   */
  loaders?: number;
}

/** An empty program: the benchmark puts it where an event set's syscall programs go. */
export const FLOOR_PROGRAM = "ds_nop";

export const DEFAULT_CONFIG: LoadConfig = {
  mode: "dual",
  slots: 2,
  transport: "perf",
  encoding: "compact",
  guard: false,
  injectClobber: false,
  maxArgBytes: 4096,
  ringSize: 1 << 20,
  events: ["exec"],
};

const PAGE = 4096;

/**
 * What the shared load splits by: the instructions the verifier went through
 * for each program (measured, scripts/verify-weights.ts), which its time
 * follows; for a program not measured (its event not on the kernel measured
 * on), its instructions with its subprograms', counted at build time: another
 * unit, 1-4 times fewer, so such a program weighs less than it should.
 */
const VERIFIED: Readonly<Record<string, number | undefined>> = verifiedInsns;
const INSNS: Readonly<Record<string, number | undefined>> = programInsns;

/** consola's trace level: libbpf's debug log is wanted, which only a load on this thread can give. */
const TRACE = 5;

/** struct bpf_object_open_opts up to btf_custom_path (libbpf >= 0.6): sz, ..., btf_custom_path at 48. */
const OPEN_OPTS_SIZE = 56;
const OPEN_OPTS_BTF_CUSTOM_PATH = 48;

/** A load shared across threads failed, whatever failed: the threads, libbpf or the kernel. */
class SharedLoadFailed extends Error {
  constructor(cause: unknown) {
    super(`the load shared across threads failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

export class BpfObject {
  /** The maps, and the programs unless the load was shared out. */
  private obj: Pointer | null;
  /** A shared load's objects, each holding some of the programs over this.obj's maps; empty otherwise. */
  private readonly parts: Pointer[] = [];
  /** Which of the parts holds a program. */
  private readonly holder = new Map<string, Pointer>();
  private readonly links: Pointer[] = [];
  private closed = false;
  /** The argv hash's seed for this load: in .rodata, and what the map's keys are hashed with. */
  private readonly argvSeed = randomSeed();

  /** How many objects hold the programs: the threads that loaded them. */
  get loadedBy(): number {
    return Math.max(1, this.parts.length);
  }

  /**
   * Not given the image: bpf_object__open_mem reads it and copies what it keeps (the programs'
   * instructions, the BTF, the maps' initial data), and forgets it before returning
   * (bpf_object__elf_finish), so the image is the caller's to drop once opened.
   */
  private constructor(
    obj: Pointer,
    readonly config: LoadConfig,
  ) {
    this.obj = obj;
  }

  /**
   * Open, configure and load; on failure nothing is left behind. Writes the kernel's id of
   * bpf_rdonly_cast into `image` first (kfunc-calls.ts): the image is this load's.
   */
  static load(image: Uint8Array, config: LoadConfig): BpfObject {
    const types = loaderTypes();
    // Once for every try below: the id is the kernel's, whatever the try.
    setRdonlyCastId(image, rdonlyCastId(types));
    // libbpf keeps the path at open and parses the file at load: the memfd lives until then.
    const cut = config.kernelBtf === "whole" ? null : cutFile(types);
    try {
      return BpfObject.loadAgainst(image, config, types, cut?.path ?? null);
    } catch (e) {
      if (cut === null || !(e instanceof LibbpfError)) throw e;
      // A cut that misled libbpf must not keep the agent down: one more try, as libbpf does on its own.
      log.warn(`${e.message}; loading once more with libbpf reading the whole kernel BTF, in case the cut is at fault`);
      return BpfObject.loadAgainst(image, config, types, null);
    } finally {
      if (cut !== null) closeFd(cut.fd);
    }
  }

  /**
   * Open, configure and load, CO-RE resolving in `btfPath` (null: libbpf's
   * own kernel BTF). Shared out across threads where there are CPUs for it
   * and the cut to resolve in (without it, each object would read the whole
   * kernel BTF again); a shared load that fails, whatever failed (the threads
   * included), is done again on this thread alone, which logs why.
   */
  private static loadAgainst(
    image: Uint8Array,
    config: LoadConfig,
    types: KernelTypes | null,
    btfPath: string | null,
  ): BpfObject {
    const loaders =
      config.floor === true || btfPath === null
        ? 1
        : (config.loaders ?? (log.level >= TRACE ? 1 : Math.min(MAX_LOADERS, availableParallelism())));
    let self: BpfObject;
    try {
      self = BpfObject.loadWith(image, config, types, btfPath, loaders);
    } catch (e) {
      if (!(e instanceof SharedLoadFailed)) throw e;
      log.debug(`${e.message}; loading once more on one thread, with libbpf's log`);
      self = BpfObject.loadWith(image, config, types, btfPath, 1);
    }
    log.debug(`programs loaded on ${self.loadedBy} thread${self.loadedBy === 1 ? "" : "s"}`);
    try {
      self.fillFilters();
      self.fillEmitter();
    } catch (e) {
      self.close();
      throw e;
    }
    return self;
  }

  /** One load, its programs split across up to `loaders` threads; SharedLoadFailed if a split one failed. */
  private static loadWith(
    image: Uint8Array,
    config: LoadConfig,
    types: KernelTypes | null,
    btfPath: string | null,
    loaders: number,
  ): BpfObject {
    const l = libbpf();
    const opts = new BigUint64Array(OPEN_OPTS_SIZE / 8);
    opts[0] = BigInt(OPEN_OPTS_SIZE);
    const path = btfPath === null ? null : Buffer.from(`${btfPath}\0`);
    if (path !== null) opts[OPEN_OPTS_BTF_CUSTOM_PATH / 8] = BigInt(ptr(path));
    const open = () =>
      checkPtr("bpf_object__open_mem", l.bpf_object__open_mem(ptr(image), BigInt(image.length), ptr(opts)));
    const self = new BpfObject(open(), config);
    try {
      const wanted = self.configure(types);
      const groups = splitByWeight(
        wanted.map((name) => ({
          name,
          weight: VERIFIED[name] ?? INSNS[name] ?? Number(l.bpf_program__insn_cnt(self.prog(name))),
        })),
        loaders,
      );
      if (groups.length > 1) {
        try {
          self.loadShared(groups, open);
        } catch (e) {
          throw new SharedLoadFailed(e);
        }
      } else checkInt("bpf_object__load", l.bpf_object__load(self.obj), "run with --verbose to see libbpf's log");
    } catch (e) {
      self.close();
      throw e;
    }
    return self;
  }

  /**
   * The programs ring ds_bell when ds_ring is half full (bpf/transport.bpf.h):
   * a ring buffer transport, on a kernel whose BPF perf output signals.
   */
  get rings(): boolean {
    return this.config.transport !== "perf" && perfOutputSignals();
  }

  /**
   * The maps first, by this.obj with none of its programs, on a thread while
   * this one opens the other objects; then each group of programs in an
   * object of its own that takes those maps as they are, all groups at once.
   */
  private loadShared(groups: readonly string[][], open: () => Pointer): void {
    const l = libbpf();
    const maps = this.obj!;
    for (const g of groups)
      for (const name of g)
        checkInt("bpf_program__set_autoload", l.bpf_program__set_autoload(this.prog(name), false), name);
    quietly(() => {
      const making = loadOnThread(maps);
      // The thread is joined whatever happens here, and what went wrong first is what is thrown.
      let failed: { error: unknown } | null = null;
      try {
        for (const g of groups) {
          const part = open();
          this.parts.push(part);
          const mine = new Set(g);
          for (const name of ALL_PROGRAMS) {
            const p = checkPtr(
              "bpf_object__find_program_by_name",
              l.bpf_object__find_program_by_name(part, name),
              name,
            );
            checkInt("bpf_program__set_autoload", l.bpf_program__set_autoload(p, mine.has(name)), name);
            if (mine.has(name)) this.holder.set(name, part);
          }
        }
      } catch (e) {
        failed = { error: e };
      }
      const made = making.join();
      if (failed !== null) throw failed.error;
      checkInt("bpf_object__load", made, "the maps");
      // Opened from the same image: the same maps in the same order.
      for (const part of this.parts) {
        let m = asPtr(l.bpf_object__next_map(maps, null));
        let pm = asPtr(l.bpf_object__next_map(part, null));
        for (
          ;
          m !== null && pm !== null;
          m = asPtr(l.bpf_object__next_map(maps, m)), pm = asPtr(l.bpf_object__next_map(part, pm))
        ) {
          checkInt("bpf_map__reuse_fd", l.bpf_map__reuse_fd(pm, l.bpf_map__fd(m)), String(l.bpf_map__name(m)));
        }
        if (m !== null || pm !== null) throw new LibbpfError("bpf_object__next_map", 22, "the objects' maps differ");
      }
      for (const [i, r] of loadAtOnce(this.parts).entries()) {
        checkInt("bpf_object__load", r, `programs ${groups[i]!.join(",")}`);
      }
    });
  }

  /** Sets what the load takes: .rodata, the maps' sizes, which programs. Returns those programs' names. */
  private configure(types: KernelTypes | null): string[] {
    const l = libbpf();
    const c = this.config;
    const f = c.filters ?? { uids: [], cgroups: [], exes: [], argvs: [] };
    this.setConfig({
      mode: Mode[c.mode],
      slots: c.slots,
      transport: Transport[c.transport],
      encoding: Encoding[c.encoding],
      guard: c.guard ? 1 : 0,
      inject_clobber: c.injectClobber ? 1 : 0,
      max_arg_bytes: c.maxArgBytes,
      events: eventMask(c.events),
      filter_uid: f.uids.length > 0 ? 1 : 0,
      filter_cgroup: f.cgroups.length > 0 ? 1 : 0,
      filter_exe: f.exes.length > 0 ? 1 : 0,
      filter_argv: f.argvs.length > 0 ? 1 : 0,
      argv_seed_lo: Number(this.argvSeed & 0xffffffffn),
      argv_seed_hi: Number(this.argvSeed >> 32n),
      irq_slots: c.irqSlots ?? 0,
      ...castConfig(types),
      bell_at: this.rings ? c.ringSize / 2 : 0,
    });
    checkInt(
      "bpf_map__set_max_entries",
      l.bpf_map__set_max_entries(this.map("g_percpu_data"), c.slots),
      "g_percpu_data",
    );
    // The ring map exists in every mode; unused, it costs one page.
    const ring = c.transport === "perf" ? PAGE : c.ringSize;
    checkInt("bpf_map__set_max_entries", l.bpf_map__set_max_entries(this.map("ds_ring"), ring), "ds_ring");
    const wanted =
      c.floor === true
        ? [FLOOR_PROGRAM]
        : programsFor(c.events, c.failedExecs, (c.irqSlots ?? 0) > 0).map((p) => p.name);
    const on = new Set(wanted);
    for (const name of ALL_PROGRAMS) {
      checkInt("bpf_program__set_autoload", l.bpf_program__set_autoload(this.prog(name), on.has(name)), name);
    }
    if (c.floor === true) {
      const nop = this.prog(FLOOR_PROGRAM);
      checkInt("bpf_program__set_autoload", l.bpf_program__set_autoload(nop, true), FLOOR_PROGRAM);
    }
    return wanted;
  }

  /**
   * The filter maps, after load and before attach: hash maps have no initial
   * value to write before load. The programs only look at a map whose
   * .rodata flag is on, and every flag's map is full by the time they run.
   */
  private fillFilters(): void {
    const f = this.config.filters;
    if (!hasFilters(f)) return;
    const one = new Uint8Array([1]);
    for (const uid of f.uids) this.update("ds_filter_uid", new Uint32Array([uid]), one);
    for (const id of f.cgroups) this.update("ds_filter_cgroup", new BigUint64Array([id]), one);
    for (const e of f.exes) this.update("ds_allow_exe", exeKey(e), one);
    for (const a of f.argvs) {
      this.update(
        "ds_allow_argv",
        new BigUint64Array([fnv1a64(a.bytes, this.argvSeed)]),
        new Uint32Array([a.bytes.length]),
      );
    }
  }

  /**
   * ds_emitter (bpf/record.bpf.h): the syscall records' programs jump to
   * ds_emit, and ds_emit back to sendmmsg's exit for its next message.
   */
  private fillEmitter(): void {
    if (this.config.floor === true) return;
    const wanted = new Set(programsFor(this.config.events, this.config.failedExecs).map((p) => p.name));
    const slots: Array<[number, string]> = [
      [0, EMITTER.name],
      [1, "ds_sendmmsg_exit"],
    ];
    for (const [slot, name] of slots)
      if (wanted.has(name)) this.update("ds_emitter", new Uint32Array([slot]), new Uint32Array([this.progFd(name)]));
  }

  /**
   * Replaces the trusted executables of a loaded object (a package upgrade
   * made new inodes). Stale entries go first, so the map never needs more
   * than its 64; until the new ones are in, their records are reported, not
   * lost. Only when --allow-exe was on at load: otherwise the programs never look.
   */
  replaceTrustedExes(before: readonly TrustedExe[], after: readonly TrustedExe[]): void {
    const l = libbpf();
    const fd = this.mapFd("ds_allow_exe");
    const id = (e: TrustedExe) => `${e.dev}:${e.ino}`;
    const keep = new Set(after.map(id));
    for (const e of before) if (!keep.has(id(e))) l.bpf_map_delete_elem(fd, ptr(exeKey(e)));
    for (const e of after) this.update("ds_allow_exe", exeKey(e), new Uint8Array([1]));
  }

  private update(map: string, key: Uint8Array | Uint32Array | BigUint64Array, value: Uint8Array | Uint32Array): void {
    const l = libbpf();
    checkInt("bpf_map_update_elem", l.bpf_map_update_elem(this.mapFd(map), ptr(key), ptr(value), 0n), map);
  }

  /** The object's internal map for a data section (libbpf names it "<object>.rodata" and so on). */
  private sectionMap(section: keyof typeof sections): Pointer {
    const l = libbpf();
    for (
      let m = asPtr(l.bpf_object__next_map(this.obj, null));
      m !== null;
      m = asPtr(l.bpf_object__next_map(this.obj, m))
    ) {
      if (String(l.bpf_map__name(m)).endsWith(section)) return m;
    }
    throw new LibbpfError("bpf_object__next_map", 2, `the object has no ${section} map`);
  }

  /**
   * Writes struct ds_config, the only .rodata variable, in the map's initial
   * value (as bootstrap.c does with skel->rodata) before load.
   */
  private setConfig(values: { [K in keyof typeof ds_config.off]: number }): void {
    const map = this.sectionMap(".rodata");
    const size = new BigUint64Array(1);
    const data = checkPtr("bpf_map__initial_value", libbpf().bpf_map__initial_value(map, ptr(size)), ".rodata");
    const at = sections[".rodata"].vars.ds_cfg;
    if (Number(size[0]) !== sections[".rodata"].size || at + ds_config.size > Number(size[0])) {
      throw new Error(
        `the BPF object's .rodata is ${size[0]} bytes, not the generated layout's ${sections[".rodata"].size}`,
      );
    }
    const view = new DataView(toArrayBuffer(data, 0, Number(size[0])));
    for (const [name, value] of Object.entries(values) as Array<[keyof typeof ds_config.off, number]>) {
      view.setUint32(at + ds_config.off[name], value >>> 0, true);
    }
  }

  /** Writes struct ds_bss of a loaded object (values only known after load). */
  setBss(values: { [K in keyof typeof ds_bss.off]: number }): void {
    const l = libbpf();
    const bss = this.sectionMap(".bss");
    const size = l.bpf_map__value_size(bss);
    if (size !== sections[".bss"].size) {
      throw new Error(`the BPF object's .bss is ${size} bytes, not the generated layout's ${sections[".bss"].size}`);
    }
    const buf = new Uint8Array(size);
    const dv = new DataView(buf.buffer);
    const at = sections[".bss"].vars.ds_bss;
    for (const [name, value] of Object.entries(values) as Array<[keyof typeof ds_bss.off, number]>) {
      dv.setUint32(at + ds_bss.off[name], value >>> 0, true);
    }
    const key = new Uint32Array(1);
    checkInt("bpf_map_update_elem", l.bpf_map_update_elem(l.bpf_map__fd(bss), ptr(key), ptr(buf), 0n), ".bss");
  }

  /** The open object; once closed an error, not a NULL that libbpf would dereference (a segfault). */
  private open(what: string): Pointer {
    if (this.obj === null) throw new Error(`${what}: the BPF object is closed`);
    return this.obj;
  }

  map(name: string): Pointer {
    return checkPtr("bpf_object__find_map_by_name", libbpf().bpf_object__find_map_by_name(this.open(name), name), name);
  }

  mapFd(name: string): number {
    return checkInt("bpf_map__fd", libbpf().bpf_map__fd(this.map(name)), name);
  }

  prog(name: string): Pointer {
    const obj = this.open(name);
    return checkPtr(
      "bpf_object__find_program_by_name",
      libbpf().bpf_object__find_program_by_name(this.holder.get(name) ?? obj, name),
      name,
    );
  }

  progFd(name: string): number {
    return checkInt("bpf_program__fd", libbpf().bpf_program__fd(this.prog(name)), name);
  }

  attach(name: string): void {
    this.links.push(checkPtr("bpf_program__attach", libbpf().bpf_program__attach(this.prog(name)), name));
  }

  /** A program where its SEC() says, or at each tracepoint it is shared by. */
  attachProgram(p: ProgramSpec): void {
    if (p.tailCall === true) return;
    if (p.tracepoints === undefined) {
      this.attach(p.name);
      return;
    }
    const l = libbpf();
    for (const tp of p.tracepoints) {
      const [category = "", event = ""] = tp.split("/");
      const link = l.bpf_program__attach_tracepoint(
        this.prog(p.name),
        Buffer.from(`${category}\0`),
        Buffer.from(`${event}\0`),
      );
      this.links.push(checkPtr("bpf_program__attach_tracepoint", link, `${p.name} at ${tp}`));
    }
  }

  /**
   * The floor of an event set (an object loaded with `floor`): FLOOR_PROGRAM
   * at each syscall tracepoint the set's programs use, so an unrelated
   * syscall pays the kernel's syscall tracing and nothing of ours. Returns
   * those tracepoints.
   */
  attachFloor(programs: readonly ProgramSpec[]): string[] {
    const l = libbpf();
    const nop = this.prog(FLOOR_PROGRAM);
    const where: string[] = [];
    for (const p of programs) {
      if (p.tailCall === true) continue;
      const section = String(l.bpf_program__section_name(this.prog(p.name)));
      const tps = p.tracepoints ?? (section.startsWith("tracepoint/") ? [section.slice("tracepoint/".length)] : []);
      for (const tp of tps) if (tp.startsWith("syscalls/")) where.push(tp);
    }
    for (const tp of where) {
      const [category = "", event = ""] = tp.split("/");
      const link = l.bpf_program__attach_tracepoint(nop, Buffer.from(`${category}\0`), Buffer.from(`${event}\0`));
      this.links.push(checkPtr("bpf_program__attach_tracepoint", link, `${FLOOR_PROGRAM} at ${tp}`));
    }
    return where;
  }

  /**
   * Ends the records (ds_stop, alone in its section's map, bpf/transport.bpf.h):
   * a program that runs after this emits nothing. Best effort: should the kernel
   * refuse the write, the records go on until detach(), drained as before.
   */
  silence(): void {
    const l = libbpf();
    const fd = l.bpf_map__fd(this.map(".data.stop"));
    if (fd >= 0) l.bpf_map_update_elem(fd, ptr(new Uint32Array([0])), ptr(new Uint32Array([1])), 0n);
  }

  /**
   * Detaches every program: no new events after this returns. Each syscall
   * tracepoint's link takes the kernel a grace period to release (about
   * 40 ms, one after another under a global mutex: seconds for the default
   * set), while the links not yet destroyed still fire: `between` runs after
   * each one, so the caller can keep draining the buffers meanwhile.
   */
  detach(between?: () => void): void {
    const l = libbpf();
    while (this.links.length > 0) {
      l.bpf_link__destroy(this.links.pop()!);
      if (this.links.length > 0) between?.();
    }
  }

  /** Links first (stop new events), then the object (programs and maps). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const l = libbpf();
    this.detach();
    if (this.obj !== null) {
      this.clearEmitter();
      for (const part of this.parts.splice(0)) l.bpf_object__close(part);
      this.holder.clear();
      l.bpf_object__close(this.obj);
    }
    this.obj = null;
  }

  /**
   * ds_emitter holds ds_emit and sendmmsg's exit, and ds_emit holds
   * ds_emitter (it jumps back): a cycle the kernel breaks only in deferred
   * work after the last fd closes. Emptied here, everything is freed as
   * soon as the object is closed.
   */
  private clearEmitter(): void {
    const l = libbpf();
    const fd = l.bpf_map__fd(this.map("ds_emitter"));
    if (fd < 0) return; // never loaded
    for (const slot of [0, 1]) l.bpf_map_delete_elem(fd, ptr(new Uint32Array([slot])));
  }
}

function exeKey(e: TrustedExe): Uint8Array {
  const key = new DataView(new ArrayBuffer(ds_exe_key.size));
  key.setBigUint64(ds_exe_key.off.ino, e.ino, true);
  key.setUint32(ds_exe_key.off.dev, e.dev, true);
  return new Uint8Array(key.buffer);
}

/** Enables the kernel's per-program run-time stats while the returned fd is open. */
export function enableBpfStats(): { close(): void } {
  const BPF_STATS_RUN_TIME = 0;
  const fd = checkInt("bpf_enable_stats", libbpf().bpf_enable_stats(BPF_STATS_RUN_TIME));
  return { close: () => closeFd(fd) };
}
