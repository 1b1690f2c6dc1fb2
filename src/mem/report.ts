/**
 * `dual-slot mem`: load the object the way the agent would (never attached),
 * ask the kernel what every map costs, open the perf buffers to see what they
 * map, and set that next to the arithmetic and its projection to other hosts.
 */
import { readdirSync, readlinkSync } from "node:fs";
import { release } from "node:os";
import { cpuList, fdMemlock, kernelSizes, pageSize, perfMappedBytes } from "../ebpf/host-facts.ts";
import { mapInfo, possibleCpus } from "../ebpf/info.ts";
import { BpfObject, DEFAULT_CONFIG, type LoadConfig } from "../ebpf/object.ts";
import { PerfReader } from "../reader/perf.ts";
import { formatBytes, groupDigits, renderTable, wrap } from "../render/columns.ts";
import type { TransportName } from "../wire/names.ts";
import {
  type EventTransport,
  expectedMemlock,
  formulaText,
  type KernelSizes,
  MapType,
  mapTypeName,
  type ProjectionRow,
  perfBufferBytes,
  projection,
  scratchBytes,
} from "./model.ts";
import type { MemOptions } from "./options.ts";

export interface MapReport {
  name: string;
  id: number;
  type: number;
  typeName: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  /** The kernel's figure (fdinfo memlock). */
  memlock: number | null;
  /** This module's model of that figure; null when the model or the kernel's struct sizes are unavailable. */
  expected: number | null;
  role: "scratch" | "events" | "other";
}

export interface MemReport {
  kernel: string;
  possibleCpus: number;
  possibleList: string;
  onlineCpus: number;
  pageSize: number;
  options: MemOptions;
  kernelSizes: KernelSizes | null;
  maps: MapReport[];
  scratch: {
    map: string;
    slots: number;
    valueSize: number;
    bytes: number;
    memlock: number | null;
    overhead: number | null;
  };
  perf: PerfBuffers | null;
  /** The ring buffer transports' doorbell (ds_bell, 6.10+): one page per CPU, and its header page. */
  bell: PerfBuffers | null;
  footprint: { scratch: number; events: number; other: number; total: number };
  projection: ProjectionRow[];
  formula: string;
}

const modeFor = (slots: number): LoadConfig["mode"] => (slots === 1 ? "single" : slots === 3 ? "nest3" : "dual");

/** Every map fd this process holds: right after loading one object, exactly that object's maps. */
function ownMapFds(): number[] {
  const fds: number[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === "anon_inode:bpf-map") fds.push(Number(fd));
    } catch {
      // readdir's own fd is already closed by the time we look at it.
    }
  }
  return fds;
}

/** Maps the chosen transport writes events into; the other transport's map is still created, and small. */
function roleOf(name: string, type: number, transport: TransportName): MapReport["role"] {
  if (name === "g_percpu_data") return "scratch";
  if (transport === "perf" ? type === MapType.perf_event_array : type === MapType.ringbuf) return "events";
  return "other";
}

type PerfBuffers = { pagesPerCpu: number; cpus: number; bytes: number; measured: boolean };

/** Opens perf buffers on a loaded perf event array (ds_events, ds_bell) to see what the kernel maps for them; formula if that fails. */
function measurePerf(obj: BpfObject, map: string, pages: number, online: number, page: number): PerfBuffers {
  const before = perfMappedBytes().bytes;
  let reader: PerfReader | null = null;
  try {
    reader = new PerfReader(obj.mapFd(map), pages, () => {}, possibleCpus());
    const bytes = perfMappedBytes().bytes - before;
    return { pagesPerCpu: pages, cpus: Math.round(bytes / ((pages + 1) * page)), bytes, measured: true };
  } catch {
    return { pagesPerCpu: pages, cpus: online, bytes: perfBufferBytes(online, pages, page), measured: false };
  } finally {
    reader?.close();
  }
}

export function measureMemory(image: Uint8Array, opts: MemOptions): MemReport {
  const possible = cpuList("possible");
  const online = cpuList("online").count;
  const page = pageSize();
  const k = kernelSizes();
  const config: LoadConfig = {
    ...DEFAULT_CONFIG,
    mode: modeFor(opts.slots),
    slots: opts.slots,
    transport: opts.transport,
    ringSize: opts.ringSize,
  };
  const obj = BpfObject.load(image, config);
  let maps: MapReport[];
  let perf: MemReport["perf"] = null;
  let bell: MemReport["bell"] = null;
  try {
    const seen = new Set<number>();
    maps = [];
    for (const fd of ownMapFds()) {
      const info = mapInfo(fd);
      if (seen.has(info.id)) continue;
      seen.add(info.id);
      maps.push({
        ...info,
        typeName: mapTypeName(info.type),
        memlock: fdMemlock(fd),
        expected: k === null ? null : expectedMemlock(info, k, possible.count),
        role: roleOf(info.name, info.type, opts.transport),
      });
    }
    maps.sort((a, b) => a.id - b.id);
    if (opts.transport === "perf") perf = measurePerf(obj, "ds_events", opts.pages, online, page);
    else if (obj.rings) bell = measurePerf(obj, "ds_bell", 1, online, page);
  } finally {
    obj.close();
  }

  const scratchMap = maps.find((m) => m.role === "scratch");
  if (scratchMap === undefined) throw new Error("the loaded object has no g_percpu_data map");
  const cost = (m: MapReport) => m.memlock ?? m.expected ?? 0;
  const scratch = cost(scratchMap);
  const events =
    maps.filter((m) => m.role === "events").reduce((s, m) => s + cost(m), 0) + (perf?.bytes ?? 0) + (bell?.bytes ?? 0);
  const other = maps.filter((m) => m.role === "other").reduce((s, m) => s + cost(m), 0);
  const formulaBytes = scratchBytes(possible.count, scratchMap.maxEntries, scratchMap.valueSize);
  const transport: EventTransport =
    opts.transport === "perf" ? { kind: "perf", pages: opts.pages } : { kind: "ring", bytes: opts.ringSize };
  return {
    kernel: release(),
    possibleCpus: possible.count,
    possibleList: possible.text,
    onlineCpus: online,
    pageSize: page,
    options: opts,
    kernelSizes: k,
    maps,
    scratch: {
      map: scratchMap.name,
      slots: scratchMap.maxEntries,
      valueSize: scratchMap.valueSize,
      bytes: formulaBytes,
      memlock: scratchMap.memlock,
      overhead: scratchMap.memlock === null ? null : scratchMap.memlock - formulaBytes,
    },
    perf,
    bell,
    footprint: { scratch, events, other, total: scratch + events + other },
    projection: projection({
      hostCpus: possible.count,
      slots: opts.slots,
      valueSize: scratchMap.valueSize,
      transport,
      pageSize: page,
    }),
    formula: formulaText(scratchMap.valueSize, k),
  };
}

function perfJson(p: PerfBuffers | null) {
  return p === null ? null : { pages_per_cpu: p.pagesPerCpu, cpus: p.cpus, bytes: p.bytes, measured: p.measured };
}

export function memJson(r: MemReport): string {
  return JSON.stringify(
    {
      kernel: r.kernel,
      possible_cpus: r.possibleCpus,
      possible_cpu_list: r.possibleList,
      online_cpus: r.onlineCpus,
      page_size: r.pageSize,
      options: {
        slots: r.options.slots,
        transport: r.options.transport,
        pages: r.options.pages,
        ring_size: r.options.ringSize,
      },
      kernel_sizes:
        r.kernelSizes === null
          ? null
          : {
              bpf_array: r.kernelSizes.bpfArray,
              bpf_ringbuf_map: r.kernelSizes.ringbufMap,
              ringbuf_meta_pages: r.kernelSizes.ringbufMetaPages,
              source: "/sys/kernel/btf/vmlinux",
            },
      maps: r.maps.map((m) => ({
        name: m.name,
        id: m.id,
        type: m.type,
        type_name: m.typeName,
        key_size: m.keySize,
        value_size: m.valueSize,
        max_entries: m.maxEntries,
        flags: m.flags,
        memlock: m.memlock,
        expected: m.expected,
        role: m.role,
      })),
      scratch: {
        map: r.scratch.map,
        slots: r.scratch.slots,
        value_size: r.scratch.valueSize,
        possible_cpus: r.possibleCpus,
        formula_bytes: r.scratch.bytes,
        memlock: r.scratch.memlock,
        overhead: r.scratch.overhead,
      },
      perf_buffers: perfJson(r.perf),
      doorbell_buffers: perfJson(r.bell),
      footprint: r.footprint,
      projection: r.projection.map((p) => ({
        cpus: p.cpus,
        slots_1: p.scratch[0],
        slots_2: p.scratch[1],
        slots_3: p.scratch[2],
        events: p.events,
        total: p.total,
        this_host: p.thisHost,
      })),
      formula: r.formula,
    },
    null,
    2,
  );
}

export function memTable(r: MemReport): string[] {
  const o = r.options;
  const eventsLabel = o.transport === "perf" ? `perf ${o.pages} pages` : `ring ${formatBytes(o.ringSize)}`;
  const out: string[] = [
    `host: ${r.possibleCpus} possible CPUs (${r.possibleList}), ${r.onlineCpus} online, kernel ${r.kernel}, page ${r.pageSize} B`,
    `setting: slots=${o.slots} transport=${o.transport} ${o.transport === "perf" ? `pages=${o.pages} per CPU` : `ring-size=${o.ringSize}`} (loaded, not attached)`,
    "",
    "MAPS (the kernel's bpf_obj_get_info_by_fd and fdinfo memlock)",
  ];
  const mapRows = r.maps.map((m) => [
    m.name,
    String(m.id),
    m.typeName,
    String(m.keySize),
    String(m.valueSize),
    String(m.maxEntries),
    m.memlock === null ? "?" : groupDigits(m.memlock),
    m.expected === null ? "-" : m.expected === m.memlock ? "= model" : `model ${groupDigits(m.expected)}`,
  ]);
  out.push(
    ...renderTable(["NAME", "ID", "TYPE", "KEY", "VALUE", "ENTRIES", "MEMLOCK", "CHECK"], mapRows, [
      "l",
      "r",
      "l",
      "r",
      "r",
      "r",
      "r",
      "l",
    ]),
  );

  const s = r.scratch;
  const perfLine = (what: string, p: PerfBuffers | null) =>
    p === null
      ? []
      : [
          [
            `${what}: ${p.cpus} CPUs x (${p.pagesPerCpu} + 1) pages`,
            formatBytes(p.bytes),
            p.measured ? "mmapped, from /proc/self/maps" : "formula (could not open them)",
          ],
        ];
  const ev = r.maps.filter((m) => m.role === "events");
  const fp = [
    [
      `scratch heap: ${r.possibleCpus} CPUs x ${s.slots} slots x ${s.valueSize} B`,
      formatBytes(s.memlock ?? s.bytes),
      s.overhead === null ? "" : `${groupDigits(s.bytes)} B + ${s.overhead} B kernel overhead`,
    ],
    ...ev.map((m) => [`${m.name} (${m.typeName})`, formatBytes(m.memlock ?? 0), "map memlock"]),
    ...perfLine("perf buffers", r.perf),
    ...perfLine("doorbell perf buffers (ds_bell)", r.bell),
    [`other maps (${r.maps.filter((m) => m.role === "other").length})`, formatBytes(r.footprint.other), "map memlock"],
    ["total", formatBytes(r.footprint.total), `${groupDigits(r.footprint.total)} B`],
  ];
  out.push("", "FOOTPRINT ON THIS HOST", ...renderTable(["PART", "BYTES", "SOURCE"], fp, ["l", "r", "l"]));

  const proj = r.projection.map((p) => [
    String(p.cpus),
    ...p.scratch.map(formatBytes),
    formatBytes(p.events),
    formatBytes(p.total),
    p.thisHost ? "<- this host" : "",
  ]);
  out.push(
    "",
    `PROJECTION (scratch heap for 1-3 slots, event buffers, total for slots=${o.slots})`,
    ...renderTable(
      ["CPUS", "1 SLOT", "2 SLOTS", "3 SLOTS", eventsLabel.toUpperCase(), `HEAP(${o.slots})+EVENTS`, ""],
      proj,
      ["r", "r", "r", "r", "r", "r", "l"],
    ),
    "",
    ...wrap(r.formula),
  );
  return out;
}
