/**
 * The single error type of the ELF/BTF readers. Callers feed these modules
 * bytes they do not control (object files, kernel BTF), so every malformed
 * input must surface as this one catchable type rather than a RangeError
 * from a DataView or a silent misread.
 */
export class BtfError extends Error {
  override name = "BtfError";
  constructor(message: string) {
    super(message);
  }
}
