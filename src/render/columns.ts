/**
 * Plain-text helpers shared by `mem`, `stats` and `doctor`: byte sizes a human
 * can compare at a glance, and aligned columns that survive copy and paste
 * (spaces only, no colors).
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** 65536 -> "64 KiB", 65864 -> "64.3 KiB": binary units, because pages and slots are powers of two. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const sign = n < 0 ? "-" : "";
  if (u === 0 || Number.isInteger(v)) return `${sign}${v} ${UNITS[u]}`;
  return `${sign}${v.toFixed(v < 10 ? 2 : 1)} ${UNITS[u]}`;
}

/** 1234567 -> "1,234,567": exact byte counts stay readable next to the rounded ones. */
export function groupDigits(n: number): string {
  return Math.trunc(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

export type Align = "l" | "r";

/**
 * Columns padded to their widest cell. Numbers read best right-aligned, names
 * left-aligned; the caller says which per column. Trailing spaces are trimmed
 * so `diff` and terminals agree.
 */
export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[] = [],
): string[] {
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (align[i] === "r" ? c.padStart(width[i]!) : c.padEnd(width[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Breaks prose at spaces so explanations stay readable in an 100-column terminal. */
export function wrap(text: string, width = 100): string[] {
  const lines: string[] = [];
  let cur = "";
  for (const word of text.split(/\s+/)) {
    if (cur !== "" && cur.length + 1 + word.length > width) {
      lines.push(cur);
      cur = word;
    } else cur = cur === "" ? word : `${cur} ${word}`;
  }
  if (cur !== "") lines.push(cur);
  return lines;
}
