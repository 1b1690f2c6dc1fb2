/**
 * The questions a fleet table answers that one host's terminal cannot, as SQL
 * for ClickHouse 18.16 and later (`dual-slot sink query NAME URL`). FINAL
 * folds rows a replay sent twice (ReplacingMergeTree merges them only in the
 * background); on a very large table, run OPTIMIZE ... FINAL on old partitions
 * instead and drop it.
 */
import type { SinkTarget } from "./target.ts";

export interface FleetQuery {
  name: string;
  doc: string;
  sql: (table: string) => string;
}

export const QUERIES: readonly FleetQuery[] = [
  {
    name: "top-commands",
    doc: "The 10 executables each host ran most in the last day.",
    sql: (t) => `SELECT host, exe, count() AS execs
FROM ${t} FINAL
WHERE event = 'exec' AND res = 0 AND ts > now() - INTERVAL 1 DAY
GROUP BY host, exe
ORDER BY host, execs DESC
LIMIT 10 BY host`,
  },
  {
    name: "first-seen",
    doc: "Executables no host had run before the last day: new software, or a dropped binary.",
    sql: (
      t,
    ) => `SELECT exe, min(ts) AS first_seen, uniqExact(host) AS hosts, count() AS execs, any(args) AS example_args
FROM ${t} FINAL
WHERE event = 'exec' AND res = 0
GROUP BY exe
HAVING first_seen > now() - INTERVAL 1 DAY
ORDER BY first_seen DESC`,
  },
  {
    name: "reverse-shells",
    doc: "Execs whose stdin or stdout is a TCP connection (sa_family: the first inet socket among fds 0-2).",
    sql: (t) => `SELECT ts, host, pid, exe, args, stdin, stdout, sip, sport, dip, dport, pid_tree
FROM ${t} FINAL
WHERE event = 'exec' AND sa_family IN (2, 10)
  AND (startsWith(stdin, 'socket:') OR startsWith(stdout, 'socket:'))
ORDER BY ts DESC
LIMIT 100`,
  },
  {
    name: "privilege-escalations",
    doc: "Tasks that gained privilege (setuid/setgid/file-capability execs, set*id to root), with the credentials before and after.",
    sql: (t) => `SELECT ts, host, pid, how, uid, euid, exe, pid_tree, cap_effective_new,
  visitParamExtractRaw(raw, 'old') AS old_creds, visitParamExtractRaw(raw, 'new') AS new_creds
FROM ${t} FINAL
WHERE event = 'privilege_escalation'
ORDER BY ts DESC
LIMIT 100`,
  },
  {
    name: "web-server-children",
    doc: "Processes started under a web server (an ancestor in pid_tree is nginx, apache2, httpd, php-fpm, lighttpd or caddy) that are not the server itself: a web shell's commands.",
    sql: (t) => `SELECT ts, host, pid, comm, exe, args, pid_tree
FROM ${t} FINAL
WHERE event = 'exec' AND res = 0
  AND match(pid_tree, '<[0-9]+\\\\.(nginx|apache2|httpd|php-fpm|lighttpd|caddy)')
  AND NOT match(comm, '^(nginx|apache2|httpd|php-fpm|lighttpd|caddy)')
ORDER BY ts DESC
LIMIT 100`,
  },
];

export function querySql(name: string, t: SinkTarget): string | undefined {
  const q = QUERIES.find((x) => x.name === name);
  return q?.sql(`${t.database}.${t.table}`);
}
