/**
 * Buffered stdout. Lines collect during a drain and go out in one write, so a
 * burst of events costs one syscall, not one per line. A reader that went away
 * (`dual-slot | head`) surfaces as PipeClosed, which the agent treats as a
 * normal stop.
 */
import { writeSync } from "node:fs";
import { peerClosed } from "../ffi/libc.ts";

export class PipeClosed extends Error {
  override name = "PipeClosed";
}

export class LineSink {
  private lines: string[] = [];
  private closed = false;

  constructor(private readonly fd = 1) {}

  push(line: string): void {
    this.lines.push(line);
  }

  flush(): void {
    if (this.closed) return;
    if (this.lines.length === 0) {
      if (peerClosed(this.fd)) {
        this.closed = true;
        throw new PipeClosed("stdout closed");
      }
      return;
    }
    const buf = Buffer.from(`${this.lines.join("\n")}\n`);
    this.lines = [];
    let off = 0;
    while (off < buf.length) {
      try {
        off += writeSync(this.fd, buf, off, buf.length - off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") continue;
        this.closed = true;
        if (code === "EPIPE") throw new PipeClosed("stdout closed");
        throw e;
      }
    }
  }
}
