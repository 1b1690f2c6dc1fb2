/**
 * One INSERT over ClickHouse's HTTP interface: a gzip'd JSONEachRow body,
 * basic auth, a timeout. Never throws: what went wrong comes back as one
 * short line, for the sink's single warning.
 *
 * A batch counts as delivered only on a 2xx that ClickHouse itself sent (its
 * X-ClickHouse-* headers) whose body came whole and holds no exception. Redirects are not followed: a 301-303 turns the
 * POST into a GET without its body, which a login page or proxy answering 200
 * would have "accepted", and a 307-308 sends the batch to another host; either
 * way the spooled batch was deleted and counted as sent.
 */
import { escapeForTerminal } from "../render/escape.ts";
import { authorization, type SinkCredentials } from "./credentials.ts";
import type { SinkTarget } from "./target.ts";

/**
 * `rejected`: the server read the batch and refused its data (a row it cannot
 * parse or convert), not the request: sending the same bytes again will not help.
 */
export type InsertResult = { ok: true } | { ok: false; auth: boolean; rejected: boolean; why: string };

/**
 * ClickHouse's error codes for data it could not take (parse, type, conversion,
 * size), and for a body it could not inflate (354, ZLIB_INFLATE_FAILED: a
 * spooled batch damaged on disk), which it answers with a 500: sent again, it
 * would hold every batch behind it for as long as the spool lasts.
 */
const DATA_ERRORS = new Set([6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 354]);

/** Whether an error answer says the data itself was refused: HTTP 400, or one of DATA_ERRORS ("Code: 27," in 18.x, "Code: 27." later). */
export function dataRejected(status: number, text: string): boolean {
  const m = /^Code: (\d+)[.,]/.exec(text);
  return status === 400 || (m !== null && DATA_ERRORS.has(Number(m[1])));
}

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
    // wait_end_of_query: the status is the INSERT's outcome even where the user's profile sends headers
    // early (send_progress_in_http_headers); insert() still reads the body for an exception after a 200.
    const params = new URLSearchParams({ query, input_format_skip_unknown_fields: "1", wait_end_of_query: "1" });
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
        redirect: "manual",
        signal: AbortSignal.timeout(this.timeoutMs * 6),
      });
    } catch (e) {
      return { ok: false, auth: false, why: networkWhy(e, this.timeoutMs * 6) };
    }
    const text = await boundedText(res, QUERY_BODY_MAX).catch(() => "");
    const wrong = notClickHouse(res);
    if (wrong !== null) return { ok: false, auth: false, why: wrong };
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
        redirect: "manual",
        signal: AbortSignal.any(signals),
      });
    } catch (e) {
      return { ok: false, auth: false, rejected: false, why: networkWhy(e, this.timeoutMs) };
    }
    const wrong = notClickHouse(res);
    if (wrong !== null) {
      await res.body?.cancel().catch(() => {});
      return { ok: false, auth: false, rejected: false, why: wrong };
    }
    if (res.ok) {
      // An INSERT's answer is empty. A server that sent its headers early (send_progress_in_http_headers
      // in the user's profile) reports a failure after the 200, in the body; a body cut off (the timeout)
      // leaves the outcome unknown. Either way the batch is kept and sent again: its rows carry seq.
      let body: string;
      try {
        body = await boundedText(res, ANSWER_MAX);
      } catch (e) {
        return {
          ok: false,
          auth: false,
          rejected: false,
          why: `HTTP ${res.status}, then ${networkWhy(e, this.timeoutMs)}`,
        };
      }
      const at = body.search(/^Code: \d+[.,]/m);
      if (at < 0) return { ok: true };
      const text = body.slice(at).trim();
      return {
        ok: false,
        auth: false,
        rejected: dataRejected(500, text),
        why: `HTTP ${res.status} with an exception after it: ${serverMessage(text)}`,
      };
    }
    const text = (await boundedText(res, ANSWER_MAX).catch(() => "")).trim();
    const auth = res.status === 401 || res.status === 403 || /^Code: 19[2-4],/.test(text);
    return {
      ok: false,
      auth,
      rejected: !auth && dataRejected(res.status, text),
      why: `HTTP ${res.status}${auth ? " (bad credentials)" : ""}: ${serverMessage(text)}`,
    };
  }
}

/** An INSERT's answer is empty, or an exception: what is read of it (a server may send anything). */
const ANSWER_MAX = 64 * 1024;
/** `sink query --run`'s answer: a report, not a dump. */
const QUERY_BODY_MAX = 64 * 1024 * 1024;

/** The body as text, at most `max` bytes of it: the rest is not read (a server may send without end). */
async function boundedText(res: Response, max: number): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value.subarray(0, max - n));
    n += Math.min(value.length, max - n);
    if (n >= max) {
      await reader.cancel().catch(() => {});
      break;
    }
  }
  return Buffer.concat(parts).toString("utf8");
}

/**
 * Why an answer cannot be ClickHouse's own (null when it can): a redirect, or
 * a 2xx without the X-ClickHouse-* headers every ClickHouse HTTP answer
 * carries (X-ClickHouse-Server-Display-Name since 2018; proxies such as
 * chproxy pass them on).
 */
export function notClickHouse(res: Response): string | null {
  if (res.status >= 300 && res.status < 400) {
    const to = res.headers.get("location");
    return `HTTP ${res.status}: a redirect${to !== null ? ` to ${printable(to)}` : ""}, not followed: point --sink at the ClickHouse server itself`;
  }
  if (!res.ok) return null;
  for (const name of res.headers.keys()) if (name.toLowerCase().startsWith("x-clickhouse-")) return null;
  return `HTTP ${res.status} without ClickHouse's X-ClickHouse-* headers: not a ClickHouse server (or a proxy that drops them)`;
}

/** A header's value for a one-line message: bounded, and nothing a terminal would act on. */
function printable(s: string): string {
  return escapeForTerminal(s.slice(0, 200).replace(/\s+/g, " "));
}

/** A SELECT's answer as text (for `sink query --run`). */
export type QueryResult = { ok: true; text: string } | { ok: false; auth: boolean; why: string };

/** ClickHouse's "Code: N, e.displayText() = DB::Exception: MSG, e.what() = ..." as "Code N: MSG", one line, bounded. */
function serverMessage(text: string): string {
  const m = /^Code: (\d+), e\.displayText\(\) = (?:DB::Exception: )?(.*?)(?:, e\.what\(\) = .*)?$/s.exec(text);
  const msg = m !== null ? `Code ${m[1]}: ${m[2]}` : text;
  return escapeForTerminal(msg.replace(/\s+/g, " ").slice(0, 300));
}

function networkWhy(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; code?: string; message?: string };
  if (err.name === "TimeoutError") return `no answer within ${timeoutMs / 1000} s`;
  if (err.name === "AbortError") return "aborted";
  const code = err.code ?? "";
  const msg = (err.message ?? String(e)).replace(/\s+/g, " ").slice(0, 200);
  return code !== "" && !msg.includes(code) ? `${code}: ${msg}` : msg;
}
