/**
 * The `email()` handler: everything Cloudflare Email Routing hands the Worker, routed on the envelope recipient.
 *
 * - `bounce+<id>-<idx>-<sig>@bounces.<domain>` (our VERP return paths): bounces, complaints and auto-replies
 *   about that recipient (and no other), recorded by `applyReport`. A return path whose signature does not
 *   verify is refused.
 * - `SRS0=…@<alias domain>` / `SRS1=…`: mail returned to a sender we rewrote while forwarding; recorded on the
 *   forwarded message when it is a bounce, and passed back to the original sender with the null sender.
 * - a forwarding alias (`/admin/aliases`): forwarded through accept to its destinations.
 * - `unsubscribe@bounces.<domain>`: the mailto form of List-Unsubscribe (token in the subject).
 * - any other address at `bounces.<domain>` of a tenant's sender domain: reports whose return path was lost
 *   (feedback-loop addresses, DSNs to a bare bounce address). They change state only when authenticated (a
 *   returned original signed by this relay, a configured feedback loop; see reports.ts), else they are logged
 *   as `unverified`.
 * - anything else: refused with 5.1.1.
 *
 * Every message ends with a row in `inbound_messages` saying what was done with it.
 */
import { parseDkimKeys } from "../accept/dkim-keys";
import type { DkimSigner } from "../mime/dkim";
import { dkimKeysSecret, signingSecret, type RelayConfig } from "../config";
import { verifyUnsubscribeToken } from "../mime/deliverability";
import { decodeReturnPath, isReturnPathAddress } from "../mime/return-path";
import { findAliasForDelivery } from "../store/aliases";
import { findRecipient, logInbound, tenantOfDomain, type InboundKind, type InboundLogEntry } from "../store/inbound";
import { addSuppression } from "../store/suppressions";
import { forwardToAlias, returnToSender } from "./forward";
import { readRaw, type InboundEmail } from "./read-raw";
import { applyReport, type ReportContext } from "./reports";
import { isSrsAddress, srsReverse } from "../mime/srs";
import { parseBounce } from "./bounce";
import { emitNewEventsLogged } from "../webhooks/emit";
import { handleReportMail, reportMailbox } from "./reputation-reports";
import { findOnShards, ledgerOf } from "../store/shards";

/**
 * Reports are parsed from their first 2 MiB: the human-readable and machine-readable parts come before the
 * returned original (RFC 3462/6522 part order), which is what can be large.
 */
export const MAX_REPORT_BYTES = 2 * 1024 * 1024;
/** The first label of our bounce domains (see `bounceDomainFor` in src/mime/return-path.ts). */
const BOUNCE_LABEL = "bounces";

function bare(address: string): string {
  return address.trim().replace(/^<(.*)>$/, "$1");
}

/**
 * Handles one message from Email Routing, then lets the webhook emitter pick up the events it wrote (bounced,
 * complained, auto_replied) right away instead of at the next queue batch or cron run.
 */
export async function handleEmail(message: InboundEmail, env: Env, config: RelayConfig, ctx: ExecutionContext): Promise<void> {
  await routeEmail(message, env, config);
  ctx.waitUntil(emitNewEventsLogged(env));
}

async function routeEmail(message: InboundEmail, env: Env, config: RelayConfig): Promise<void> {
  const to = bare(message.to);
  const lowerTo = to.toLowerCase();
  const from = bare(message.from);
  const at = lowerTo.lastIndexOf("@");
  const local = lowerTo.slice(0, at);
  const domain = lowerTo.slice(at + 1);
  const secret = signingSecret(env);
  const base = { envelopeFrom: from, envelopeTo: lowerTo, sizeBytes: message.rawSize };
  const auth = { signers: ourSigners(env), feedbackLoop: config.feedbackLoop };
  const reject = async (reason: string, kind: InboundKind, detail: string, tenantId: string | null = null) => {
    message.setReject(reason);
    await logInbound(env.DB, { ...base, kind, outcome: "rejected", tenantId, detail: `${detail}: ${reason}` });
  };

  if (at <= 0) return reject("5.1.3 Bad recipient address syntax", "rejected", "no @ in the recipient");

  if (isReturnPathAddress(lowerTo)) {
    const token = secret ? await decodeReturnPath(lowerTo, secret) : null;
    if (!token) return reject(`5.1.1 <${to}>: unknown return path`, "rejected", secret ? "return path signature does not verify" : "SIGNING_SECRET is not set");
    return report(message, env, { token, tenantId: null, secret, headers: message.headers, now: Date.now(), ...auth }, base);
  }

  if (isSrsAddress(lowerTo)) return srsReturn(message, env, config, to, base, reject);

  const alias = await findAliasForDelivery(env.DB, lowerTo);
  if (alias) {
    if (alias.tenantSuspended) return reject(`5.7.1 <${to}>: forwarding for this address is suspended`, "forward", "tenant suspended", alias.tenantId);
    const r = await forwardToAlias(message, env, config, alias);
    if (!r.ok) return reject(r.reject, "forward", r.detail, alias.tenantId);
    await logInbound(env.DB, {
      ...base,
      kind: "forward",
      outcome: "forwarded",
      tenantId: alias.tenantId,
      messageId: r.messageId,
      detail: [`to ${r.recipients.map((x) => `${x.address} (${x.status})`).join(", ")} from <${r.mailFrom}>`, r.note].filter(Boolean).join("; "),
    });
    return;
  }

  if (domain.startsWith(`${BOUNCE_LABEL}.`)) {
    const owner = await tenantOfDomain(env.DB, domain.slice(BOUNCE_LABEL.length + 1));
    if (owner) {
      if (local === "unsubscribe") return unsubscribeByMail(message, env, secret, owner.tenantId, base, reject);
      const box = reportMailbox(local);
      if (box) return handleReportMail(message, env, box, owner.tenantId, domain.slice(BOUNCE_LABEL.length + 1), base);
      return report(message, env, { token: null, tenantId: owner.tenantId, secret, headers: message.headers, now: Date.now(), ...auth }, base);
    }
  }
  return reject(`5.1.1 <${to}>: no such recipient here`, "rejected", "unknown recipient");
}

/** Every DKIM key of this relay: a returned original one of them signed authenticates a report. */
function ourSigners(env: Env): DkimSigner[] {
  return parseDkimKeys(dkimKeysSecret(env)).map((k) => ({ domain: k.domain, selector: k.selector, privateKeyPem: k.privateKeyPem }));
}

type LogBase = Pick<InboundLogEntry, "envelopeFrom" | "envelopeTo" | "sizeBytes">;
type Reject = (reason: string, kind: InboundKind, detail: string, tenantId?: string | null) => Promise<void>;

async function report(message: InboundEmail, env: Env, c: ReportContext, base: LogBase): Promise<void> {
  const read = await readRaw(message.raw, MAX_REPORT_BYTES, "truncate");
  if (!read.ok) return;
  const outcomes = await applyReport(await reportLedger(env, c), read.bytes, c, base.envelopeFrom ?? "");
  for (const o of outcomes) {
    await logInbound(env.DB, { ...base, kind: o.kind, outcome: o.outcome, tenantId: o.tenantId, messageId: o.messageId, detail: read.truncated ? `${o.detail} (parsed the first ${MAX_REPORT_BYTES} bytes)` : o.detail });
  }
}

/**
 * The ledger shard a report is about (issue 17): its tenant's when the bounce domain names one, else the shard
 * holding the message its VERP return path names (looked up on every shard; ids name no tenant).
 */
async function reportLedger(env: Env, c: ReportContext): Promise<D1Database> {
  if (c.tenantId !== null) return ledgerOf(env, c.tenantId);
  const token = c.token;
  if (!token) return env.DB;
  const found = await findOnShards(env, (db) => findRecipient(db, token.messageId, token.recipientIndex));
  return found?.shard.db ?? env.DB;
}

/** Mail to an SRS address: a bounce (or reply) to a message we forwarded goes back to its original sender. */
async function srsReturn(message: InboundEmail, env: Env, config: RelayConfig, to: string, base: LogBase, reject: Reject): Promise<void> {
  const secret = signingSecret(env);
  if (!secret) return reject(`5.1.1 <${to}>: unknown address`, "srs_bounce", "SIGNING_SECRET is not set");
  const original = await srsReverse(to, secret);
  if (!original.ok) return reject(`5.1.1 <${to}>: ${original.error}`, "srs_bounce", "bad SRS address");
  const owner = await tenantOfDomain(env.DB, to.slice(to.lastIndexOf("@") + 1));
  if (!owner) return reject(`5.1.1 <${to}>: not a forwarding domain of this relay`, "srs_bounce", "unknown SRS domain");
  if (message.rawSize > config.maxMessageBytes) return reject(`5.3.4 Message too big: ${message.rawSize} bytes, the limit is ${config.maxMessageBytes} bytes`, "srs_bounce", "size limit", owner.tenantId);
  const read = await readRaw(message.raw, config.maxMessageBytes, "refuse");
  if (!read.ok) return reject(`5.3.4 Message too big: more than ${config.maxMessageBytes} bytes`, "srs_bounce", "size limit", owner.tenantId);

  // Record the bounce on the message we forwarded (found by the returned original's Message-ID).
  if (parseBounce(read.bytes).kind === "bounce") {
    const outcomes = await applyReport(await ledgerOf(env, owner.tenantId), read.bytes, { token: null, tenantId: owner.tenantId, secret, headers: message.headers, now: Date.now(), signers: ourSigners(env), feedbackLoop: config.feedbackLoop }, base.envelopeFrom ?? "");
    for (const o of outcomes) await logInbound(env.DB, { ...base, kind: o.kind, outcome: o.outcome, tenantId: o.tenantId, messageId: o.messageId, detail: o.detail });
  }
  const r = await returnToSender(read.bytes, env, config, { tenantId: owner.tenantId, srsAddress: to, to: original.address });
  if (!r.ok) return reject(r.reject, "srs_bounce", r.detail, owner.tenantId);
  await logInbound(env.DB, { ...base, kind: "srs_bounce", outcome: "forwarded", tenantId: owner.tenantId, messageId: r.messageId, detail: `returned to ${original.address}` });
}

/** `mailto:unsubscribe@bounces.<domain>?subject=unsubscribe <token>` (List-Unsubscribe, RFC 2369). */
async function unsubscribeByMail(message: InboundEmail, env: Env, secret: string | null, tenantId: string, base: LogBase, reject: Reject): Promise<void> {
  const subject = message.headers.get("subject") ?? "";
  const token = /unsubscribe\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/i.exec(subject)?.[1];
  const payload = token && secret ? await verifyUnsubscribeToken(token, secret) : null;
  if (!payload || payload.sender !== tenantId) return reject("5.7.1 This unsubscribe request is not valid", "unsubscribe", "bad or missing token", tenantId);
  await addSuppression(await ledgerOf(env, tenantId), {
    tenantId,
    address: payload.recipient,
    scope: "broadcast",
    reason: "unsubscribe",
    detail: "unsubscribe by mail (List-Unsubscribe mailto)",
    messageId: payload.messageId ?? null,
  });
  await logInbound(env.DB, { ...base, kind: "unsubscribe", outcome: "recorded", tenantId, messageId: payload.messageId ?? null, detail: payload.recipient });
}
