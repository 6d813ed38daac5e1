/**
 * One SMTP connection's byte plumbing: writes commands, reads replies with a deadline per reply (RFC 5321
 * 4.5.3.2), detects end-of-stream on every read, and turns socket failures into typed SmtpErrors.
 */
import { SmtpError, type SmtpCommand } from "./errors";
import { ReplyParser, ReplySyntaxError, type SmtpReply } from "./reply";
import type { SmtpSocket } from "./socket";

const encoder = new TextEncoder();

/** A line-oriented SMTP connection over an SmtpSocket. */
export class SmtpConnection {
  private socket: SmtpSocket;
  private reader: ReadableStreamDefaultReader<Uint8Array>;
  private writer: WritableStreamDefaultWriter<Uint8Array>;
  private readonly parser = new ReplyParser();
  /** Set once the connection failed or was closed; every later use throws this. */
  private failure?: SmtpError;
  private closing?: Promise<void>;

  constructor(socket: SmtpSocket) {
    this.socket = socket;
    // A socket error also rejects `closed`; it is reported through reads and writes instead.
    socket.closed.catch(() => undefined);
    this.reader = socket.readable.getReader();
    this.writer = socket.writable.getWriter();
  }

  /** False after a timeout, a drop, a protocol violation or close(). */
  get healthy(): boolean {
    return !this.failure;
  }

  /** Waits for the socket (and TLS handshake) to be established, when the adapter can tell. */
  async opened(command: SmtpCommand, timeoutMs: number, kind: "connection" | "tls"): Promise<void> {
    if (!this.socket.opened) return;
    await this.guard(this.socket.opened, command, timeoutMs, kind);
  }

  /** Sends one or more command lines (CRLF added) in a single write. */
  async command(lines: string | string[], command: SmtpCommand, timeoutMs: number): Promise<void> {
    const text = typeof lines === "string" ? `${lines}\r\n` : lines.map((l) => `${l}\r\n`).join("");
    await this.write(encoder.encode(text), command, timeoutMs);
  }

  /** Writes raw bytes (message data). */
  async write(bytes: Uint8Array, command: SmtpCommand, timeoutMs: number): Promise<void> {
    this.assertHealthy();
    await this.guard(this.writer.write(bytes), command, timeoutMs, "connection");
  }

  /** Reads the next complete reply. Rejects on timeout, end-of-stream, socket error or malformed reply. */
  async reply(command: SmtpCommand, timeoutMs: number): Promise<SmtpReply> {
    const ready = this.parser.shift();
    if (ready) return ready;
    this.assertHealthy();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            this.fail(
              new SmtpError({ kind: "timeout", command, message: `timed out after ${timeoutMs} ms waiting for the ${command} reply` }),
            ),
          ),
        timeoutMs,
      );
    });
    try {
      for (;;) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await Promise.race([this.reader.read(), deadline]);
        } catch (e) {
          throw this.fail(e instanceof SmtpError ? e : connectionError(command, e, "connection"));
        }
        if (result.done) {
          throw this.fail(
            new SmtpError({ kind: "connection", command, message: `connection closed by the server while waiting for the ${command} reply` }),
          );
        }
        try {
          this.parser.push(result.value);
        } catch (e) {
          if (!(e instanceof ReplySyntaxError)) throw e;
          throw this.fail(new SmtpError({ kind: "protocol", command, message: `${command}: ${e.message}`, cause: e }));
        }
        const reply = this.parser.shift();
        if (reply) return reply;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** True when the server sent bytes we have not consumed yet. */
  get hasBufferedInput(): boolean {
    return this.parser.hasPartial || this.parser.available > 0;
  }

  /** Hands the socket to TLS (after a 220 to STARTTLS); the connection continues over the TLS socket. */
  startTls(serverName: string): void {
    this.assertHealthy();
    this.reader.releaseLock();
    this.writer.releaseLock();
    this.parser.reset();
    const tls = this.socket.startTls({ expectedServerHostname: serverName });
    this.socket = tls;
    tls.closed.catch(() => undefined);
    this.reader = tls.readable.getReader();
    this.writer = tls.writable.getWriter();
  }

  /** Marks the connection failed, closes the socket, and returns the error for throwing. */
  fail(error: SmtpError): SmtpError {
    if (!this.failure) {
      this.failure = error;
      void this.close();
    }
    return error;
  }

  /** Closes the socket (idempotent, never throws). */
  close(): Promise<void> {
    if (!this.failure) this.failure = new SmtpError({ kind: "connection", command: "QUIT", message: "connection is closed" });
    this.closing ??= (async () => {
      try {
        await this.socket.close();
      } catch {
        // Closing an already broken socket fails; the socket is gone either way.
      }
    })();
    return this.closing;
  }

  private assertHealthy(): void {
    if (this.failure) throw this.failure;
  }

  private async guard<T>(p: Promise<T>, command: SmtpCommand, timeoutMs: number, kind: "connection" | "tls"): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new SmtpError({ kind: "timeout", command, message: `timed out after ${timeoutMs} ms during ${command}` })),
            timeoutMs,
          );
        }),
      ]);
    } catch (e) {
      throw this.fail(e instanceof SmtpError ? e : connectionError(command, e, kind));
    } finally {
      clearTimeout(timer);
    }
  }
}

function connectionError(command: SmtpCommand, cause: unknown, kind: "connection" | "tls"): SmtpError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new SmtpError({ kind, command, message: `${command}: ${kind === "tls" ? "TLS failed" : "connection failed"}: ${detail}`, cause });
}
