/**
 * Counts the agent's NDJSON lines by event type, for one comm, as they stream
 * past: the benchmark's stand-in for a user's pipeline reading stdout.
 */
export class EventCounter {
  private readonly dec = new TextDecoder();
  private rest = "";
  private readonly counts = new Map<string, number>();
  /** The common fields' comm, as the renderer writes it (no spaces, then a comma). */
  private readonly needle: string;

  constructor(comm: string) {
    this.needle = `"comm":${JSON.stringify(comm)},`;
  }

  push(chunk: Uint8Array): void {
    const text = this.rest + this.dec.decode(chunk, { stream: true });
    const end = text.lastIndexOf("\n");
    this.rest = text.slice(end + 1);
    if (end < 0) return;
    // A substring test, not JSON.parse: at tens of thousands of lines a second
    // a full parse would make the reader, not the agent, the bottleneck. A
    // quote inside a string value is escaped, so the needle cannot match there.
    for (const line of text.slice(0, end).split("\n")) {
      if (!line.includes(this.needle)) continue;
      const at = line.indexOf('"event":"');
      if (at < 0) continue;
      const event = line.slice(at + 9, line.indexOf('"', at + 9));
      this.counts.set(event, (this.counts.get(event) ?? 0) + 1);
    }
  }

  count(event: string): number {
    return this.counts.get(event) ?? 0;
  }
}
