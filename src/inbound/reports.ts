/**
 * What the email() handler does with mail to a return path or bounce domain: parse it (bounce, complaint,
 * auto-reply) with `parseBounce`, decide whether it may change anything, find the message and recipient it is
 * about, and record it.
 *
 * A report changes state only when it is authenticated (issue 15):
 * - sent to a VERP return path whose signature verifies, or quoting one in the returned original: it speaks
 *   for that one recipient (message id and index), never for the message's other recipients;
 * - returning an original whose DKIM signature by this relay verifies over the returned headers: it speaks for
 *   the recipients of that message (by its signed Message-ID), within the tenant owning the signed From domain;
 * - from a feedback-loop source the operator configured, authenticated by our MX (see report-auth.ts): then the
 *   weaker attribution applies, within the tenant owning the bounce domain it came to: the Message-ID of the
 *   returned original (or In-Reply-To/References), then the tenant's latest message to the reported address
 *   in the past ATTRIBUTION_WINDOW_DAYS.
 * Anything else is logged as `unverified` and changes nothing. Bounces and complaints only ever concern
 * recipients already handed to a next hop (store/inbound.ts); queued, deferred and scheduled ones are left alone.
 */
import type { DkimSigner } from "../mime/dkim";
import { decodeReturnPath, isReturnPathAddress, type ReturnPathToken } from "../mime/return-path";
import { parseBounce, type BounceRecipient, type BounceReport } from "./bounce";
import { bytesToOctets, dkimAuthenticatedOriginal, feedbackLoopSource, type FeedbackLoopConfig, type ReportAuthentication } from "./report-auth";
import {
  findLatestRecipientByAddress,
  findRecipient,
  findRecipientsByMessageIdHeader,
  findRecipientsBySignedOriginal,
  recordAsyncBounce,
  recordAutoReply,
  recordComplaint,
  recordDelayWarning,
  type InboundKind,
  type InboundOutcome,
  type RecipientRef,
  type ReportedComplaint,
  type ReportedDelay,
} from "../store/inbound";
import type { SuppressionReason } from "../store/suppressions";

/** How far back the address-only fallback looks for the message a bounce is about. */
export const ATTRIBUTION_WINDOW_DAYS = 30;

/** What the report was sent to and what we know from that. */
export interface ReportContext {
  /** The verified return path the report came to, if any. */
  token: ReturnPathToken | null;
  /** The tenant owning the bounce domain, when the report came to one. */
  tenantId: string | null;
  secret: string | null;
  /** Headers of the report itself (for In-Reply-To / References of auto-replies). */
  headers: Headers;
  now: number;
  /** This relay's DKIM keys (DKIM_KEYS): a returned original they signed authenticates a report. */
  signers: readonly DkimSigner[];
  /** Configured feedback-loop sources (FEEDBACK_LOOP_SOURCES, INBOUND_AUTHSERV_ID). */
  feedbackLoop: FeedbackLoopConfig;
}

/** One line of the handler's account of a report. */
export interface ReportOutcome {
  kind: InboundKind;
  outcome: InboundOutcome;
  tenantId: string | null;
  messageId: string | null;
  detail: string;
}

function messageIdsIn(value: string | null): string[] {
  return [...(value ?? "").matchAll(/<([^<>\s]+)>/g)].map((m) => m[1]!);
}

interface Attribution {
  ref: RecipientRef;
  how: string;
}

/** Why a reported recipient was not attributed: nothing authenticates it, or nothing matched. */
type Miss = { miss: "unverified" | "unattributed"; why: string };

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Finds our recipient for one reported address ("" when the report names none, e.g. a redacted complaint). */
async function attribute(
  db: D1Database,
  report: BounceReport,
  reported: string,
  c: ReportContext,
  tokenRef: RecipientRef | null,
  auth: ReportAuthentication,
): Promise<Attribution | Miss> {
  const pickIn = (refs: RecipientRef[]): RecipientRef | null => {
    const candidates = [reported, report.originalRecipient ?? ""].filter((a) => a !== "");
    const byAddress = refs.find((r) => candidates.some((a) => same(a, r.address)));
    if (byAddress) return byAddress;
    // A message with a single recipient is that recipient even when the report names a forwarded address.
    return refs.length === 1 ? refs[0]! : null;
  };
  const speaksFor = (ref: RecipientRef) => !reported || same(reported, ref.address) || report.recipients.length <= 1;

  // A return path speaks only for its own recipient: one recipient must not bounce the message's others.
  if (tokenRef) {
    if (speaksFor(tokenRef)) return { ref: tokenRef, how: "verp" };
    return { miss: "unverified", why: `names ${reported}, not the recipient of the return path it came to` };
  }

  // A return path quoted in the report (our own VERP address as the original's envelope sender).
  const quoted = report.originalEnvelopeFrom;
  if (quoted && c.secret && isReturnPathAddress(quoted)) {
    const t = await decodeReturnPath(quoted, c.secret);
    const ref = t ? await findRecipient(db, t.messageId, t.recipientIndex) : null;
    if (ref && (c.tenantId === null || ref.tenantId === c.tenantId) && speaksFor(ref)) return { ref, how: "original-verp" };
  }

  if (auth.kind === "dkim") {
    if (c.tenantId === null) return { miss: "unverified", why: "a signed original reached no tenant's bounce domain" };
    const ref = pickIn(await findRecipientsBySignedOriginal(db, auth.messageIdHeader, auth.fromDomain, c.tenantId));
    return ref ? { ref, how: "dkim" } : { miss: "unattributed", why: `no recipient ${reported || "(redacted)"} of <${auth.messageIdHeader}> from ${auth.fromDomain}` };
  }

  if (auth.kind !== "feedback-loop" || c.tenantId === null) {
    return { miss: "unverified", why: "no signed return path, no returned original signed by this relay, not a configured feedback loop" };
  }
  const tenantId = c.tenantId;
  const ids = [report.originalMessageId ?? "", ...messageIdsIn(c.headers.get("in-reply-to")), ...messageIdsIn(c.headers.get("references")).reverse()].filter(
    (id, i, all) => id !== "" && all.indexOf(id) === i,
  );
  for (const id of ids) {
    const ref = pickIn(await findRecipientsByMessageIdHeader(db, id, tenantId));
    if (ref) return { ref, how: "message-id" };
  }
  for (const address of [reported, report.originalRecipient ?? ""]) {
    if (!address) continue;
    const ref = await findLatestRecipientByAddress(db, tenantId, address, c.now - ATTRIBUTION_WINDOW_DAYS * 86_400_000);
    if (ref) return { ref, how: "address" };
  }
  return { miss: "unattributed", why: "no matching message" };
}

/** How a report that did not come to a signed return path is authenticated, if it is. */
async function authenticate(raw: Uint8Array, c: ReportContext): Promise<ReportAuthentication> {
  if (c.token) return { kind: "none" };
  const octets = bytesToOctets(raw);
  return (await dkimAuthenticatedOriginal(octets, c.signers)) ?? feedbackLoopSource(octets, c.feedbackLoop) ?? { kind: "none" };
}

/** The suppression a complaint's feedback type calls for (RFC 5965 section 7.3 types, plus SES's). */
function complaintSuppression(feedbackType: string): ReportedComplaint["suppress"] {
  const t = feedbackType.toLowerCase();
  if (t === "opt-out" || t === "unsubscribe") return { reason: "unsubscribe" satisfies SuppressionReason, scope: "broadcast" };
  // not-spam reverses a complaint; fraud, virus and auth-failure report abuse of the domain, not the recipient's wish.
  if (["not-spam", "fraud", "virus", "auth-failure", "dmarc"].includes(t)) return null;
  return { reason: "complaint", scope: "all" };
}

/** A delay warning for one recipient: a `delayed` event, never a change of state (issue 23). */
async function applyDelay(
  db: D1Database,
  report: BounceReport,
  r: BounceRecipient,
  c: ReportContext,
  tokenRef: RecipientRef | null,
  auth: ReportAuthentication,
  knownTenant: string | null,
): Promise<ReportOutcome> {
  const a = await attribute(db, report, r.address, c, tokenRef, auth);
  if ("miss" in a) return { kind: "delay_notice", outcome: a.miss, tenantId: knownTenant, messageId: null, detail: `${r.address} ${r.status} ${r.reason}: not final; ${a.why}` };
  const recorded = await recordDelayWarning(db, a.ref, reportedOf(r, a.how), c.now);
  return {
    kind: "delay_notice",
    outcome: recorded ? "recorded" : "duplicate",
    tenantId: a.ref.tenantId,
    messageId: a.ref.messageId,
    detail: `${a.ref.address} ${r.status} ${r.reason}: delay warning, not final (by ${a.how})`,
  };
}

/** What the report says of one recipient, in the form the store records (bounce or delay warning alike). */
function reportedOf(r: BounceRecipient, attribution: string): ReportedDelay {
  return {
    status: r.status,
    replyCode: r.replyCode && /^\d{3}$/.test(r.replyCode) ? Number(r.replyCode) : null,
    text: r.remoteReply ?? r.diagnosticCode ?? null,
    reason: r.reason,
    reportedAddress: r.address,
    remoteMta: r.remoteMta ?? null,
    attribution,
  };
}

/** Parses a report and records what it says; returns one outcome per reported recipient (at least one). */
export async function applyReport(db: D1Database, raw: Uint8Array, c: ReportContext, envelopeFrom: string): Promise<ReportOutcome[]> {
  const report = parseBounce(raw, { envelopeFrom });
  const tokenRef = c.token ? await findRecipient(db, c.token.messageId, c.token.recipientIndex) : null;
  const knownTenant = tokenRef?.tenantId ?? c.tenantId;
  const auth = await authenticate(raw, c);
  const out: ReportOutcome[] = [];

  if (report.kind === "bounce" || report.kind === "delayed") {
    for (const r of report.recipients) {
      if (r.action === "delayed" || report.kind === "delayed") {
        out.push(await applyDelay(db, report, r, c, tokenRef, auth, knownTenant));
        continue;
      }
      const a = await attribute(db, report, r.address, c, tokenRef, auth);
      if ("miss" in a) {
        out.push({ kind: "bounce", outcome: a.miss, tenantId: knownTenant, messageId: null, detail: `${r.address} ${r.status} ${r.reason}: ${a.why}` });
        continue;
      }
      const recorded = await recordAsyncBounce(db, a.ref, { ...reportedOf(r, a.how), hard: r.hard }, c.now);
      out.push({
        kind: "bounce",
        outcome: recorded ? "recorded" : "duplicate",
        tenantId: a.ref.tenantId,
        messageId: a.ref.messageId,
        detail: `${a.ref.address} ${r.status} ${r.reason} ${r.hard ? "hard" : "soft"} (by ${a.how})`,
      });
    }
    if (!out.length) out.push({ kind: report.kind === "delayed" ? "delay_notice" : "bounce", outcome: "unattributed", tenantId: knownTenant, messageId: null, detail: `a ${report.kind === "delayed" ? "delay warning" : "bounce"} naming no recipient` });
    return out;
  }

  if (report.kind === "complaint") {
    const feedbackType = report.feedbackType ?? "abuse";
    const reported = report.recipients.length ? report.recipients.map((r) => r.address) : [""];
    for (const address of reported) {
      const a = await attribute(db, report, address, c, tokenRef, auth);
      if ("miss" in a) {
        out.push({ kind: "complaint", outcome: a.miss, tenantId: knownTenant, messageId: null, detail: `${address || "(redacted)"} ${feedbackType}: ${a.why}` });
        continue;
      }
      const recorded = await recordComplaint(db, a.ref, { feedbackType, reportedAddress: address, attribution: a.how, suppress: complaintSuppression(feedbackType) }, c.now);
      out.push({ kind: "complaint", outcome: recorded ? "recorded" : "duplicate", tenantId: a.ref.tenantId, messageId: a.ref.messageId, detail: `${a.ref.address} ${feedbackType} (by ${a.how})` });
    }
    return out;
  }

  if (report.kind === "auto-reply") {
    const from = report.recipients[0]?.address ?? envelopeFrom;
    const a = await attribute(db, report, from, c, tokenRef, auth);
    const reason = report.autoReply?.reason ?? "auto-replied";
    if ("miss" in a) return [{ kind: "auto_reply", outcome: a.miss, tenantId: knownTenant, messageId: null, detail: `${from} ${reason}: ${a.why}` }];
    const recorded = await recordAutoReply(db, a.ref, { reason, from, subject: c.headers.get("subject"), attribution: a.how }, c.now);
    return [{ kind: "auto_reply", outcome: recorded ? "recorded" : "duplicate", tenantId: a.ref.tenantId, messageId: a.ref.messageId, detail: `${a.ref.address} ${reason} (by ${a.how})` }];
  }

  const kind: InboundKind = report.kind === "delivered" ? "delivery_report" : "unknown";
  return [{ kind, outcome: "ignored", tenantId: tokenRef?.tenantId ?? c.tenantId, messageId: tokenRef?.messageId ?? null, detail: report.kind === "delivered" ? "a success notification" : "not a bounce, complaint or auto-reply" }];
}
