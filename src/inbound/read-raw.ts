/** Reading the raw bytes of an Email Routing message with a byte limit, so a huge message never fills memory. */
import { concatBytes } from "../mime/encoding";

export type ReadRawResult = { ok: true; bytes: Uint8Array; truncated: boolean } | { ok: false; sizeBytes: number };

/**
 * Reads `stream` up to `maxBytes`. With `onOverflow: "truncate"` the first `maxBytes` come back with
 * `truncated: true` (reports: the parts that matter come before the returned original); with `"refuse"` the
 * result says how far it got before the limit.
 */
export async function readRaw(stream: ReadableStream<Uint8Array>, maxBytes: number, onOverflow: "truncate" | "refuse"): Promise<ReadRawResult> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (total + value.byteLength > maxBytes) {
        if (onOverflow === "refuse") {
          await reader.cancel();
          return { ok: false, sizeBytes: total + value.byteLength };
        }
        chunks.push(value.subarray(0, maxBytes - total));
        total = maxBytes;
        truncated = true;
        await reader.cancel();
        break;
      }
      chunks.push(value);
      total += value.byteLength;
    }
  } finally {
    reader.releaseLock();
  }
  const bytes = concatBytes(chunks, total);
  return { ok: true, bytes, truncated };
}

/** The parts of Email Routing's `ForwardableEmailMessage` the handler uses (tests build these directly). */
export type InboundEmail = Pick<ForwardableEmailMessage, "from" | "to" | "headers" | "raw" | "rawSize" | "setReject">;
