/**
 * Forwarding aliases: a message Email Routing hands the Worker for an alias goes through accept to the alias's
 * destinations, with the envelope sender SRS-rewritten into the alias's domain, our `Received` and loop marker
 * added, DKIM-signed for the alias's domain (when DKIM_KEYS has keys for it), and the usual suppression checks.
 * The same path returns bounces that reach an SRS address to the original sender, with the null sender.
 */
import { acceptMessage } from "../queue/spool";
import { prepareOutbound } from "../accept/outbound";
import { signingSecret } from "../config";
import type { RelayConfig } from "../config";
import { DkimSignError } from "../mime/dkim";
import { HeaderValueError } from "../mime/deliverability";
import type { Alias } from "../store/aliases";
import { newId } from "../store/ids";
import { findSuppressed } from "../store/suppressions";
import { checkForwardingLoop, headerSectionOf, headerValues, LOOP_MARKER_HEADER } from "./loop";
import { readRaw, type InboundEmail } from "./read-raw";
import { srsForward } from "../mime/srs";

export type ForwardResult =
  | { ok: true; messageId: string; recipients: { address: string; status: string }[]; mailFrom: string; note: string | null }
  | { ok: false; reject: string; detail: string };

/** A message we are about to pass on, read and checked. */
export interface CheckedMessage {
  /** CRLF text of the message (UTF-8). */
  text: string;
  headerSection: string;
  sizeBytes: number;
}

/** Reads the message with the size limit, checks for loops (against `loopKey`) and decodes it; or the refusal. */
export async function readForRelay(
  message: InboundEmail,
  config: RelayConfig,
  loopKey: string,
): Promise<{ ok: true; message: CheckedMessage } | { ok: false; reject: string; detail: string }> {
  const limit = config.maxMessageBytes;
  if (message.rawSize > limit) {
    return { ok: false, reject: `5.3.4 Message too big: ${message.rawSize} bytes, the limit for forwarding is ${limit} bytes`, detail: "size limit" };
  }
  const read = await readRaw(message.raw, limit, "refuse");
  if (!read.ok) return { ok: false, reject: `5.3.4 Message too big: more than ${limit} bytes, the limit for forwarding`, detail: "size limit (while reading)" };
  return checkForRelay(read.bytes, config, loopKey);
}

/** Checks bytes already read (within the size limit) for loops (against `loopKey`) and decodes them. */
export function checkForRelay(bytes: Uint8Array, config: RelayConfig, loopKey: string): { ok: true; message: CheckedMessage } | { ok: false; reject: string; detail: string } {
  const headerSection = headerSectionOf(bytes);
  const loop = checkForwardingLoop(headerSection, loopKey, config.relayHostname);
  if (loop.loop) return { ok: false, reject: `5.4.6 Routing loop detected: ${loop.reason}`, detail: loop.reason };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    // accept stores and delivers text; 8-bit bytes in another charset would not survive unchanged.
    return { ok: false, reject: "5.6.0 The message contains 8-bit data that is not UTF-8; this relay forwards 7-bit and UTF-8 mail only", detail: "not UTF-8" };
  }
  if (text.includes("\0")) return { ok: false, reject: "5.6.0 The message contains a NUL character", detail: "NUL" };
  return { ok: true, message: { text: text.replace(/\r?\n/g, "\r\n").replace(/\r(?!\n)/g, "\r\n"), headerSection, sizeBytes: bytes.byteLength } };
}

/** The address in a From field (`Name <a@b>` or `a@b`), or null. */
function addressIn(value: string | undefined): string | null {
  if (!value) return null;
  const angle = /<([^<>\s]+@[^<>\s]+)>/.exec(value);
  if (angle) return angle[1]!;
  const bare = /([^\s<>,;:"]+@[^\s<>,;:"]+)/.exec(value);
  return bare ? bare[1]! : null;
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}

/**
 * The message as we pass it on: `Return-Path` dropped (the final delivery writes it, RFC 5321 section 4.4),
 * a Message-ID added when missing, and the loop marker on top.
 */
function withRelayHeaders(text: string, loopKey: string, messageIdDomain: string): { raw: string; messageIdHeader: string } {
  const split = text.indexOf("\r\n\r\n");
  const head = split >= 0 ? text.slice(0, split) : text.replace(/\r\n$/, "");
  const body = split >= 0 ? text.slice(split + 4) : "";
  const kept: string[] = [];
  let dropping = false;
  for (const line of head.split("\r\n")) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    dropping = /^return-path\s*:/i.test(line);
    if (!dropping) kept.push(line);
  }
  const existing = headerValues(head, "message-id")[0];
  const id = existing ? /<([^<>]+)>/.exec(existing)?.[1] ?? existing.trim() : null;
  const messageIdHeader = id || `${newId()}@${messageIdDomain}`;
  if (!id) kept.push(`Message-ID: <${messageIdHeader}>`);
  return { raw: `${LOOP_MARKER_HEADER}: ${loopKey}\r\n${kept.join("\r\n")}\r\n\r\n${body}`, messageIdHeader };
}

/** Passes a checked message through accept for `tenantId` to `recipients` with envelope sender `mailFrom`. */
async function relay(
  env: Env,
  config: RelayConfig,
  m: CheckedMessage,
  o: { tenantId: string; domain: string; loopKey: string; mailFrom: string; recipients: string[]; tag: string; metadata: Record<string, string> },
): Promise<{ ok: true; messageId: string; recipients: { address: string; status: string }[] } | { ok: false; reject: string; detail: string }> {
  const { raw, messageIdHeader } = withRelayHeaders(m.text, o.loopKey, o.domain);
  const id = newId();
  let outbound;
  try {
    outbound = await prepareOutbound(env, config.relayHostname, raw, {
      id,
      tenantId: o.tenantId,
      stream: "transactional",
      tags: [o.tag],
      fromDomain: o.domain,
      recipients: o.recipients,
      protocol: "ESMTP",
      publicBaseUrl: null,
    });
  } catch (e) {
    if (e instanceof DkimSignError || e instanceof HeaderValueError) return { ok: false, reject: `5.6.0 The message cannot be forwarded: ${e.message}`, detail: e.message };
    throw e;
  }
  const size = new TextEncoder().encode(outbound.raw).byteLength;
  if (size > config.maxMessageBytes) {
    return { ok: false, reject: `5.3.4 Message too big: ${size} bytes with the forwarding headers, the limit is ${config.maxMessageBytes} bytes`, detail: "size limit" };
  }
  const nonAscii = /[^\x00-\x7f]/;
  const headers = m.headerSection;
  const subject = headerValues(headers, "subject")[0] ?? null;
  const result = await acceptMessage(env, {
    id,
    tenantId: o.tenantId,
    mailFrom: o.mailFrom,
    headerFrom: addressIn(headerValues(headers, "from")[0]) ?? (o.mailFrom || `mailer-daemon@${o.domain}`),
    subject: subject && subject.length > 998 ? subject.slice(0, 998) : subject,
    messageIdHeader,
    raw: outbound.raw,
    recipients: o.recipients,
    stream: "transactional",
    tags: [o.tag],
    metadata: o.metadata,
    smtputf8: nonAscii.test(headers) || nonAscii.test(o.mailFrom) || o.recipients.some((r) => nonAscii.test(r)),
    eightBit: nonAscii.test(outbound.raw),
    suppressed: await findSuppressed(env.DB, o.tenantId, o.recipients, "transactional"),
  });
  return { ok: true, messageId: result.id, recipients: result.recipients };
}

/** Forwards a message for `alias` to its destinations. */
export async function forwardToAlias(message: InboundEmail, env: Env, config: RelayConfig, alias: Alias): Promise<ForwardResult> {
  const checked = await readForRelay(message, config, alias.address);
  if (!checked.ok) return checked;
  const domain = domainOf(alias.address);
  const secret = signingSecret(env);
  const sender = message.from.trim().replace(/^<(.*)>$/, "$1");
  // Without a secret there is no SRS: the original envelope sender is kept (SPF may then fail at the destination).
  const mailFrom = sender === "" ? "" : secret ? await srsForward(sender, domain, secret) : sender;
  const r = await relay(env, config, checked.message, {
    tenantId: alias.tenantId,
    domain,
    loopKey: alias.address,
    mailFrom,
    recipients: alias.destinations,
    tag: "forward",
    metadata: { alias: alias.address, original_sender: sender },
  });
  if (!r.ok) return r;
  return { ...r, mailFrom, note: secret ? null : "SRS off: SIGNING_SECRET is not set" };
}

/** Returns a message (already read) that reached an SRS address to the original sender (`to`), with the null envelope sender. */
export async function returnToSender(bytes: Uint8Array, env: Env, config: RelayConfig, o: { tenantId: string; srsAddress: string; to: string }): Promise<ForwardResult> {
  const checked = checkForRelay(bytes, config, o.srsAddress.toLowerCase());
  if (!checked.ok) return checked;
  const r = await relay(env, config, checked.message, {
    tenantId: o.tenantId,
    domain: domainOf(o.srsAddress),
    loopKey: o.srsAddress.toLowerCase(),
    mailFrom: "",
    recipients: [o.to],
    tag: "srs-return",
    metadata: { srs_address: o.srsAddress, original_sender: o.to },
  });
  if (!r.ok) return r;
  return { ...r, mailFrom: "", note: null };
}
