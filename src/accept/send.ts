/**
 * Accept for structured send requests (JSON API, batch, MailChannels compatibility): check the sender domain,
 * compose, add the relay's headers, sign, check suppressions, and hand over to `acceptMessage`.
 */
import type { RelayConfig } from "../config";
import { Refusal, refusalOf } from "./refusal";
import type { Mailbox } from "../mime/address";
import { ComposeError, composeMessage } from "../mime/compose";
import { DkimSignError, publicKeyRecord, type DkimSigner } from "../mime/dkim";
import { HeaderValueError } from "../mime/deliverability";
import type { SendRequest } from "../mime/validate";
import { newId } from "../store/ids";
import { tenantDomainStatus, type Tenant } from "../store/keys";
import { readForAccept } from "../store/accept-reads";
import { acceptMessage, type AcceptResult } from "../queue/spool";
import { OutboundError, prepareOutbound } from "./outbound";
import { signingSecret } from "../config";
import { trackedHtmlBodies } from "./tracking";
import { tlsWishes } from "../mime/tls-required";
import { ledgerOf } from "../store/shards";

/** Who is sending and through which door. */
export interface SendContext {
  env: Env;
  config: RelayConfig;
  tenant: Tenant;
  /** "HTTPS" or "HTTP" for the API; an SMTP protocol name for the bridge. */
  protocol: string;
  publicBaseUrl: string | null;
  clientName?: string;
}

export interface SendOutcome extends AcceptResult {
  status: "accepted" | "scheduled";
  /** The Message-ID header, without angle brackets. */
  message_id: string;
}

/** The SMTP form of an address: local part as given, domain in ASCII (A-labels). */
export function envelopeAddress(m: Mailbox): string {
  return `${m.address.slice(0, m.address.lastIndexOf("@"))}@${m.asciiDomain}`;
}

/**
 * 403 unless the tenant may send from this domain (the open-relay guard), and, with REQUIRE_VERIFIED_DOMAINS
 * (the default), unless its DNS records were verified: adding a domain to a tenant proves nothing about who
 * controls it.
 */
export async function requireSenderDomain(ctx: SendContext, domain: string, field: string): Promise<void> {
  senderDomainAllowed(ctx, await tenantDomainStatus(ctx.env.DB, ctx.tenant.id, domain), domain, field);
}

/** `requireSenderDomain` for a status already read (see `readForAccept`). */
function senderDomainAllowed(ctx: SendContext, status: { owned: boolean; verified: boolean } | undefined, domain: string, field: string): void {
  if (!status?.owned) throw new Refusal(403, "sender_domain_not_allowed", `this key may not send from ${domain}`, field);
  if (ctx.config.requireVerifiedDomains && !status.verified) {
    throw new Refusal(403, "sender_domain_not_verified", `${domain} is not verified yet: publish its DNS records and call POST /v1/domains/${domain}/verify`, field);
  }
}

export interface SendOptions {
  /** Prefix for field names in errors, e.g. `personalizations[2].` or `messages[3].`. */
  fieldPrefix?: string;
  /** Compose and sign but do not record or queue; returns the signed message. */
  dryRun?: boolean;
  /**
   * The dry run's output goes back to an API client (`/tx/v1/send?dry-run=true`): leave out the relay's DKIM
   * signature and open/click tracking, so the answer is no signed mail or working redirect token to reuse.
   */
  inertDryRun?: boolean;
  extraSigners?: DkimSigner[];
  /** Envelope sender the client asked for (MailChannels `envelope_from`); its domain must be the tenant's too. */
  mailFrom?: Mailbox;
  /** Full request path of `mailFrom` for errors; default `${fieldPrefix}mailfrom`. */
  mailFromField?: string;
}

/**
 * Everything `sendRequest` can refuse, checked without signing or writing anything, so a request carrying several
 * messages (MailChannels personalizations) is refused whole rather than half queued.
 */
export async function precheckSend(ctx: SendContext, req: SendRequest, opts: SendOptions = {}): Promise<void> {
  const p = opts.fieldPrefix ?? "";
  await requireSenderDomain(ctx, req.sender.asciiDomain, `${p}from`);
  if (opts.mailFrom) await requireSenderDomain(ctx, opts.mailFrom.asciiDomain, opts.mailFromField ?? `${p}mailfrom`);
  if (req.stream === "broadcast" && req.recipients.length !== 1) {
    throw new Refusal(422, "too_many_recipients", "a broadcast message carries a per-recipient unsubscribe link: send one message per recipient", `${p}to`);
  }
  try {
    composeMessage(req, { messageIdDomain: req.sender.asciiDomain });
  } catch (e) {
    if (e instanceof ComposeError) throw refusalOf({ code: e.code, message: e.message, field: e.field }, p);
    throw e;
  }
  for (const signer of opts.extraSigners ?? []) {
    try {
      await publicKeyRecord(signer.privateKeyPem);
    } catch {
      throw new Refusal(422, "invalid_field", "the DKIM private key is not a usable PKCS#8 RSA or Ed25519 key", `${p}dkim_private_key`);
    }
  }
}

/** Composes, signs and accepts one validated request. */
export async function sendRequest(ctx: SendContext, req: SendRequest, opts: SendOptions & { dryRun: true }): Promise<{ raw: string }>;
export async function sendRequest(ctx: SendContext, req: SendRequest, opts?: SendOptions): Promise<SendOutcome>;
export async function sendRequest(ctx: SendContext, req: SendRequest, opts: SendOptions = {}): Promise<SendOutcome | { raw: string }> {
  const p = opts.fieldPrefix ?? "";
  const fromDomain = req.sender.asciiDomain;
  const recipients = req.recipients.map(envelopeAddress);
  // One round trip for the sender domains and the suppression list (issue 16), before anything is composed.
  const reads = await readForAccept(ctx.env.DB, await ledgerOf(ctx.env, ctx.tenant.id), {
    tenantId: ctx.tenant.id,
    domains: [fromDomain, ...(opts.mailFrom ? [opts.mailFrom.asciiDomain] : [])],
    recipients,
    scope: req.stream,
  });
  senderDomainAllowed(ctx, reads.domains.get(fromDomain.toLowerCase()), fromDomain, `${p}from`);
  if (opts.mailFrom) senderDomainAllowed(ctx, reads.domains.get(opts.mailFrom.asciiDomain.toLowerCase()), opts.mailFrom.asciiDomain, opts.mailFromField ?? `${p}mailfrom`);
  if (req.stream === "broadcast" && recipients.length !== 1) {
    throw new Refusal(422, "too_many_recipients", "a broadcast message carries a per-recipient unsubscribe link: send one message per recipient (the batch endpoint takes 100)", `${p}to`);
  }
  const id = newId();
  const now = new Date();
  // Open/click tracking (issue 11): one HTML body per recipient with its own tokens, rewritten before signing.
  // Never in a client's dry run: its output is not stored, so working tokens (signed redirects) would be free to mint.
  const tracked = opts.dryRun && opts.inertDryRun ? null : await trackedHtmlBodies(ctx.env, { tenantId: ctx.tenant.id, messageId: id, recipientCount: recipients.length, publicBaseUrl: ctx.publicBaseUrl, secret: signingSecret(ctx.env), fieldPrefix: p }, req);
  let composed;
  try {
    composed = composeMessage(tracked ? { ...req, html: tracked[0] } : req, { messageIdDomain: fromDomain, now });
  } catch (e) {
    if (e instanceof ComposeError) throw refusalOf({ code: e.code, message: e.message, field: e.field }, p);
    throw e;
  }
  let outbound;
  /** With tracking: the signed message of each recipient (same Message-ID and Date, own tokens). */
  let perRecipient: string[] | null = null;
  try {
    const prepare = (raw: string, rcpts: string[]) =>
      prepareOutbound(ctx.env, ctx.config.relayHostname, raw, {
        id,
        tenantId: ctx.tenant.id,
        stream: req.stream,
        tags: req.tags,
        fromDomain,
        recipients: rcpts,
        protocol: ctx.protocol,
        ...(ctx.clientName ? { clientName: ctx.clientName } : {}),
        publicBaseUrl: ctx.publicBaseUrl,
        ...(opts.extraSigners ? { extraSigners: opts.extraSigners } : {}),
        // A dry run is not signed: a signature made with the operator's key on unstored output is a free replay.
        ...(opts.dryRun && opts.inertDryRun ? { sign: false } : {}),
        now,
      });
    outbound = await prepare(composed.raw, tracked ? recipients.slice(0, 1) : recipients);
    if (tracked) {
      perRecipient = [outbound.raw];
      for (let i = 1; i < tracked.length; i++) {
        const own = composeMessage({ ...req, html: tracked[i] }, { messageIdDomain: fromDomain, messageId: composed.messageId, now });
        perRecipient.push((await prepare(own.raw, recipients.slice(i, i + 1))).raw);
      }
    }
  } catch (e) {
    if (e instanceof OutboundError) throw new Refusal(422, "invalid_field", e.message, `${p}stream`);
    if (e instanceof DkimSignError) throw new Refusal(422, "invalid_field", `DKIM signing failed: ${e.message}`, `${p}dkim_private_key`);
    if (e instanceof HeaderValueError) throw new Refusal(422, "invalid_field", e.message, `${p}headers`);
    throw e;
  }
  const size = Math.max(...(perRecipient ?? [outbound.raw]).map((r) => new TextEncoder().encode(r).byteLength));
  if (size > ctx.config.maxMessageBytes) throw new Refusal(413, "too_large", `the composed message is ${size} bytes; the limit is ${ctx.config.maxMessageBytes}`, p ? p.replace(/\.$/, "") : undefined);
  if (opts.dryRun) return { raw: outbound.raw };

  const suppressed = reads.suppressed;
  const secret = signingSecret(ctx.env);
  const sendAt = req.send_at && req.send_at.getTime() > Date.now() ? req.send_at.getTime() : undefined;
  const result = await acceptMessage(ctx.env, {
    id,
    tenantId: ctx.tenant.id,
    mailFrom: opts.mailFrom ? envelopeAddress(opts.mailFrom) : envelopeAddress(req.sender),
    headerFrom: req.sender.address,
    subject: req.subject ?? null,
    messageIdHeader: composed.messageId,
    raw: outbound.raw,
    ...(perRecipient ? { rawPerRecipient: perRecipient } : {}),
    recipients,
    stream: req.stream,
    tags: req.tags,
    metadata: req.metadata,
    smtputf8: composed.smtputf8,
    eightBit: composed.eightBit,
    suppressed,
    ...(secret ? { verp: { secret, fromDomain } } : {}),
    ...(sendAt !== undefined ? { sendAt } : {}),
    ...tlsWishes({ tenantRequiresTls: ctx.tenant.requireTls, messageRequiresTls: req.require_tls === true, raw: outbound.raw }),
  });
  return { ...result, status: sendAt !== undefined ? "scheduled" : "accepted", message_id: composed.messageId };
}
