/**
 * The two output formats: the table the README shows, and NDJSON for machines.
 */
import type { ExecEvent, LevelView } from "../wire/decode.ts";
import { escapeBytes, escapeText } from "./escape.ts";

export const TABLE_BANNER = "Monitoring dual-slot heap usage... press Ctrl+C to stop";
export const TABLE_HEADER =
  `${"TYPE".padEnd(8)} ${"PID".padEnd(8)} ${"PPID".padEnd(8)} ${"EXEC".padEnd(16)} FILE_INFO\n` +
  `${"-".repeat(8)} ${"-".repeat(8)} ${"-".repeat(8)} ${"-".repeat(16)} ${"-".repeat(32)}`;

/** What slot 1 still held when the serializer looked: the business level's observed data. */
export function slot1Data(ev: ExecEvent, maxChars = 32): string {
  const l = ev.levels[0];
  return l === undefined ? "" : escapeBytes(l.dataObserved, maxChars);
}

function cmdline(ev: ExecEvent): string {
  const line = ev.args.map((a) => (/[\s"'\\]/.test(a) || a === "" ? JSON.stringify(a) : a)).join(" ");
  return escapeText(line, 120) + (ev.argsTruncated ? " …[truncated]" : "");
}

function damage(ev: ExecEvent): string {
  return ev.levels
    .map((l, i) =>
      l.intact
        ? ""
        : ` L${i + 1}@${slotName(l)}:[${escapeBytes(l.dataExpected, 24)}]->[${escapeBytes(l.dataObserved, 24)}]`,
    )
    .join("");
}

function slotName(l: LevelView): string {
  return l.slot === null ? "ring" : `slot${l.slot}`;
}

export function tableRow(ev: ExecEvent): string {
  const type = ev.corrupt ? "CORRUPT" : ev.type.toUpperCase();
  let info = `slot1_data=[${slot1Data(ev)}] slot0_seq=${ev.seq}`;
  if (ev.corrupt) info += damage(ev);
  if (ev.clobbered) info += " CLOBBERED";
  if (ev.args.length > 0) info += ` cmd=${cmdline(ev)}`;
  return `${type.padEnd(8)} ${String(ev.pid).padEnd(8)} ${String(ev.ppid).padEnd(8)} ${escapeText(ev.comm, 16).padEnd(16)} ${info}`;
}

let lastSecond = -1n;
let lastPrefix = "";

/** RFC 3339 UTC with nanoseconds, from a wall-clock time in ns. */
export function rfc3339Nano(wallNs: bigint): string {
  const sec = wallNs / 1_000_000_000n;
  // Events come in bursts within the same second: format its date once.
  if (sec !== lastSecond) {
    lastSecond = sec;
    lastPrefix = new Date(Number(sec) * 1000).toISOString().slice(0, 19); // 2026-11-28T05:41:27
  }
  const frac = (wallNs - sec * 1_000_000_000n).toString().padStart(9, "0");
  return `${lastPrefix}.${frac}Z`;
}

const big = (v: bigint): number | string => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());

function levelJson(l: LevelView) {
  return {
    slot: l.slot,
    intact: l.intact,
    tag_expected: l.tagExpected.toString(16),
    tag_observed: l.tagObserved.toString(16),
    expected: escapeBytes(l.dataExpected, 64),
    observed: escapeBytes(l.dataObserved, 64),
  };
}

/** One NDJSON line. `bootNs` maps the kernel's monotonic clock to wall time. */
export function jsonLine(ev: ExecEvent, bootWallNs: bigint): string {
  return JSON.stringify({
    event: ev.type,
    time: rfc3339Nano(bootWallNs + ev.ktimeNs),
    ktime_ns: big(ev.ktimeNs),
    cpu: ev.cpu,
    pid: ev.pid,
    tid: ev.tid,
    ppid: ev.ppid,
    uid: ev.uid,
    gid: ev.gid,
    comm: ev.comm,
    filename: ev.filename,
    args: ev.args,
    args_truncated: ev.argsTruncated,
    cwd: ev.cwd,
    exe: ev.exe,
    path_truncated: ev.pathTruncated,
    cgroup_id: big(ev.cgroupId),
    mntns_id: ev.mntnsId,
    slot1_data: slot1Data(ev, 64),
    slot0_seq: big(ev.seq),
    slot1_intact: ev.slot1Intact,
    mode: ev.mode,
    slots: ev.slots,
    transport: ev.transport,
    encoding: ev.encoding,
    bytes: ev.size,
    corrupt: ev.corrupt,
    clobbered: ev.clobbered,
    ...(ev.pexe !== "" ? { parent_exe: ev.pexe } : {}),
    // Level by level expected vs observed: the evidence, where there is something to show.
    ...(ev.corrupt || ev.clobbered || ev.mode !== "dual" ? { levels: ev.levels.map(levelJson) } : {}),
  });
}
