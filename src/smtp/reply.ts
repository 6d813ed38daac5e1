/**
 * SMTP reply parsing (RFC 5321 section 4.2, enhanced status codes RFC 2034/3463). Incremental: bytes go in as
 * they arrive, partial lines are kept, and complete replies come out. Lines are split on bytes and only then
 * decoded (UTF-8, lossy), so a multi-byte character split across reads is never mangled.
 */

/** A parsed SMTP reply. */
export interface SmtpReply {
  /** Three-digit reply code, e.g. 250. */
  code: number;
  /** Enhanced status code ("5.1.1") when the server sent one. */
  enhanced?: string;
  /** Human-readable text: every line's text without the enhanced code, joined with "\n". */
  text: string;
  /** Each line's text exactly as sent, after "250-" / "250 ". */
  lines: string[];
}

/**
 * Longest reply line we buffer. RFC 5321 4.5.3.1.5 allows 512 octets; real servers send longer banners, so we
 * allow more, but a hostile peer must not make us buffer an endless line.
 */
export const MAX_REPLY_LINE_BYTES = 8192;
/** Most lines in one multi-line reply; stops a peer from streaming "250-" lines forever into memory. */
export const MAX_REPLY_LINES = 512;

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)/;

/** Thrown by the parser on bytes that are not an SMTP reply. */
export class ReplySyntaxError extends Error {
  override name = "ReplySyntaxError";
}

/** Builds an SmtpReply from its code and line texts. */
export function buildReply(code: number, lines: string[]): SmtpReply {
  const first = lines[0] ?? "";
  const m = ENHANCED.exec(first);
  // RFC 3463: the class digit of an enhanced code must match the reply's class; otherwise it is just text.
  const enhanced = m && m[1] === String(code)[0] ? `${m[1]}.${Number(m[2])}.${Number(m[3])}` : undefined;
  const text = enhanced
    ? lines
        .map((l) => {
          const lm = ENHANCED.exec(l);
          return lm ? l.slice(lm[0].length) : l;
        })
        .join("\n")
    : lines.join("\n");
  return enhanced ? { code, enhanced, text, lines } : { code, text, lines };
}

const decoder = new TextDecoder("utf-8");

/** Incremental reply parser. Feed bytes with `push`; take complete replies with `shift`. */
export class ReplyParser {
  private buffer: Uint8Array = new Uint8Array(0);
  private pendingLines: string[] = [];
  private pendingCode = 0;
  private readonly replies: SmtpReply[] = [];

  /** Adds received bytes; throws ReplySyntaxError on malformed input. */
  push(chunk: Uint8Array): void {
    let data = chunk;
    if (this.buffer.length) {
      data = new Uint8Array(this.buffer.length + chunk.length);
      data.set(this.buffer, 0);
      data.set(chunk, this.buffer.length);
    }
    let start = 0;
    for (;;) {
      const lf = data.indexOf(0x0a, start);
      if (lf < 0) break;
      const end = lf > start && data[lf - 1] === 0x0d ? lf - 1 : lf;
      this.line(data.subarray(start, end));
      start = lf + 1;
    }
    this.buffer = start >= data.length ? new Uint8Array(0) : data.slice(start);
    if (this.buffer.length > MAX_REPLY_LINE_BYTES) throw new ReplySyntaxError("reply line too long");
  }

  /** The next complete reply, if any. */
  shift(): SmtpReply | undefined {
    return this.replies.shift();
  }

  /** True when bytes of an unfinished reply are buffered. */
  get hasPartial(): boolean {
    return this.buffer.length > 0 || this.pendingLines.length > 0;
  }

  /** Number of complete replies waiting. */
  get available(): number {
    return this.replies.length;
  }

  /** Drops everything buffered (used after STARTTLS: plaintext must not leak into the TLS session). */
  reset(): void {
    this.buffer = new Uint8Array(0);
    this.pendingLines = [];
    this.pendingCode = 0;
    this.replies.length = 0;
  }

  private line(bytes: Uint8Array): void {
    if (bytes.length > MAX_REPLY_LINE_BYTES) throw new ReplySyntaxError("reply line too long");
    const s = decoder.decode(bytes);
    const code = s.length >= 3 ? Number(s.slice(0, 3)) : NaN;
    const sep = s.charAt(3);
    if (!/^[2-5]\d\d$/.test(s.slice(0, 3)) || !Number.isInteger(code) || (sep !== "" && sep !== " " && sep !== "-")) {
      throw new ReplySyntaxError(`malformed reply line: ${JSON.stringify(s.slice(0, 80))}`);
    }
    if (this.pendingLines.length && code !== this.pendingCode) {
      throw new ReplySyntaxError(`reply code changed inside a multi-line reply (${this.pendingCode} then ${code})`);
    }
    this.pendingCode = code;
    this.pendingLines.push(s.slice(4));
    if (sep === "-") {
      if (this.pendingLines.length > MAX_REPLY_LINES) throw new ReplySyntaxError("too many lines in one reply");
      return;
    }
    this.replies.push(buildReply(code, this.pendingLines));
    this.pendingLines = [];
    this.pendingCode = 0;
  }
}
