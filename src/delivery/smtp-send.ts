/**
 * The SMTP sending stage: opens a session to the first endpoint of a target that answers, and sends one work
 * item's recipients over it, turning replies into what each recipient's attempt learnt.
 */
import type { RelayConfig } from "../config";
import { meterStageSpan, meterStageTime } from "../metering";
import { openSmtpSession, SmtpError, type SmtpSession } from "../smtp/client";
import { cloudflareSocketFactory } from "../smtp/cloudflare-socket";
import { retryHintSeconds } from "./retry";
import { BodyKeyError, readStoredBody } from "../store/body-crypto";
import type { Target } from "./targets";
import type { Attempted, Work } from "./work";

export function fromSmtpError(e: SmtpError, host: string | undefined, tls: boolean | undefined): Attempted {
  return {
    status: e.temporary ? "deferred" : "bounced",
    ...(e.code !== undefined ? { code: e.code } : {}),
    ...(e.enhanced !== undefined ? { enhanced: e.enhanced } : {}),
    text: e.reply?.text ?? e.message,
    ...(host ? { host } : {}),
    ...(tls !== undefined ? { tls } : {}),
    command: e.command,
    ...(retryHintSeconds(e.reply?.text ?? e.message) !== undefined ? { hintSeconds: retryHintSeconds(e.reply?.text ?? e.message)! } : {}),
  };
}

/** Opens a session to the first endpoint that answers (next MX / address on connection failure). */
export async function connect(env: Env, config: RelayConfig, target: Target): Promise<{ session: SmtpSession; host: string } | { error: SmtpError; host: string }> {
  let last: { error: SmtpError; host: string } | undefined;
  for (const ep of target.endpoints) {
    const host = ep.address === ep.host ? `${ep.host}:${ep.port}` : `${ep.host}:${ep.port} [${ep.address}]`;
    const span = meterStageSpan(env, "smtp");
    try {
      const opening = Date.now();
      const session = await openSmtpSession({
        socketFactory: cloudflareSocketFactory,
        host: ep.address,
        port: ep.port,
        tls: ep.tls,
        heloName: config.relayHostname,
        tlsServerName: ep.host,
        ...(ep.auth ? { auth: ep.auth } : {}),
        timeouts: { connectMs: 15_000, greetingMs: 60_000, commandMs: 60_000 },
      });
      meterStageTime(env, "smtp", Date.now() - opening);
      return { session, host };
    } catch (e) {
      if (!(e instanceof SmtpError)) throw e;
      last = { error: e, host };
    } finally {
      span();
    }
  }
  return last ?? { error: new SmtpError({ kind: "connection", command: "CONNECT", message: `no endpoint for ${target.label}` }), host: target.label };
}

/** Delivers one job's pending recipients over an open session. Throws SmtpError when the connection failed. */
export async function sendOne(env: Env, session: SmtpSession, host: string, w: Work, seq: number): Promise<void> {
  const started = Date.now();
  const rcpts = w.pending.filter((r) => !w.results.has(r.idx));
  let body: string | ReadableStream<Uint8Array> | undefined;
  try {
    body = w.raw ?? (await readStoredBody(env, w.job.bodyKey!));
  } catch (e) {
    if (!(e instanceof BodyKeyError)) throw e;
    for (const r of rcpts) w.results.set(r.idx, { status: "deferred", enhanced: "4.3.0", text: `stored body cannot be opened: ${e.message}`, seq });
    return;
  }
  if (body === undefined) {
    for (const r of rcpts) w.results.set(r.idx, { status: "bounced", enhanced: "5.3.0", text: "message body missing from storage", seq });
    return;
  }
  const span = meterStageSpan(env, "smtp");
  try {
    const result = await session
      .sendMail(
        { mailFrom: w.job.mailFrom, rcptTo: rcpts.map((r) => r.address), size: w.job.sizeBytes, eightBit: w.job.eightBit, smtputf8: w.job.smtputf8, ...(w.job.requireTls ? { requireTls: true } : {}) },
        body,
      )
      .finally(span);
    const latencyMs = Date.now() - started;
    meterStageTime(env, "smtp", latencyMs);
    rcpts.forEach((r, i) => {
      const rr = result.recipients[i]!;
      if (rr.delivered) {
        const reply = result.dataReply;
        w.results.set(r.idx, {
          status: "delivered",
          ...(reply ? { code: reply.code, text: reply.text } : { text: "accepted" }),
          ...(reply?.enhanced ? { enhanced: reply.enhanced } : {}),
          host,
          tls: session.tls,
          latencyMs,
          seq,
        });
      } else {
        const err = rr.error ?? result.error ?? new SmtpError({ kind: "reply", command: "RCPT", reply: rr.reply });
        w.results.set(r.idx, { ...fromSmtpError(err, host, session.tls), latencyMs, seq });
      }
    });
  } catch (e) {
    if (e instanceof BodyKeyError) {
      // A sealed body failed to open in the middle of DATA: drop the connection without the final "." so the
      // partial message is never delivered; the recipients wait for the next attempt.
      await session.close();
      for (const r of rcpts) w.results.set(r.idx, { status: "deferred", enhanced: "4.3.0", text: `stored body cannot be opened: ${e.message}`, host, seq });
      throw new SmtpError({ kind: "connection", command: "DATA", message: e.message, cause: e });
    }
    if (!(e instanceof SmtpError)) throw e;
    const latencyMs = Date.now() - started;
    for (const r of rcpts) w.results.set(r.idx, { ...fromSmtpError(e, host, session.tls), status: e.temporary ? "deferred" : "bounced", latencyMs, seq });
    throw e;
  }
}

export function hint(e: SmtpError): { retryAfterSeconds?: number } {
  const h = retryHintSeconds(e.reply?.text ?? e.message);
  return h !== undefined ? { retryAfterSeconds: h } : {};
}
