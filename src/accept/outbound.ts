/**
 * The last header changes before a message leaves accept, then DKIM signing (once, after every header change):
 * `Received` for the accepting hop, `Feedback-ID`, and for broadcast mail `List-Unsubscribe` (https one-click +
 * mailto) with `List-Unsubscribe-Post`. Also the VERP return-path domain aligned with the From domain.
 */
import { dkimKeysSecret, publicBaseUrlSetting, signingSecret } from "../config";
import { signDkim, type DkimSigner } from "../mime/dkim";
import {
  feedbackIdField,
  insertHeaders,
  listUnsubscribeFields,
  receivedField,
  signUnsubscribeToken,
  unsubscribeMailto,
  unsubscribeUrl,
  type HeaderField,
} from "../mime/deliverability";
import { bounceDomainFor } from "../mime/return-path";
import { parseDkimKeys, signersForDomain } from "./dkim-keys";

export interface OutboundOptions {
  /** Our message id. */
  id: string;
  tenantId: string;
  stream: "transactional" | "broadcast";
  tags: string[];
  /** The From header's domain (ASCII form). */
  fromDomain: string;
  /** Envelope recipients; a broadcast message has exactly one. */
  recipients: string[];
  /** "HTTPS", "HTTP" or an SMTP protocol name from the bridge ("ESMTPSA"...). */
  protocol: string;
  /** HELO name of the client when it came through the SMTP bridge. */
  clientName?: string;
  /** Base URL of this relay for one-click unsubscribe links (https). */
  publicBaseUrl: string | null;
  /** Extra signers given with the request (MailChannels' per-personalization DKIM). */
  extraSigners?: DkimSigner[];
  /**
   * False for dry runs: the relay's own keys do not sign output that is never stored (it could be replayed as
   * the operator's signed mail). The request's own `extraSigners` (its own key) still sign.
   */
  sign?: boolean;
  now?: Date;
}

export interface OutboundMessage {
  raw: string;
  /** Signing domains and selectors used. */
  signatures: { domain: string; selector: string }[];
  unsubscribeUrl: string | null;
}

/** Why a broadcast message could not get its unsubscribe headers. */
export class OutboundError extends Error {
  override name = "OutboundError";
}

/** The https base URL for links in mail: PUBLIC_BASE_URL, or the request's origin when that is https. */
export function publicBaseUrl(env: Env, requestUrl: string): string | null {
  const configured = publicBaseUrlSetting(env);
  if (configured) return configured.replace(/\/+$/, "");
  const origin = new URL(requestUrl).origin;
  return origin.startsWith("https://") ? origin : null;
}

/**
 * Lower-case names of the header fields listed in the h= tag of DKIM signatures already in the message. Adding
 * a field listed there (over-signed while absent) would break that signature, so the relay leaves such fields out.
 */
export function fieldsSignedByExistingSignatures(raw: string): Set<string> {
  const end = raw.search(/\r?\n\r?\n/);
  const head = (end >= 0 ? raw.slice(0, end) : raw).replace(/\r?\n[ \t]+/g, " ");
  const names = new Set<string>();
  for (const line of head.split(/\r?\n/)) {
    if (!/^dkim-signature\s*:/i.test(line)) continue;
    const h = /(?:^|;)\s*h\s*=\s*([^;]*)/i.exec(line.slice(line.indexOf(":") + 1));
    for (const n of h?.[1]?.split(":") ?? []) if (n.trim()) names.add(n.trim().toLowerCase());
  }
  return names;
}

/** Adds the relay's headers and the DKIM signatures. */
export async function prepareOutbound(env: Env, relayHostname: string, raw: string, o: OutboundOptions): Promise<OutboundMessage> {
  const now = o.now ?? new Date();
  const fields: HeaderField[] = [];
  fields.push(
    receivedField({
      by: relayHostname,
      ...(o.clientName ? { fromName: o.clientName } : {}),
      protocol: o.protocol,
      id: o.id,
      ...(o.recipients.length === 1 && /^[\x21-\x7e]+$/.test(o.recipients[0]!) && !/[()<>;\\"]/.test(o.recipients[0]!) ? { for: o.recipients[0]! } : {}),
      date: now,
    }),
  );
  fields.push(feedbackIdField({ tenant: o.tenantId, stream: o.stream, tag: o.tags[0] ?? "", relayId: relayHostname }));
  let link: string | null = null;
  if (o.stream === "broadcast") {
    const secret = signingSecret(env);
    if (!secret || !o.publicBaseUrl) throw new OutboundError("broadcast mail needs SIGNING_SECRET and an https PUBLIC_BASE_URL for its unsubscribe link");
    const token = await signUnsubscribeToken({ sender: o.tenantId, recipient: o.recipients[0]!, messageId: o.id, stream: "broadcast" }, secret);
    link = unsubscribeUrl(`${o.publicBaseUrl}/unsubscribe`, token);
    fields.push(...listUnsubscribeFields({ url: link, mailto: unsubscribeMailto(`unsubscribe@${bounceDomainFor(o.fromDomain)}`, token) }));
  }
  // Received goes first (it is a trace field, RFC 5321 section 4.4); the others below it. Fields that an existing
  // signature covers are not added (trace fields are never signed, so Received always goes in).
  const signedElsewhere = fieldsSignedByExistingSignatures(raw);
  if (o.stream === "broadcast") {
    // Leaving ours out would send broadcast mail without a working one-click unsubscribe (RFC 8058) or without
    // the Feedback-ID complaints are traced by; adding ours would break the client's signature. Refuse instead.
    const covered = ["list-unsubscribe", "list-unsubscribe-post", "feedback-id"].filter((n) => signedElsewhere.has(n));
    if (covered.length) throw new OutboundError(`an existing DKIM signature covers ${covered.join(", ")}; broadcast mail needs the relay's own (sign without them, or send it unsigned)`);
  }
  const withHeaders = insertHeaders(raw, fields.filter((f) => f.name === "Received" || !signedElsewhere.has(f.name.toLowerCase())));
  const ours = o.sign === false ? [] : signersForDomain(parseDkimKeys(dkimKeysSecret(env)), o.fromDomain);
  const signers = [...ours, ...(o.extraSigners ?? [])];
  const signed = signers.length ? await signDkim(withHeaders, signers, { now }) : withHeaders.replace(/\r?\n/g, "\r\n");
  return { raw: signed, signatures: signers.map((s) => ({ domain: s.domain, selector: s.selector })), unsubscribeUrl: link };
}
