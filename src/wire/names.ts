/**
 * The C enums of bpf/dual_slot.h under the names the CLI and JSON use:
 * DS_TRANSPORT_RINGBUF_OUTPUT becomes "ringbuf-output". Values come from the
 * generated layout; only the spelling is decided here.
 */
import { ds_encoding, ds_event_type, ds_mode, ds_transport } from "./layout.gen.ts";

type Tail<K, P extends string> = K extends `${P}${infer R}` ? R : never;
type Kebab<S extends string> = S extends `${infer A}_${infer B}` ? `${Lowercase<A>}-${Kebab<B>}` : Lowercase<S>;
type Named<T, P extends string> = { readonly [K in keyof T as Kebab<Tail<K, P>>]: T[K] };
type Snake<T, P extends string> = { readonly [K in keyof T as Lowercase<Tail<K, P>>]: T[K] };

/** `{ DS_MODE_NEST3: 2 }` with prefix "DS_MODE_" -> `{ nest3: 2 }`. */
export function named<T extends Record<string, number>, P extends string>(e: T, prefix: P): Named<T, P> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(e)) {
    if (!k.startsWith(prefix)) throw new Error(`enum member ${k} does not start with ${prefix}`);
    out[k.slice(prefix.length).toLowerCase().replace(/_/g, "-")] = v;
  }
  return out as Named<T, P>;
}

/** `{ DS_EVENT_MEMFD_CREATE: 8 }` -> `{ memfd_create: 8 }`: event names keep Elkeid's spelling. */
function snake<T extends Record<string, number>, P extends string>(e: T, prefix: P): Snake<T, P> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(e)) {
    if (!k.startsWith(prefix)) throw new Error(`enum member ${k} does not start with ${prefix}`);
    out[k.slice(prefix.length).toLowerCase()] = v;
  }
  return out as Snake<T, P>;
}

/** Value -> name, for decoding: index by the byte the kernel wrote. */
export function byValue<T extends Record<string, number>>(
  table: T,
): ReadonlyArray<Extract<keyof T, string> | undefined> {
  const out: Array<Extract<keyof T, string> | undefined> = [];
  for (const k in table) out[table[k]!] = k;
  return out;
}

export const EventType = snake(ds_event_type, "DS_EVENT_");
export const Mode = named(ds_mode, "DS_MODE_");
export const Transport = named(ds_transport, "DS_TRANSPORT_");
export const Encoding = named(ds_encoding, "DS_ENCODING_");

export type EventName = keyof typeof EventType;
export type ModeName = keyof typeof Mode;
export type TransportName = keyof typeof Transport;
export type EncodingName = keyof typeof Encoding;
