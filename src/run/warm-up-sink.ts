/**
 * Where the warm-up's lines go: a sink of the run's sink's class, so the call
 * sites the warm-up compiles (onLine's push) stay valid for the run.
 */
import { closeSync } from "node:fs";
import { FileSink } from "../output/file.ts";
import { openNullDevice } from "../output/null-device.ts";
import { LineSink } from "../output/sink.ts";

export interface WarmUpSink {
  sink: LineSink | FileSink;
  /** After each pass's lines, as a drain flushes. */
  afterPass: () => void;
  /** The warm-up is over: what it held is let go, or handed to the run's sink. */
  end: () => void;
}

/**
 * A stdout sink's counterpart writes to the null device and is flushed after
 * every pass, so the JIT sees the write and the buffer pool at work, not only
 * pushes; at the end the run's sink takes its pooled buffers (the first burst
 * then writes into buffers already touched). Without a usable null device,
 * and for --output's FileSink (whose writer is the run's file), it is only
 * emptied, never written.
 */
export function warmUpSink(run: LineSink | FileSink, limit: number): WarmUpSink {
  if (run instanceof FileSink) {
    const sink = new FileSink(run.writer, limit, Number.POSITIVE_INFINITY);
    return { sink, afterPass: () => sink.abandon(), end: () => {} };
  }
  const fd = openNullDevice();
  const sink = new LineSink(fd, limit);
  return {
    sink,
    afterPass: fd >= 0 ? () => sink.flush() : () => sink.abandon(),
    end: () => {
      if (fd >= 0) closeSync(fd);
      run.adoptBuffers(sink);
    },
  };
}
