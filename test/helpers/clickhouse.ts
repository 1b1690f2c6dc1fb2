/**
 * A real clickhouse-server for the fleet tests, from Debian's package: run
 * as user clickhouse (it refuses root's data directory otherwise), with its
 * data, logs and ports (free ones) in a fresh temporary directory, no systemd.
 * Two users: `default` (no password) and `agent` (password AGENT_PASSWORD).
 * kill() is SIGKILL (a server that dies mid-stream), start() again reuses the
 * directory and ports. Its config is Debian's plus one cluster, TWO_SHARDS:
 * two shards on this same server, told apart by their default databases
 * (fleet_s1, fleet_s2), for a Distributed table over real shards.
 */
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const CLICKHOUSE_SERVER = "/usr/sbin/clickhouse-server";
export const AGENT_USER = "agent";
export const AGENT_PASSWORD = "s3cret-for-tests";
export const TWO_SHARDS = "fleet_two_shards";
export const SHARD_DATABASES = ["fleet_s1", "fleet_s2"] as const;
const DEBIAN_CONFIG = "/etc/clickhouse-server/config.xml";

const USERS_XML = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota></default>
    <${AGENT_USER}><password>${AGENT_PASSWORD}</password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota></${AGENT_USER}>
  </users>
  <quotas><default></default></quotas>
</yandex>
`;

/** A TCP port nothing listens on right now. */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

function userIds(name: string): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`));
  if (line === undefined) throw new Error(`no user ${name}: install clickhouse-server (.ci/setup)`);
  const f = line.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export class ClickHouse {
  readonly dir: string;
  readonly httpPort = freePort();
  readonly tcpPort = freePort();
  private readonly interPort = freePort();
  private proc: ReturnType<typeof Bun.spawn> | null = null;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "dual-slot-clickhouse-"));
    const { uid, gid } = userIds("clickhouse");
    writeFileSync(join(this.dir, "users.xml"), USERS_XML);
    writeFileSync(join(this.dir, "config.xml"), this.config());
    chownSync(this.dir, uid, gid);
    for (const f of ["users.xml", "config.xml"]) chownSync(join(this.dir, f), uid, gid);
  }

  /** Debian's config with TWO_SHARDS added to its test clusters. */
  private config(): string {
    const shard = (db: string) =>
      `<shard><replica><host>127.0.0.1</host><port>${this.tcpPort}</port><default_database>${db}</default_database></replica></shard>`;
    const cluster = `<${TWO_SHARDS}>${SHARD_DATABASES.map(shard).join("")}</${TWO_SHARDS}>`;
    const text = readFileSync(DEBIAN_CONFIG, "utf8");
    if (!/<remote_servers[^>]*>/.test(text)) throw new Error(`${DEBIAN_CONFIG}: no <remote_servers>`);
    return text.replace(/<remote_servers[^>]*>/, (open) => `${open}\n        ${cluster}`);
  }

  /** `clickhouse+http://127.0.0.1:PORT/DB.TABLE`. */
  url(table: string): string {
    return `clickhouse+http://127.0.0.1:${this.httpPort}/${table}`;
  }

  async start(timeoutMs = 30_000): Promise<void> {
    const d = this.dir;
    this.proc = Bun.spawn(
      [
        "setpriv",
        "--reuid=clickhouse",
        "--regid=clickhouse",
        "--init-groups",
        CLICKHOUSE_SERVER,
        `--config-file=${d}/config.xml`,
        "--",
        `--path=${d}/`,
        `--tmp_path=${d}/tmp/`,
        `--user_files_path=${d}/user_files/`,
        `--format_schema_path=${d}/format_schemas/`,
        `--users_config=${d}/users.xml`,
        `--http_port=${this.httpPort}`,
        `--tcp_port=${this.tcpPort}`,
        `--interserver_http_port=${this.interPort}`,
        `--logger.log=${d}/server.log`,
        `--logger.errorlog=${d}/server.err.log`,
        "--logger.console=0",
      ],
      { cwd: d, stdout: "ignore", stderr: "ignore", stdin: "ignore" },
    );
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if ((await this.query("SELECT 1")).trim() === "1") return;
      } catch {}
      if (this.proc.exitCode !== null) throw new Error(`clickhouse-server exited ${this.proc.exitCode}: see ${d}`);
      if (Date.now() > deadline) throw new Error(`clickhouse-server did not answer within ${timeoutMs} ms`);
      await Bun.sleep(100);
    }
  }

  /** The result as text (TabSeparated); throws on an HTTP error. */
  async query(sql: string): Promise<string> {
    const r = await fetch(`http://127.0.0.1:${this.httpPort}/`, {
      method: "POST",
      body: sql,
      signal: AbortSignal.timeout(20_000),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`clickhouse: HTTP ${r.status}: ${text}`);
    return text;
  }

  async number(sql: string): Promise<number> {
    return Number((await this.query(sql)).trim());
  }

  /** Polls `sql` until it returns `want` (a number); returns the last value. */
  async waitFor(sql: string, want: number, timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let v = Number.NaN;
    while (Date.now() < deadline) {
      v = await this.number(sql).catch(() => Number.NaN);
      if (v === want) return v;
      await Bun.sleep(200);
    }
    return v;
  }

  /** SIGKILL: the server dies mid-stream, as on a crash. */
  async kill(): Promise<void> {
    this.proc?.kill("SIGKILL");
    await this.proc?.exited;
    this.proc = null;
  }

  async stop(): Promise<void> {
    if (this.proc === null) return;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.proc?.kill("SIGKILL"), 10_000);
    await this.proc.exited;
    clearTimeout(t);
    this.proc = null;
  }

  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
