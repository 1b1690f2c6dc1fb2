/**
 * A growable byte buffer written at `len`: the renderer writes NDJSON lines and
 * table rows into one, and the output sink queues a drain's lines in one.
 */
export class ByteBuf {
  buf: Buffer;
  /** A DataView of `buf`, for the generated renderers' 4-byte stores (one per buffer, not per line). */
  view: DataView;
  len = 0;
  constructor(size = 1 << 16) {
    this.buf = Buffer.allocUnsafeSlow(size);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }
  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = Buffer.allocUnsafeSlow(size);
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
    this.view = new DataView(b.buffer, b.byteOffset, b.length);
  }
}
