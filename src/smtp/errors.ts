/**
 * Typed SMTP failures and the one function that decides whether a failure is temporary (retry later) or
 * permanent (bounce), after RFC 5321 section 4.2.1 and RFC 3463.
 */
import type { SmtpReply } from "./reply";

/** What went wrong, broadly. */
export type SmtpErrorKind = "reply" | "timeout" | "connection" | "tls" | "protocol" | "auth";

/** The SMTP command (or phase) a failure belongs to. */
export type SmtpCommand =
  | "CONNECT"
  | "GREETING"
  | "EHLO"
  | "HELO"
  | "STARTTLS"
  | "AUTH"
  | "MAIL"
  | "RCPT"
  | "DATA"
  | "BODY"
  | "RSET"
  | "QUIT";

export interface SmtpErrorInit {
  kind: SmtpErrorKind;
  command: SmtpCommand;
  message?: string;
  reply?: SmtpReply;
  recipient?: string;
  cause?: unknown;
  /** Override the classification (only for failures whose nature the code cannot see, e.g. local policy). */
  temporary?: boolean;
  /** RFC 3463 code for a failure without a reply (e.g. 4.7.5 for a TLS handshake the client gave up on). */
  enhanced?: string;
}

/** An SMTP failure with structure: command, reply, enhanced code, recipient, temporary/permanent. */
export class SmtpError extends Error {
  override name = "SmtpError";
  readonly kind: SmtpErrorKind;
  readonly command: SmtpCommand;
  readonly reply?: SmtpReply;
  readonly code?: number;
  readonly enhanced?: string;
  readonly recipient?: string;
  /** True: try again later (defer). False: do not retry this message to this recipient (bounce). */
  readonly temporary: boolean;

  constructor(init: SmtpErrorInit) {
    const replyText = init.reply ? `${init.reply.code}${init.reply.enhanced ? ` ${init.reply.enhanced}` : ""} ${init.reply.text}`.trim() : "";
    const message =
      init.message ??
      (init.reply ? `${init.command}${init.recipient ? ` <${init.recipient}>` : ""} failed: ${replyText}` : `${init.command} failed`);
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.kind = init.kind;
    this.command = init.command;
    if (init.reply) {
      this.reply = init.reply;
      this.code = init.reply.code;
      if (init.reply.enhanced) this.enhanced = init.reply.enhanced;
    } else if (init.enhanced) {
      this.enhanced = init.enhanced;
    }
    if (init.recipient !== undefined) this.recipient = init.recipient;
    this.temporary = init.temporary ?? isTemporaryFailure(init.kind, init.command, init.reply);
  }
}

/**
 * The one classification of SMTP failures into temporary (true) and permanent (false).
 *
 * - Replies: 4yz is transient, 5yz permanent (RFC 5321 4.2.1). An enhanced status code always has the same class
 *   (RFC 3463 section 3.1; the parser ignores one that does not), so the basic code decides.
 * - 552 to RCPT means "too many recipients" and must be treated as 452 (RFC 5321 4.5.3.1.10).
 * - Timeouts, dropped connections, TLS that could not be established and protocol violations are properties of
 *   this attempt, not of the message: temporary.
 * - Authentication failures are a configuration problem of the hop, not of the message: temporary, like
 *   Postfix's default `smtp_sasl_auth_soft_bounce = yes`, so fixing the credentials delivers the queue.
 */
export function isTemporaryFailure(kind: SmtpErrorKind, command: SmtpCommand, reply?: SmtpReply): boolean {
  if (kind === "auth") return true;
  if (!reply) return true;
  if (command === "RCPT" && reply.code === 552) return true;
  return reply.code < 500;
}
