/**
 * One INSERT over ClickHouse's HTTP interface: a gzip'd JSONEachRow body,
 * basic auth, a timeout. Never throws: what went wrong comes back as one
 * short line, for the sink's single warning.
 */
import { authorization, type SinkCredentials } from "./credentials.ts";
import type { SinkTarget } from "./target.ts";

export type InsertResult = { ok: true } | { ok: false; auth: boolean; why: string };

export class ClickHouseClient {
  private readonly url: string;
  private readonly headers: Record<string, string>;

  constructor(
    readonly target: SinkTarget,
    credentials: SinkCredentials | null,
    private readonly timeoutMs = 10_000,
  ) {
    const query = `INSERT INTO ${target.database}.${target.table} FORMAT JSONEachRow`;
    // Nested objects (heap, levels, old/new) have no column: skipped here, kept whole in `raw`.
    const params = new URLSearchParams({ query, input_format_skip_unknown_fields: "1" });
    this.url = `${target.endpoint}?${params.toString()}`;
    this.headers = {
      "Content-Encoding": "gzip",
      "Content-Type": "application/x-ndjson",
      ...(credentials !== null ? { Authorization: authorization(credentials) } : {}),
    };
  }

  async query(sql: string): Promise<QueryResult> {
    const auth = this.headers.Authorization;
    let res: Response;
    try {
      res = await fetch(this.target.endpoint, {
        method: "POST",
        headers: auth !== undefined ? { Authorization: auth } : {},
        body: sql,
        signal: AbortSignal.timeout(this.timeoutMs * 6),
      });
    } catch (e) {
      return { ok: false, auth: false, why: networkWhy(e, this.timeoutMs * 6) };
    }
    const text = await res.text().catch(() => "");
    if (res.ok) return { ok: true, text };
    const bad = res.status === 401 || /^Code: 19[2-4],/.test(text.trim());
    return { ok: false, auth: bad, why: `HTTP ${res.status}: ${serverMessage(text.trim())}` };
  }

  async insert(gz: Uint8Array, abort?: AbortSignal): Promise<InsertResult> {
    const signals = [AbortSignal.timeout(this.timeoutMs), ...(abort !== undefined ? [abort] : [])];
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: "POST",
        headers: this.headers,
        body: gz,
        signal: AbortSignal.any(signals),
      });
    } catch (e) {
      return { ok: false, auth: false, why: networkWhy(e, this.timeoutMs) };
    }
    if (res.ok) {
      await res.arrayBuffer().catch(() => {});
      return { ok: true };
    }
    const text = (await res.text().catch(() => "")).trim();
    const auth = res.status === 401 || res.status === 403 || /^Code: 19[2-4],/.test(text);
    return { ok: false, auth, why: `HTTP ${res.status}${auth ? " (bad credentials)" : ""}: ${serverMessage(text)}` };
  }
}

/** A SELECT's answer as text (for `sink query --run`). */
export type QueryResult = { ok: true; text: string } | { ok: false; auth: boolean; why: string };

/** ClickHouse's "Code: N, e.displayText() = DB::Exception: MSG, e.what() = ..." as "Code N: MSG", one line, bounded. */
function serverMessage(text: string): string {
  const m = /^Code: (\d+), e\.displayText\(\) = (?:DB::Exception: )?(.*?)(?:, e\.what\(\) = .*)?$/s.exec(text);
  const msg = m !== null ? `Code ${m[1]}: ${m[2]}` : text;
  return msg.replace(/\s+/g, " ").slice(0, 300);
}

function networkWhy(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; code?: string; message?: string };
  if (err.name === "TimeoutError") return `no answer within ${timeoutMs / 1000} s`;
  if (err.name === "AbortError") return "aborted";
  const code = err.code ?? "";
  const msg = (err.message ?? String(e)).replace(/\s+/g, " ").slice(0, 200);
  return code !== "" && !msg.includes(code) ? `${code}: ${msg}` : msg;
}
