/**
 * `--sink clickhouse+http://HOST:PORT/DB.TABLE`: where the fleet sink inserts.
 * The URL names a place, never who we are: a user or password in it would be
 * on the command line (ps, the journal, shell history), so one is refused.
 */
import { UsageError } from "../errors.ts";

export interface SinkTarget {
  /** The server's HTTP endpoint, e.g. `http://10.0.0.5:8123/`. */
  endpoint: string;
  database: string;
  table: string;
  /** The URL as given, for messages (it holds no secret). */
  display: string;
}

/** ClickHouse identifiers we emit unquoted in SQL: nothing that needs escaping. */
const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function parseSinkTarget(raw: string, flag = "--sink"): SinkTarget {
  const bad = (why: string) =>
    new UsageError(`${flag}: ${why} (expected clickhouse+http://HOST:8123/DB.TABLE), got '${redact(raw)}'`);
  const m = /^clickhouse\+(https?):\/\/(.*)$/.exec(raw.trim());
  if (m === null) throw bad("unknown scheme");
  let url: URL;
  try {
    url = new URL(`${m[1]}://${m[2]}`);
  } catch {
    throw bad("not a URL");
  }
  if (url.username !== "" || url.password !== "")
    throw bad("credentials do not belong on the command line: use --sink-credentials FILE or the environment");
  if (url.hostname === "") throw bad("no host");
  if (url.search !== "" || url.hash !== "") throw bad("no query or fragment");
  const path = url.pathname.replace(/^\//, "");
  const [database, table, ...more] = path.split(".");
  if (database === undefined || table === undefined || more.length > 0 || !IDENT.test(database) || !IDENT.test(table))
    throw bad("the path must be /DB.TABLE, each a plain identifier");
  const port = url.port !== "" ? url.port : m[1] === "https" ? "8443" : "8123";
  const host = url.hostname.includes(":") && !url.hostname.startsWith("[") ? `[${url.hostname}]` : url.hostname;
  return {
    endpoint: `${url.protocol}//${host}:${port}/`,
    database,
    table,
    display: `clickhouse+${url.protocol}//${host}:${port}/${database}.${table}`,
  };
}

/**
 * A URL in an error message without whatever sits before its last `@`: a
 * password may hold `/` or `@` itself (unencoded, which is also why such a
 * URL does not parse), and the message goes to the journal.
 */
export function redact(raw: string): string {
  return raw.replace(/\/\/.*@/s, "//***@");
}
