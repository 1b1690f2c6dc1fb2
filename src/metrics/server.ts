/**
 * `run --metrics ADDR`: serves GET /metrics (Prometheus' text format) on
 * ADDR with Bun.serve, 404 for any other path. The snapshot is taken per
 * scrape by a callback, so the server holds no state of the agent.
 */
import { HostError, UsageError } from "../errors.ts";
import { CONTENT_TYPE, type MetricsSnapshot, renderMetrics } from "./prometheus.ts";

/** Flag for `run` (the integrator spreads it into runArgs). */
export const metricsArgs = {
  metrics: {
    type: "string",
    description: "serve Prometheus metrics on ADDR (HOST:PORT, e.g. 127.0.0.1:9464; [::1]:9464) at /metrics",
  },
} as const;

export interface ListenAddress {
  hostname: string;
  port: number;
}

/** "127.0.0.1:9464", "[::1]:9464", "localhost:0". A host is required: no accidental 0.0.0.0. */
export function parseListenAddress(raw: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(raw.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw new UsageError(`--metrics expects HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464), got '${raw}'`);
  return { hostname: (m[1] ?? m[2])!, port };
}

/** The shortest time between two snapshots; scrapes in between get the last one (Prometheus scrapes every 15 s or so). */
export const SNAPSHOT_MIN_MS = 1000;

export interface MetricsServer {
  /** The bound port (the one chosen when ADDR said port 0). */
  readonly port: number;
  readonly url: string;
  stop(): void;
}

/**
 * Starts serving; throws a HostError when the address cannot be bound. A
 * snapshot that throws answers 500 for that scrape and the agent goes on.
 */
export function startMetricsServer(
  addr: ListenAddress,
  snapshot: () => MetricsSnapshot,
  minSnapshotMs = SNAPSHOT_MIN_MS,
): MetricsServer {
  let server: ReturnType<typeof Bun.serve>;
  let cached: { at: number; body: string } | null = null;
  try {
    server = Bun.serve({
      hostname: addr.hostname,
      port: addr.port,
      // Metrics are small; nothing a client sends is needed.
      maxRequestBodySize: 1024,
      fetch(req) {
        const path = new URL(req.url).pathname;
        if (path !== "/metrics") return new Response("not found\n", { status: 404 });
        if (req.method !== "GET" && req.method !== "HEAD")
          return new Response("method not allowed\n", { status: 405, headers: { Allow: "GET, HEAD" } });
        // One snapshot a second at most: it runs on the thread that drains the buffers (a syscall per
        // program), and anyone who can reach the port could otherwise make the agent lose events.
        const now = performance.now();
        if (cached === null || now - cached.at >= minSnapshotMs) {
          try {
            cached = { at: now, body: renderMetrics(snapshot()) };
          } catch (e) {
            return new Response(`snapshot failed: ${(e as Error).message}\n`, { status: 500 });
          }
        }
        const body = cached.body;
        return new Response(body, { headers: { "Content-Type": CONTENT_TYPE } });
      },
      error() {
        return new Response("internal error\n", { status: 500 });
      },
    });
  } catch (e) {
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    // Bun reports a name it could not resolve as EBADF: say what is more likely.
    const msg = (e as Error).message;
    // node:net only here, on a failure: loading it costs 1.5-2 ms of every start.
    const { isIP } = require("node:net") as typeof import("node:net");
    const name =
      isIP(addr.hostname) === 0 && !/EADDRINUSE|in use/i.test(msg)
        ? ` (${addr.hostname} is not an IP address: does it resolve here?)`
        : "";
    throw new HostError(`--metrics ${host}:${addr.port}: cannot listen: ${(e as Error).message}${name}`);
  }
  const port = server.port ?? addr.port;
  return {
    port,
    url: server.url.href,
    stop: () => {
      server.stop(true);
    },
  };
}
