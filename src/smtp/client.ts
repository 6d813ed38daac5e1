/**
 * SMTP client (RFC 5321) for delivery to a next hop: greeting, EHLO with HELO fallback, implicit TLS or
 * STARTTLS (RFC 3207), AUTH (RFC 4954), transactions with a separate envelope and per-recipient results,
 * PIPELINING (RFC 2920), SIZE, 8BITMIME, SMTPUTF8, DSN, several transactions per connection, QUIT.
 * Runs over an injected SocketFactory (`cloudflare:sockets` on Workers, node:net in Node).
 */
import { cramMd5Response, DEFAULT_AUTH_METHODS, base64, plainResponse, type AuthMethod } from "./auth";
import { heloCapabilities, parseEhloReply, type SmtpCapabilities } from "./capabilities";
import { SmtpConnection } from "./connection";
import { encodeData, encodeDataPieces, encodeDataStream } from "./data-encoding";
import { SmtpError, type SmtpCommand } from "./errors";
import type { SmtpReply } from "./reply";
import type { SocketFactory } from "./socket";

export type { SmtpCapabilities } from "./capabilities";
export type { SmtpReply } from "./reply";
export { SmtpError, isTemporaryFailure, type SmtpErrorKind, type SmtpCommand } from "./errors";
export type { SmtpSocket, SocketFactory } from "./socket";

/**
 * - implicit: TLS from the first byte (port 465, RFC 8314).
 * - starttls-required: STARTTLS or fail (temporary) — never a silent downgrade.
 * - starttls-opportunistic: STARTTLS when offered; if the handshake fails, one retry in plaintext.
 * - off: plaintext.
 */
export type TlsMode = "implicit" | "starttls-required" | "starttls-opportunistic" | "off";

/** Timeouts in milliseconds. Defaults from RFC 5321 section 4.5.3.2 where it names one. */
export interface SmtpTimeouts {
  /** TCP connect (and implicit-TLS handshake). Not in RFC 5321; 30 s like Postfix's smtp_connect_timeout. */
  connectMs: number;
  /** Initial 220 greeting: 5 minutes (4.5.3.2.1). */
  greetingMs: number;
  /** EHLO, HELO, STARTTLS, AUTH, RSET, QUIT: not named by the RFC; 5 minutes like its other commands. */
  commandMs: number;
  /** MAIL: 5 minutes (4.5.3.2.2). */
  mailMs: number;
  /** RCPT: 5 minutes (4.5.3.2.3). */
  rcptMs: number;
  /** DATA initiation (the 354): 2 minutes (4.5.3.2.4). */
  dataInitMs: number;
  /** Each write of message data: 3 minutes (4.5.3.2.5). */
  dataBlockMs: number;
  /** The reply after the final ".": 10 minutes (4.5.3.2.6). */
  dataTerminationMs: number;
}

/** RFC 5321 section 4.5.3.2 timeouts. */
export const DEFAULT_SMTP_TIMEOUTS: SmtpTimeouts = {
  connectMs: 30_000,
  greetingMs: 5 * 60_000,
  commandMs: 5 * 60_000,
  mailMs: 5 * 60_000,
  rcptMs: 5 * 60_000,
  dataInitMs: 2 * 60_000,
  dataBlockMs: 3 * 60_000,
  dataTerminationMs: 10 * 60_000,
};

export interface SmtpClientOptions {
  socketFactory: SocketFactory;
  host: string;
  port: number;
  tls: TlsMode;
  /** Our name in EHLO/HELO: a fully qualified domain name (or an address literal like "[192.0.2.1]"). */
  heloName: string;
  /**
   * Credentials for this hop. Sent only over TLS unless allowInsecure. A server that advertises AUTH when no
   * credentials are configured is fine (MX servers do this).
   */
  auth?: { user: string; pass: string; allowInsecure?: boolean; methods?: AuthMethod[] };
  timeouts?: Partial<SmtpTimeouts>;
  /** Name to verify the server certificate against; defaults to host. */
  tlsServerName?: string;
}

export interface SmtpEnvelope {
  mailFrom: string;
  rcptTo: string[];
  /** Message size in bytes, declared with SIZE= when the server supports it. Computed for in-memory bodies. */
  size?: number;
  /** The body has 8-bit bytes (BODY=8BITMIME). Detected for in-memory bodies. */
  eightBit?: boolean;
  /** The message needs SMTPUTF8 (RFC 6531). Implied by non-ASCII envelope addresses. */
  smtputf8?: boolean;
  /** DSN parameters (RFC 3461), sent only when the server offers DSN. No NOTIFY is sent unless given. */
  dsn?: { ret?: "FULL" | "HDRS"; envid?: string; notify?: string[] };
}

export interface RecipientResult {
  address: string;
  /** The server accepted the RCPT. */
  accepted: boolean;
  /** Accepted at RCPT and the message data was accepted: the next hop took responsibility. */
  delivered: boolean;
  /** The RCPT reply; for a whole-transaction failure, the reply that failed it (synthesized for local checks). */
  reply: SmtpReply;
  error?: SmtpError;
}

export interface TransactionResult {
  recipients: RecipientResult[];
  /** The reply after the final "." when the data was sent. */
  dataReply?: SmtpReply;
  /** Whole-transaction failure (MAIL refused, no recipient accepted, DATA refused). Per-recipient errors say more. */
  error?: SmtpError;
}

export interface SmtpSession {
  readonly capabilities: SmtpCapabilities;
  /** The connection is encrypted (implicit TLS or after STARTTLS). */
  readonly tls: boolean;
  readonly authenticated: boolean;
  readonly host: string;
  readonly port: number;
  /** The connection is open, healthy and ready for another transaction. */
  readonly usable: boolean;
  /** Transactions completed with data accepted on this connection. */
  readonly messagesSent: number;
  /**
   * Runs one mail transaction. Resolves with per-recipient results, also when the server refused the transaction;
   * rejects with an SmtpError when the connection failed (timeout, drop, 421), after which the session is unusable.
   * A ReadableStream body is read only once the server said 354; if the transaction fails before that it is left
   * unread and the caller still owns it (cancel it, or send it on another connection).
   */
  sendMail(envelope: SmtpEnvelope, body: Uint8Array | string | ReadableStream<Uint8Array>): Promise<TransactionResult>;
  /** RSET (RFC 5321 4.1.1.5). */
  reset(): Promise<void>;
  /** QUIT politely, then close the socket. Never throws. */
  quit(): Promise<void>;
  /** Close the socket without QUIT. Never throws. */
  close(): Promise<void>;
}

/** Connects, reads the greeting, says EHLO (HELO fallback), sets up TLS and authenticates. */
export async function openSmtpSession(opts: SmtpClientOptions): Promise<SmtpSession> {
  validateHeloName(opts.heloName);
  const timeouts = { ...DEFAULT_SMTP_TIMEOUTS, ...opts.timeouts };
  if (opts.tls === "starttls-opportunistic") {
    try {
      return await establish(opts, timeouts, true);
    } catch (e) {
      // A failed handshake gets one retry in plaintext; anything else is a real failure.
      if (!(e instanceof SmtpError) || e.kind !== "tls") throw e;
      return await establish(opts, timeouts, false);
    }
  }
  return await establish(opts, timeouts, opts.tls !== "off");
}

/**
 * A TLS handshake that failed after the server said 220 to STARTTLS. The TCP connection and the SMTP dialogue
 * worked, so the cause is the certificate (untrusted issuer, self-signed, expired, another name) or, rarely, no
 * common TLS version. The Workers runtime does not say which: its exception reads "internal error; reference =
 * ..." and the reason ("invalid peer certificate: ...") goes only to its own log. It verifies against public
 * CAs only and cannot be given another trust anchor, so the reply names the likely cause and the way out.
 * 4.7.5 is RFC 3463's "cryptographic failure", as Postfix uses it for an untrusted server certificate.
 */
function handshakeFailure(host: string, port: number, serverName: string, cause: SmtpError): SmtpError {
  const detail = cause.message.replace(/^STARTTLS: TLS failed: /, "");
  return new SmtpError({
    kind: "tls",
    command: "STARTTLS",
    enhanced: "4.7.5",
    message:
      `TLS certificate not trusted: the TLS handshake with ${host}:${port} after STARTTLS failed. The Workers runtime accepts only ` +
      `a certificate from a publicly trusted CA, valid for ${serverName}; a self-signed or private-CA certificate fails here ` +
      `(runtime: ${detail})`,
    cause,
  });
}

/**
 * Implicit TLS (smtps://) that could not be set up. The Workers runtime reports a refused connection and an
 * untrusted certificate with the same exception, so the text names both; no enhanced code is guessed.
 */
function implicitTlsFailure(host: string, port: number, serverName: string, cause: SmtpError): SmtpError {
  const detail = cause.message.replace(/^CONNECT: TLS failed: /, "");
  return new SmtpError({
    kind: "tls",
    command: "CONNECT",
    message:
      `TLS connection to ${host}:${port} failed: nothing accepted the connection, or its certificate is not trusted (the Workers runtime ` +
      `reports both alike and accepts only a certificate from a publicly trusted CA, valid for ${serverName}) (runtime: ${detail})`,
    cause,
  });
}

async function establish(opts: SmtpClientOptions, t: SmtpTimeouts, useTls: boolean): Promise<SmtpSession> {
  const secureTransport = opts.tls === "implicit" ? "on" : opts.tls === "off" || !useTls ? "off" : "starttls";
  const serverName = opts.tlsServerName ?? opts.host;
  let conn: SmtpConnection;
  try {
    conn = new SmtpConnection(
      opts.socketFactory(
        { hostname: opts.host, port: opts.port },
        { secureTransport, allowHalfOpen: false, expectedServerHostname: serverName },
      ),
    );
  } catch (e) {
    throw new SmtpError({ kind: "connection", command: "CONNECT", message: `connect to ${opts.host}:${opts.port} failed: ${errorText(e)}`, cause: e });
  }
  try {
    await conn.opened("CONNECT", t.connectMs, opts.tls === "implicit" ? "tls" : "connection").catch((e: unknown) => {
      throw opts.tls === "implicit" && e instanceof SmtpError && e.kind === "tls" ? implicitTlsFailure(opts.host, opts.port, serverName, e) : e;
    });
    const greeting = await conn.reply("GREETING", t.greetingMs);
    if (greeting.code !== 220) throw conn.fail(new SmtpError({ kind: "reply", command: "GREETING", reply: greeting }));

    let caps = await hello(conn, opts.heloName, t);
    let tls = opts.tls === "implicit";
    if (secureTransport === "starttls") {
      if (!caps.startTls) {
        if (opts.tls === "starttls-required") {
          throw conn.fail(new SmtpError({ kind: "tls", command: "STARTTLS", message: `${opts.host}:${opts.port} does not offer STARTTLS, and this hop requires TLS` }));
        }
      } else {
        await conn.command("STARTTLS", "STARTTLS", t.commandMs);
        const reply = await conn.reply("STARTTLS", t.commandMs);
        if (reply.code === 220) {
          // Plaintext the server sent after its 220 would be read as if it came over TLS (CVE-2011-0411).
          if (conn.hasBufferedInput) {
            throw conn.fail(new SmtpError({ kind: "protocol", command: "STARTTLS", message: "server sent data after the STARTTLS 220 reply (possible injection)" }));
          }
          try {
            conn.startTls(serverName);
            await conn.opened("STARTTLS", t.connectMs, "tls");
            caps = await hello(conn, opts.heloName, t);
          } catch (e) {
            if (e instanceof SmtpError && (e.kind === "connection" || e.kind === "tls")) throw handshakeFailure(opts.host, opts.port, serverName, e);
            throw e;
          }
          tls = true;
        } else if (reply.code === 421 || opts.tls === "starttls-required") {
          throw conn.fail(new SmtpError({ kind: reply.code === 421 ? "reply" : "tls", command: "STARTTLS", reply, temporary: true }));
        }
        // Opportunistic and the server declined (454): go on in plaintext; the session state is unchanged.
      }
    }

    let authenticated = false;
    if (opts.auth && caps.auth.length) {
      if (!tls && !opts.auth.allowInsecure) {
        throw conn.fail(new SmtpError({ kind: "auth", command: "AUTH", message: `refusing to send credentials to ${opts.host}:${opts.port} over an unencrypted connection` }));
      }
      await authenticate(conn, caps, opts.auth, t);
      authenticated = true;
    }
    return new Session(conn, caps, tls, authenticated, opts.host, opts.port, t);
  } catch (e) {
    await conn.close();
    throw e;
  }
}

async function hello(conn: SmtpConnection, name: string, t: SmtpTimeouts): Promise<SmtpCapabilities> {
  await conn.command(`EHLO ${name}`, "EHLO", t.commandMs);
  const ehlo = await conn.reply("EHLO", t.commandMs);
  if (ehlo.code === 250) return parseEhloReply(ehlo);
  // HELO fallback for servers that do not speak ESMTP (500/502 command unrecognised, 504, 550 ...).
  if (ehlo.code >= 500) {
    await conn.command(`HELO ${name}`, "HELO", t.commandMs);
    const helo = await conn.reply("HELO", t.commandMs);
    if (helo.code === 250) return heloCapabilities(helo);
    throw conn.fail(new SmtpError({ kind: "reply", command: "HELO", reply: helo }));
  }
  throw conn.fail(new SmtpError({ kind: "reply", command: "EHLO", reply: ehlo }));
}

async function authenticate(
  conn: SmtpConnection,
  caps: SmtpCapabilities,
  auth: NonNullable<SmtpClientOptions["auth"]>,
  t: SmtpTimeouts,
): Promise<void> {
  const method = (auth.methods ?? DEFAULT_AUTH_METHODS).find((m) => caps.auth.includes(m));
  if (!method) {
    throw conn.fail(new SmtpError({ kind: "auth", command: "AUTH", message: `no common AUTH mechanism (server offers ${caps.auth.join(" ") || "none"})` }));
  }
  const step = async (line: string, expect: number): Promise<SmtpReply> => {
    await conn.command(line, "AUTH", t.commandMs);
    const reply = await conn.reply("AUTH", t.commandMs);
    if (reply.code !== expect) {
      throw conn.fail(new SmtpError({ kind: reply.code === 421 ? "reply" : "auth", command: "AUTH", reply, message: `AUTH ${method} failed: ${reply.code} ${reply.text}` }));
    }
    return reply;
  };
  if (method === "PLAIN") {
    await step(`AUTH PLAIN ${plainResponse(auth.user, auth.pass)}`, 235);
  } else if (method === "LOGIN") {
    await step("AUTH LOGIN", 334);
    await step(base64(auth.user), 334);
    await step(base64(auth.pass), 235);
  } else {
    const challenge = await step("AUTH CRAM-MD5", 334);
    await step(cramMd5Response(auth.user, auth.pass, challenge.lines[0] ?? ""), 235);
  }
}

/** Characters that would let an address inject commands or break the envelope syntax. */
const UNSAFE_ADDRESS = /[\u0000-\u001f\u007f<>]/;
/** RFC 5321 4.5.3.1.3: a path is at most 256 octets. */
const MAX_PATH_OCTETS = 256;

class Session implements SmtpSession {
  private busy: Promise<unknown> = Promise.resolve();
  private quitting = false;
  messagesSent = 0;

  constructor(
    private readonly conn: SmtpConnection,
    readonly capabilities: SmtpCapabilities,
    readonly tls: boolean,
    readonly authenticated: boolean,
    readonly host: string,
    readonly port: number,
    private readonly t: SmtpTimeouts,
  ) {}

  get usable(): boolean {
    return this.conn.healthy && !this.quitting;
  }

  sendMail(envelope: SmtpEnvelope, body: Uint8Array | string | ReadableStream<Uint8Array>): Promise<TransactionResult> {
    // One transaction at a time on a connection.
    const run = this.busy.then(() => this.transaction(envelope, body));
    this.busy = run.catch(() => undefined);
    return run;
  }

  async reset(): Promise<void> {
    await this.conn.command("RSET", "RSET", this.t.commandMs);
    const reply = await this.conn.reply("RSET", this.t.commandMs);
    if (reply.code !== 250) throw this.conn.fail(new SmtpError({ kind: "reply", command: "RSET", reply }));
  }

  async quit(): Promise<void> {
    if (this.quitting) return;
    this.quitting = true;
    try {
      await this.busy;
      if (this.conn.healthy) {
        await this.conn.command("QUIT", "QUIT", this.t.commandMs);
        await this.conn.reply("QUIT", this.t.commandMs);
      }
    } catch {
      // The server may close without a 221; QUIT is a courtesy.
    } finally {
      await this.conn.close();
    }
  }

  async close(): Promise<void> {
    this.quitting = true;
    await this.conn.close();
  }

  /**
   * RSET after a refused transaction so the connection can carry the next one. If RSET itself fails the
   * connection is marked broken (usable turns false) and the refused transaction's result still stands.
   */
  private async resetAfterFailure(): Promise<void> {
    try {
      await this.reset();
    } catch (e) {
      if (!(e instanceof SmtpError)) throw e;
    }
  }

  private async transaction(envelope: SmtpEnvelope, body: Uint8Array | string | ReadableStream<Uint8Array>): Promise<TransactionResult> {
    if (!this.usable) throw new SmtpError({ kind: "connection", command: "MAIL", message: "the SMTP session is closed or broken" });
    const caps = this.capabilities;
    const conn = this.conn;
    const t = this.t;

    // In-memory bodies are encoded up front: that gives the SIZE and tells whether BODY=8BITMIME is needed.
    let encoded: Uint8Array[] | undefined;
    let size = envelope.size;
    let eightBit = envelope.eightBit ?? false;
    if (!(body instanceof ReadableStream)) {
      const result = encodeDataPieces(typeof body === "string" ? new TextEncoder().encode(body) : body);
      encoded = result.pieces;
      // RFC 1870: the size with CRLF line ends, before dot-stuffing; the terminator ".\r\n" is not part of it.
      size ??= encoded.reduce((n, p) => n + p.length, 0) - 3;
      eightBit ||= result.eightBit;
    }
    const smtputf8 = envelope.smtputf8 || !isAscii(envelope.mailFrom) || envelope.rcptTo.some((r) => !isAscii(r));

    const localFail = (code: number, enhanced: string, text: string): TransactionResult => {
      const reply = localReply(code, enhanced, text);
      const error = new SmtpError({ kind: "protocol", command: "MAIL", reply, message: text });
      return { recipients: envelope.rcptTo.map((address) => ({ address, accepted: false, delivered: false, reply, error })), error };
    };
    if (!validAddress(envelope.mailFrom, true)) return localFail(553, "5.1.7", `invalid sender address ${JSON.stringify(envelope.mailFrom)} (rejected locally)`);
    if (!envelope.rcptTo.length) return localFail(554, "5.5.1", "no recipients (rejected locally)");
    if (size !== undefined && caps.size && size > caps.size) {
      return localFail(552, "5.3.4", `message size ${size} exceeds the server's limit of ${caps.size} bytes (checked locally)`);
    }
    if (smtputf8 && !caps.smtputf8) {
      return localFail(553, "5.6.7", "the message needs SMTPUTF8, which the server does not offer (checked locally)");
    }

    let mail = `MAIL FROM:<${envelope.mailFrom}>`;
    if (caps.size !== undefined && size !== undefined) mail += ` SIZE=${size}`;
    if (eightBit && caps.eightBitMime) mail += " BODY=8BITMIME";
    if (smtputf8) mail += " SMTPUTF8";
    if (caps.dsn && envelope.dsn?.ret) mail += ` RET=${envelope.dsn.ret}`;
    if (caps.dsn && envelope.dsn?.envid) mail += ` ENVID=${xtext(envelope.dsn.envid)}`;
    const notify = caps.dsn && envelope.dsn?.notify?.length ? ` NOTIFY=${envelope.dsn.notify.map((n) => n.toUpperCase()).join(",")}` : "";

    const recipients: RecipientResult[] = [];
    const toSend: { index: number; address: string }[] = [];
    envelope.rcptTo.forEach((address, index) => {
      if (validAddress(address, false)) {
        toSend.push({ index, address });
      } else {
        const reply = localReply(553, "5.1.3", `invalid recipient address ${JSON.stringify(address)} (rejected locally)`);
        recipients[index] = {
          address,
          accepted: false,
          delivered: false,
          reply,
          error: new SmtpError({ kind: "protocol", command: "RCPT", reply, recipient: address, message: reply.text }),
        };
      }
    });

    // 421 at any point means the server is closing the connection: a connection-level failure.
    const expectOpen = (reply: SmtpReply, command: SmtpCommand, recipient?: string): SmtpReply => {
      if (reply.code === 421) throw conn.fail(new SmtpError({ kind: "reply", command, reply, ...(recipient ? { recipient } : {}) }));
      return reply;
    };

    let mailReply: SmtpReply;
    let dataInit: SmtpReply | undefined;
    const rcptReplies: SmtpReply[] = [];
    if (caps.pipelining) {
      // RFC 2920: MAIL, the RCPTs and DATA go in one batch; DATA is the last command of the group.
      const lines = [mail, ...toSend.map((r) => `RCPT TO:<${r.address}>${notify}`)];
      if (toSend.length) lines.push("DATA");
      await conn.command(lines, "MAIL", t.mailMs);
      mailReply = expectOpen(await conn.reply("MAIL", t.mailMs), "MAIL");
      for (const r of toSend) rcptReplies.push(expectOpen(await conn.reply("RCPT", t.rcptMs), "RCPT", r.address));
      if (toSend.length) dataInit = expectOpen(await conn.reply("DATA", t.dataInitMs), "DATA");
    } else {
      await conn.command(mail, "MAIL", t.mailMs);
      mailReply = expectOpen(await conn.reply("MAIL", t.mailMs), "MAIL");
      if (mailReply.code === 250) {
        for (const r of toSend) {
          await conn.command(`RCPT TO:<${r.address}>${notify}`, "RCPT", t.rcptMs);
          rcptReplies.push(expectOpen(await conn.reply("RCPT", t.rcptMs), "RCPT", r.address));
        }
        if (rcptReplies.some((r) => r.code === 250 || r.code === 251)) {
          await conn.command("DATA", "DATA", t.dataInitMs);
          dataInit = expectOpen(await conn.reply("DATA", t.dataInitMs), "DATA");
        }
      }
    }

    const mailOk = mailReply.code === 250;
    const mailError = mailOk ? undefined : new SmtpError({ kind: "reply", command: "MAIL", reply: mailReply });
    toSend.forEach((r, i) => {
      const reply = rcptReplies[i];
      if (!mailOk || !reply) {
        recipients[r.index] = { address: r.address, accepted: false, delivered: false, reply: mailReply, error: mailError! };
      } else if (reply.code === 250 || reply.code === 251) {
        recipients[r.index] = { address: r.address, accepted: true, delivered: false, reply };
      } else {
        recipients[r.index] = {
          address: r.address,
          accepted: false,
          delivered: false,
          reply,
          error: new SmtpError({ kind: "reply", command: "RCPT", reply, recipient: r.address }),
        };
      }
    });
    const accepted = recipients.filter((r) => r.accepted);

    let error: SmtpError | undefined = mailError;
    if (!error && !accepted.length) {
      const failed = recipients.filter((r) => r.error);
      error = new SmtpError({
        kind: "reply",
        command: "RCPT",
        reply: failed[0]!.reply,
        message: "no recipient was accepted",
        temporary: failed.some((r) => r.error!.temporary),
      });
    }
    if (!error && dataInit && dataInit.code !== 354) error = new SmtpError({ kind: "reply", command: "DATA", reply: dataInit });

    if (error) {
      // A pipelining server may still say 354 after refusing everything: end the empty data at once.
      if (dataInit?.code === 354) {
        await conn.write(encodeData(""), "DATA", t.dataBlockMs);
        expectOpen(await conn.reply("DATA", t.dataTerminationMs), "DATA");
      }
      for (const r of accepted) {
        r.accepted = true;
        r.error = error;
      }
      await this.resetAfterFailure();
      return { recipients, error };
    }

    if (encoded) {
      for (const piece of encoded) await conn.write(piece, "DATA", t.dataBlockMs);
    } else {
      for await (const piece of encodeDataStream(body as ReadableStream<Uint8Array>)) await conn.write(piece, "DATA", t.dataBlockMs);
    }
    const dataReply = expectOpen(await conn.reply("DATA", t.dataTerminationMs), "DATA");
    if (dataReply.code !== 250) {
      const dataError = new SmtpError({ kind: "reply", command: "DATA", reply: dataReply });
      for (const r of accepted) r.error = dataError;
      await this.resetAfterFailure();
      return { recipients, dataReply, error: dataError };
    }
    for (const r of accepted) r.delivered = true;
    this.messagesSent++;
    return { recipients, dataReply };
  }
}

/** A reply made up by the client for a check it did locally; `text` says so. */
function localReply(code: number, enhanced: string, text: string): SmtpReply {
  return { code, enhanced, text, lines: [`${enhanced} ${text}`] };
}

function validAddress(address: string, allowNull: boolean): boolean {
  if (address === "") return allowNull; // the null reverse-path <> (RFC 5321 4.5.5) for bounces
  return !UNSAFE_ADDRESS.test(address) && new TextEncoder().encode(address).length <= MAX_PATH_OCTETS && address.includes("@");
}

function isAscii(s: string): boolean {
  return !/[^\u0000-\u007f]/.test(s);
}

/** xtext (RFC 3461 section 4): "+", "=" and anything outside "!".."~" become "+HH". */
function xtext(s: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(s)) {
    out += b < 0x21 || b > 0x7e || b === 0x2b || b === 0x3d ? `+${b.toString(16).toUpperCase().padStart(2, "0")}` : String.fromCharCode(b);
  }
  return out;
}

/** EHLO needs our FQDN (RFC 5321 4.1.1.1, 2.3.5) or an address literal; loopback or bare IPs are refused. */
export function validateHeloName(name: string): void {
  const bad = (why: string) => new TypeError(`invalid EHLO name ${JSON.stringify(name)}: ${why}`);
  if (/^\[(?:IPv6:[0-9a-f:.]+|\d{1,3}(?:\.\d{1,3}){3})\]$/i.test(name)) {
    if (/^\[(?:127\.|IPv6:::1\])/i.test(name)) throw bad("a loopback address says nothing about this host");
    return;
  }
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(name)) throw bad("an IP address must be written as a literal like [192.0.2.1], and never loopback");
  if (!/^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/i.test(name)) {
    throw bad("must be a fully qualified domain name");
  }
  if (/(^|\.)localhost$/i.test(name)) throw bad("localhost is not a fully qualified domain name");
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
