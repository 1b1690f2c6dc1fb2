/**
 * The network records' schemas: connect, accept, bind and dns (bpf/net_events.bpf.h,
 * bpf/dns.bpf.h), each a struct ds_sock_data under the type's member.
 */
import type { RecordEvent } from "../wire/decode.ts";
import { ds_flags } from "../wire/layout.gen.ts";
import { FAMILY_NAMES, ipText, PROTOCOL_NAMES } from "./ip.ts";
import { RES_ERRNO, recNum, recSchema, recText } from "./record-fields.ts";
import type { Field } from "./schema.ts";

const big = (ev: RecordEvent, member: string): bigint => BigInt(ev.fields[member] ?? 0);
const num = (ev: RecordEvent, member: string): number => Number(ev.fields[member] ?? 0);

/** An end's address as text, from `<sock>.<end>_0` and `_1`. */
export const sockIp = (ev: RecordEvent, sock: string, end: "sip" | "dip"): string =>
  ipText(num(ev, `${sock}.family`), big(ev, `${sock}.${end}_0`), big(ev, `${sock}.${end}_1`));

/** The fields of a struct ds_sock_data at member `sock`; `local`: the source end only (bind). */
export function sockFields(sock: string, local = false): Array<Field<RecordEvent>> {
  const out: Array<Field<RecordEvent>> = [
    {
      key: "family",
      type: "string",
      doc: "`inet` (IPv4) or `inet6` (IPv6).",
      get: (ev) => FAMILY_NAMES[num(ev, `${sock}.family`)] ?? String(num(ev, `${sock}.family`)),
    },
    {
      key: "protocol",
      type: "string",
      doc: "The socket's protocol: `tcp`, `udp`, or its number.",
      get: (ev) => PROTOCOL_NAMES[num(ev, `${sock}.protocol`)] ?? String(num(ev, `${sock}.protocol`)),
    },
    { key: "sip", type: "string", doc: "The local address.", get: (ev) => sockIp(ev, sock, "sip") },
    recNum("sport", `${sock}.sport`, "The local port (0: not yet bound)."),
  ];
  if (!local)
    out.push(
      { key: "dip", type: "string", doc: "The remote address.", get: (ev) => sockIp(ev, sock, "dip") },
      recNum("dport", `${sock}.dport`, "The remote port."),
    );
  out.push(recNum("fd", `${sock}.fd`, "The socket's file descriptor in the acting process."));
  return out;
}

const ends = (ev: RecordEvent, sock: string): string =>
  `${sockIp(ev, sock, "sip")}:${num(ev, `${sock}.sport`)} -> ${sockIp(ev, sock, "dip")}:${num(ev, `${sock}.dport`)}`;

export const CONNECT_SCHEMA = recSchema(
  "connect",
  "A process connected an inet socket, TCP or UDP (syscalls/sys_{enter,exit}_connect): the destination as the call asked, the source the socket got. A non-blocking TCP connect reports -115 (EINPROGRESS).",
  RES_ERRNO,
  sockFields("connect"),
  (ev) => `${num(ev, "connect.protocol") === 17 ? "udp" : "tcp"} ${ends(ev, "connect")} res=${ev.res}`,
);

export const ACCEPT_SCHEMA = recSchema(
  "accept",
  "A process accepted an inet connection (syscalls/sys_exit_accept, sys_exit_accept4); with --events accept. Failed calls (a non-blocking server's EAGAIN) are not reported.",
  "The new connection's file descriptor.",
  sockFields("accept"),
  (ev) => `${ends(ev, "accept")} fd=${ev.res}`,
);

export const BIND_SCHEMA = recSchema(
  "bind",
  "A process bound an inet socket to a local address (syscalls/sys_{enter,exit}_bind). Port 0 asks the kernel for one: `sport` is the port it gave.",
  RES_ERRNO,
  sockFields("bind", true),
  (ev) => `${sockIp(ev, "bind", "sip")}:${num(ev, "bind.sport")} res=${ev.res}`,
);

const RCODES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
const QTYPES: Readonly<Record<number, string>> = {
  1: "A",
  2: "NS",
  5: "CNAME",
  6: "SOA",
  12: "PTR",
  15: "MX",
  16: "TXT",
  28: "AAAA",
  33: "SRV",
  64: "SVCB",
  65: "HTTPS",
  255: "ANY",
};

export const DNS_SCHEMA = recSchema(
  "dns",
  "A DNS message over UDP to or from port 53: a query the process sent (sendto, sendmsg, sendmmsg) or a reply it read (recvfrom, recvmsg), parsed in the kernel. A name that is compressed, cut short or holds a dot inside a label is never shown: the record is flagged `malformed` and `name` is empty.",
  "The call's result: bytes sent or read, or a negative errno.",
  [
    {
      key: "direction",
      type: "string",
      doc: "`query` (sent) or `reply` (read).",
      get: (ev) => (num(ev, "dns.qr") === 1 ? "reply" : "query"),
    },
    ...recText("name", "The question's name, dotted, without the final dot."),
    {
      key: "malformed",
      type: "boolean",
      doc: "The message was not parsed: a compressed or cut name, a dot inside a label, a short packet. `name` is then empty.",
      get: (ev) => (ev.flags & ds_flags.DS_F_MALFORMED) !== 0,
    },
    recNum("qtype", "dns.qtype", "The question's type, by number (1 A, 28 AAAA, ...)."),
    {
      key: "qtype_name",
      type: "string",
      doc: "The question's type by name (`A`, `AAAA`, `MX`, ...), or its number.",
      get: (ev) => QTYPES[num(ev, "dns.qtype")] ?? String(num(ev, "dns.qtype")),
    },
    recNum("qclass", "dns.qclass", "The question's class (1: IN)."),
    recNum("id", "dns.id", "The message id (a reply carries its query's)."),
    recNum("rcode", "dns.rcode", "A reply's response code (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...); 0 in a query."),
    {
      key: "rcode_name",
      type: "string",
      doc: "The response code by name, for a reply; empty for a query.",
      get: (ev) => (num(ev, "dns.qr") === 1 ? (RCODES[num(ev, "dns.rcode")] ?? String(num(ev, "dns.rcode"))) : ""),
    },
    ...sockFields("dns.sock"),
  ],
  (ev) =>
    `${num(ev, "dns.qr") === 1 ? "reply" : "query"} ${ev.texts.name} ${QTYPES[num(ev, "dns.qtype")] ?? num(ev, "dns.qtype")}${num(ev, "dns.qr") === 1 ? ` rcode=${num(ev, "dns.rcode")}` : ""} ${ends(ev, "dns.sock")}`,
);

export const NET_SCHEMAS = [CONNECT_SCHEMA, ACCEPT_SCHEMA, BIND_SCHEMA, DNS_SCHEMA];
