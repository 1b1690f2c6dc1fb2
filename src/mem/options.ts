/**
 * `dual-slot mem`'s flags and their validation, apart from the command so the
 * rules are unit-tested without loading anything.
 */
import type { ArgsDef } from "citty";
import { defaultPages, defaultRingSize, PAGES_DOC, RING_SIZE_DOC, TRANSPORTS } from "../cli/agent-args.ts";
import { choiceArg, intArg, powerOfTwoArg } from "../cli/args.ts";
import { cpuList } from "../ebpf/host-facts.ts";
import { UsageError } from "../errors.ts";
import type { TransportName } from "../wire/names.ts";

export const memArgs = {
  json: {
    type: "boolean",
    default: false,
    description: "one JSON document: every map as the kernel reports it, the footprint, the projection",
  },
  slots: {
    type: "string",
    default: "2",
    description:
      "entries in g_percpu_data to price (1 single, 2 dual as in Elkeid, 3 nest3); each is 16 KiB per possible CPU",
  },
  transport: {
    type: "string",
    description:
      "event transport to price: perf (a buffer per CPU, sized by --pages) or ringbuf / ringbuf-output (one shared ring, sized by --ring-size); default perf, or ringbuf when only --ring-size is given",
  },
  pages: {
    type: "string",
    description: `perf buffer data pages per CPU (power of two; default as \`run\`: ${PAGES_DOC}); the kernel adds one header page per CPU`,
  },
  "ring-size": {
    type: "string",
    description: `ring buffer bytes (power of two, >= 4096; default, as \`run\`: ${RING_SIZE_DOC})`,
  },
  verbose: { type: "boolean", default: false, description: "debug logs, including libbpf's own" },
} as const satisfies ArgsDef;

export interface MemOptions {
  slots: number;
  transport: TransportName;
  pages: number;
  ringSize: number;
}

type Raw = { [K in keyof typeof memArgs]?: string | boolean | undefined };

const given = (v: unknown): boolean => v !== undefined && v !== "";

export function memOptions(a: Raw): MemOptions {
  const transport: TransportName = given(a.transport)
    ? choiceArg("transport", a.transport, TRANSPORTS)
    : given(a["ring-size"])
      ? "ringbuf"
      : "perf";
  if (transport === "perf" && given(a["ring-size"])) {
    throw new UsageError(
      "--ring-size prices the ring buffer; use it with --transport ringbuf (or without --transport)",
    );
  }
  if (transport !== "perf" && given(a.pages))
    throw new UsageError(`--pages sizes perf buffers; it does not apply to --transport ${transport}`);
  return {
    slots: intArg("slots", a.slots ?? "2", 1, 3),
    transport,
    pages: given(a.pages) ? powerOfTwoArg("pages", a.pages, 1, 16384) : defaultPages(cpuList("possible").count),
    ringSize: given(a["ring-size"])
      ? powerOfTwoArg("ring-size", a["ring-size"], 4096, 1 << 30)
      : defaultRingSize(cpuList("possible").count),
  };
}
