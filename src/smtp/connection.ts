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
  private readonly watchdog = new Watchdog();

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
    const deadline = this.watchdog.start(timeoutMs, () =>
      this.fail(new SmtpError({ kind: "timeout", command, message: `timed out after ${timeoutMs} ms waiting for the ${command} reply` })),
    );
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
      this.watchdog.stop();
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
    // An operation still waiting (none, normally) wakes with the failure; no timer outlives the connection.
    this.watchdog.dispose(this.failure);
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
    try {
      return await Promise.race([p, this.watchdog.start(timeoutMs, () => new SmtpError({ kind: "timeout", command, message: `timed out after ${timeoutMs} ms during ${command}` }))]);
    } catch (e) {
      throw this.fail(e instanceof SmtpError ? e : connectionError(command, e, kind));
    } finally {
      this.watchdog.stop();
    }
  }
}

/**
 * The deadline of a connection's read or write in progress (one at a time), kept by one timer per connection
 * instead of a timer set and cleared for every read and write: a busy connection does several of each per
 * message, and the timer calls were a measurable share of the consumer's CPU. The timer re-arms itself for the
 * rest of the current deadline when it fires early, and is moved forward only when a deadline is shorter than it.
 */
class Watchdog {
  private deadline = 0;
  private overdue?: () => SmtpError;
  private timer?: ReturnType<typeof setTimeout>;
  private timerAt = 0;
  /** Rejected when a deadline passes; raced against the operation in progress. */
  private expiry?: { promise: Promise<never>; reject: (e: unknown) => void };
  private uses = 0;

  /** Starts an operation's deadline; the promise rejects with `overdue()` if it is not stopped in time. */
  start(timeoutMs: number, overdue: () => SmtpError): Promise<never> {
    const now = Date.now();
    // Each race leaves a reaction on the promise until it settles: start a fresh one now and then, settling the old
    // (only between operations, so no operation still racing it sees the settlement).
    if (!this.expiry || (++this.uses > EXPIRY_REUSES && this.deadline === 0)) this.renew();
    this.deadline = now + timeoutMs;
    this.overdue = overdue;
    if (this.timer === undefined || this.deadline < this.timerAt) {
      clearTimeout(this.timer);
      this.arm(timeoutMs, now);
    }
    return this.expiry!.promise;
  }

  /** Ends the operation in progress; the timer stays for the next one (or stops by itself when it fires idle). */
  stop(): void {
    this.deadline = 0;
  }

  /** Stops the timer for good and fails an operation still waiting with `error`. */
  dispose(error: SmtpError): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.deadline = 0;
    this.expiry?.reject(error);
    this.expiry = undefined;
  }

  private renew(): void {
    // No operation is waiting on the old promise now (one at a time), so rejecting it only frees its reactions.
    this.expiry?.reject(RENEWED);
    let reject!: (e: unknown) => void;
    const promise = new Promise<never>((_, r) => (reject = r));
    promise.catch(() => undefined);
    this.expiry = { promise, reject };
    this.uses = 0;
  }

  private arm(ms: number, now: number): void {
    this.timerAt = now + ms;
    this.timer = setTimeout(() => this.check(), ms);
  }

  private check(): void {
    this.timer = undefined;
    if (!this.deadline) return;
    const now = Date.now();
    if (this.deadline > now) return this.arm(this.deadline - now, now);
    this.deadline = 0;
    const expiry = this.expiry;
    this.expiry = undefined;
    expiry?.reject(this.overdue!());
  }
}

/** Operations that share one expiry promise before it is replaced. */
const EXPIRY_REUSES = 64;
const RENEWED = new Error("deadline promise renewed");

function connectionError(command: SmtpCommand, cause: unknown, kind: "connection" | "tls"): SmtpError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new SmtpError({ kind, command, message: `${command}: ${kind === "tls" ? "TLS failed" : "connection failed"}: ${detail}`, cause });
}
