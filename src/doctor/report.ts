/**
 * How `dual-slot doctor` prints its checklist: one verdict per line, the fix
 * right under anything that is not ok, and a last line a user can paste into
 * a bug report.
 */

import { renderTable } from "../render/columns.ts";
import type { DoctorCheck, Status } from "./checks.ts";

const LABEL: Record<Status, string> = { ok: "ok", fail: "FAIL", warn: "warn", skip: "skip", info: "info" };

export const requiredFailures = (checks: readonly DoctorCheck[]): DoctorCheck[] =>
  checks.filter((c) => c.required && c.status === "fail");

export function verdictLine(checks: readonly DoctorCheck[]): string {
  const failed = requiredFailures(checks);
  const count = (s: Status) => checks.filter((c) => c.status === s).length;
  const tally = (["ok", "fail", "warn", "skip", "info"] as const)
    .filter((s) => count(s) > 0)
    .map((s) => `${count(s)} ${s}`)
    .join(", ");
  if (failed.length === 0) return `verdict: ready: this host can run dual-slot (${tally})`;
  return `verdict: NOT READY: ${failed.length} required check${failed.length === 1 ? "" : "s"} failed: ${failed.map((c) => c.name).join(", ")} (${tally})`;
}

export function doctorTable(checks: readonly DoctorCheck[]): string[] {
  const rows: string[][] = [];
  for (const c of checks) {
    rows.push([LABEL[c.status], c.name, c.required ? "required" : "advice", c.detail]);
    if (c.status !== "ok" && c.fix) rows.push(["", "", "", `fix: ${c.fix}`]);
  }
  return [...renderTable(["STATUS", "CHECK", "NEED", "FINDING"], rows), "", verdictLine(checks)];
}

export function doctorJson(checks: readonly DoctorCheck[]): string {
  return JSON.stringify(
    {
      ready: requiredFailures(checks).length === 0,
      failed: requiredFailures(checks).map((c) => c.name),
      checks: checks.map((c) => ({
        name: c.name,
        status: c.status,
        required: c.required,
        ok: c.ok,
        detail: c.detail,
        fix: c.fix ?? null,
      })),
    },
    null,
    2,
  );
}
