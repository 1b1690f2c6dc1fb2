/**
 * The network records' schemas: connect, accept, bind and dns (bpf/net_events.bpf.h,
 * bpf/dns.bpf.h), each a struct ds_sock_data under the type's member.
 */
import type { RecordEvent } from "../wire/decode.ts";
import { ds_flags } from "../wire/layout.gen.ts";
import { FAMILY_NAMES, PROTOCOL_NAMES } from "./ip.ts";
import { member, nameMap, RES_ERRNO, recField, recFlag, recNum, recSchema, recText, str } from "./record-fields.ts";
import type { Field, SummaryPart, Wire } from "./schema.ts";

const FAMILIES = nameMap(FAMILY_NAMES);
const PROTOCOLS = nameMap(PROTOCOL_NAMES);

/** An end's address as text, of the struct ds_sock_data at `sock`. */
export const ip = (sock: string, end: "sip" | "dip"): Wire => ({ from: "ip", sock, end });

/** The fields of a struct ds_sock_data at member `sock`; `local`: the source end only (bind). */
export function sockFields(sock: string, local = false): Array<Field<RecordEvent>> {
  const out: Array<Field<RecordEvent>> = [
    recField(
      "family",
      "string",
      "`inet` (IPv4) or `inet6` (IPv6; also when the call's address and its socket differ in family: an IPv4 end is then mapped, `::ffff:a.b.c.d`).",
      {
        from: "enum",
        member: `${sock}.family`,
        names: FAMILIES,
      },
    ),
    recField("protocol", "string", "The socket's protocol: `tcp`, `udp`, or its number.", {
      from: "enum",
      member: `${sock}.protocol`,
      names: PROTOCOLS,
    }),
    recField("sip", "string", "The local address.", ip(sock, "sip")),
    recNum("sport", `${sock}.sport`, "The local port (0: not yet bound)."),
  ];
  if (!local)
    out.push(
      recField("dip", "string", "The remote address.", ip(sock, "dip")),
      recNum("dport", `${sock}.dport`, "The remote port."),
    );
  out.push(recNum("fd", `${sock}.fd`, "The socket's file descriptor in the acting process."));
  return out;
}

/** "sip:sport -> dip:dport" */
const ends = (sock: string): SummaryPart[] => [
  ip(sock, "sip"),
  ":",
  member(`${sock}.sport`),
  " -> ",
  ip(sock, "dip"),
  ":",
  member(`${sock}.dport`),
];

export const CONNECT_SCHEMA = recSchema(
  "connect",
  "A process connected an inet socket, TCP or UDP (syscalls/sys_{enter,exit}_connect): the source the socket got; the destination the socket is connected to when the call succeeded or is under way (a non-blocking TCP connect reports -115, EINPROGRESS): the kernel's, which a cgroup connect hook (a service load balancer) may have rewritten from what the program asked for; else the one the call asked for, read as the call was entered (never re-read from the caller's memory at the exit).",
  RES_ERRNO,
  sockFields("connect"),
  [
    { from: "enum", member: "connect.protocol", names: nameMap({ 17: "udp" }), otherwise: "tcp" },
    " ",
    ...ends("connect"),
    " res=",
    member("res"),
  ],
);

export const ACCEPT_SCHEMA = recSchema(
  "accept",
  "A process accepted an inet connection (syscalls/sys_exit_accept, sys_exit_accept4); with --events accept. Failed calls (a non-blocking server's EAGAIN) are not reported.",
  "The new connection's file descriptor.",
  sockFields("accept"),
  [...ends("accept"), " fd=", member("res")],
);

export const BIND_SCHEMA = recSchema(
  "bind",
  "A process bound an inet socket to a local address (syscalls/sys_{enter,exit}_bind): the socket's own, else (a failed bind) the address the call asked for, read as the call was entered. Port 0 asks the kernel for one: `sport` is the port it gave.",
  RES_ERRNO,
  sockFields("bind", true),
  [ip("bind", "sip"), ":", member("bind.sport"), " res=", member("res")],
);

const RCODES = nameMap(["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"]);
const QTYPES = nameMap({
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
});
const DIRECTION: Wire = { from: "enum", member: "dns.qr", names: nameMap({ 1: "reply" }), otherwise: "query" };
const QTYPE_NAME: Wire = { from: "enum", member: "dns.qtype", names: QTYPES };

export const DNS_SCHEMA = recSchema(
  "dns",
  "A DNS message over UDP to or from port 53: a query the process sent (sendto, sendmsg; sendmmsg: one record for each of its first four messages that goes to port 53) or a reply it read (recvfrom, recvmsg), parsed in the kernel. A query is parsed from the copy its call's entry made (never from the caller's memory at the exit, which another thread can rewrite once the kernel has sent it); a reply from the caller's buffer at the exit, where the kernel put it. A name that is compressed, cut short or holds a dot inside a label is never shown: the record is flagged `malformed` and `name` is empty.",
  "The call's result: bytes sent or read, or a negative errno.",
  [
    recField("direction", "string", "`query` (sent) or `reply` (read).", DIRECTION),
    ...recText("name", "The question's name, dotted, without the final dot."),
    recFlag(
      "malformed",
      ds_flags.DS_F_MALFORMED,
      "The message was not parsed: a compressed or cut name, a dot inside a label, a short packet. `name` is then empty.",
    ),
    recNum("qtype", "dns.qtype", "The question's type, by number (1 A, 28 AAAA, ...)."),
    recField(
      "qtype_name",
      "string",
      "The question's type by name (`A`, `AAAA`, `MX`, ...), or its number.",
      QTYPE_NAME,
    ),
    recNum("qclass", "dns.qclass", "The question's class (1: IN)."),
    recNum("id", "dns.id", "The message id (a reply carries its query's)."),
    recNum("rcode", "dns.rcode", "A reply's response code (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...); 0 in a query."),
    recField("rcode_name", "string", "The response code by name, for a reply; empty for a query.", {
      from: "enum",
      member: "dns.rcode",
      names: RCODES,
      onlyIf: { member: "dns.qr", value: 1 },
    }),
    ...sockFields("dns.sock"),
  ],
  [
    DIRECTION,
    " ",
    str("name"),
    " ",
    QTYPE_NAME,
    { when: { member: "dns.qr", value: 1 }, parts: [" rcode=", member("dns.rcode")] },
    " ",
    ...ends("dns.sock"),
  ],
);

export const NET_SCHEMAS = [CONNECT_SCHEMA, ACCEPT_SCHEMA, BIND_SCHEMA, DNS_SCHEMA];
