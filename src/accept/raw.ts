/**
 * Accept for complete RFC 5322 messages (`POST /v1/messages/raw`, used by migrations and the SMTP bridge):
 * read the body with the size limit enforced while streaming, check it is a message we can relay, fill in
 * missing Message-ID/Date/MIME-Version, drop Bcc and Return-Path, then the same headers, signing, suppression
 * and accept as every other message. Existing DKIM signatures are kept; ours is added.
 */
import { concatBytes } from "../mime/encoding";
import { Refusal } from "./refusal";
import { parseAddress, type Mailbox } from "../mime/address";
import { fromFieldMailbox } from "../mime/address-list";
import { formatRfc5322Date } from "../mime/compose";
import { DkimSignError } from "../mime/dkim";
import { HeaderValueError } from "../mime/deliverability";
import { newId } from "../store/ids";
import { findSuppressed } from "../store/suppressions";
import { acceptMessage } from "../queue/spool";
import { fieldsSignedByExistingSignatures, OutboundError, prepareOutbound } from "./outbound";
import { signingSecret } from "../config";
import { envelopeAddress, requireSenderDomain, type SendContext, type SendOutcome } from "./send";
import { tlsWishes } from "../mime/tls-required";
import { toSevenBitBody } from "../mime/seven-bit";

/** RFC 5322 section 2.1.1: a line is at most 998 characters excluding CRLF. */
const MAX_LINE_OCTETS = 998;
/** Header sections larger than this are not mail anyone means to send; bounds the header parser's work. */
const MAX_HEADER_SECTION_BYTES = 256 * 1024;

/**
 * Reads a request body, refusing with 413 as soon as more than `maxBytes` have arrived, and with 400
 * (`invalid_field`, field `body`) when the body breaks off: the read fails (workerd's "Network connection lost"
 * when the client goes away mid-upload) or the stream ends before the declared Content-Length.
 */
/**
 * How much of an oversize body is read and thrown away before answering 413. A client that is still uploading
 * when the server answers and closes sees a reset instead of the answer (the SMTP bridge would then report a
 * temporary failure instead of "too large"); draining a little lets it read the 413. Bounded, so a huge
 * upload costs at most this much.
 */
const OVERSIZE_DRAIN_BYTES = 1024 * 1024;

async function drainBriefly(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  let drained = 0;
  try {
    while (drained <= OVERSIZE_DRAIN_BYTES) {
      const { done, value } = await reader.read();
      if (done) return;
      drained += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client went away: nobody is waiting for the 413 anyway.
  }
}

export async function readBodyLimited(req: Request, maxBytes: number): Promise<Uint8Array> {
  const lengthHeader = req.headers.get("content-length");
  const declared = lengthHeader !== null && /^\d{1,15}$/.test(lengthHeader.trim()) ? Number(lengthHeader.trim()) : null;
  if (declared !== null && declared > maxBytes) throw new Refusal(413, "too_large", `the body is larger than ${maxBytes} bytes`);
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch {
      // The client went away or sent a broken body: its fault, not ours, and nobody may be listening.
      throw new Refusal(400, "invalid_field", "the request body could not be read to the end", "body");
    }
    const { done, value } = chunk;
    if (done) {
      // RFC 9112 sections 6.3 and 8: a body shorter than its Content-Length is an incomplete message, not a short one.
      // (Some paths report a dropped upload as an early end instead of an error.) A Content-Encoding changes
      // the length the runtime hands us, so the check applies to identity bodies only.
      const encoding = req.headers.get("content-encoding");
      if (declared !== null && total < declared && (encoding === null || /^\s*identity\s*$/i.test(encoding))) {
        throw new Refusal(400, "invalid_field", `the request body ended after ${total} of the ${declared} bytes its Content-Length declares`, "body");
      }
      break;
    }
    total += value.byteLength;
    if (total > maxBytes) {
      await drainBriefly(reader);
      throw new Refusal(413, "too_large", `the body is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return concatBytes(chunks, total);
}

export interface RawEnvelope {
  /** MAIL FROM as the client gave it (X-Envelope-From); defaults to the From header's address. */
  from?: string;
  /** RCPT TO addresses (X-Envelope-To). */
  to: string[];
  stream: "transactional" | "broadcast";
  tags: string[];
  /** RFC 8689 REQUIRETLS for this message (the `X-Require-TLS: yes` request header; the bridge's MAIL FROM parameter). */
  requireTls?: boolean;
}

interface HeaderField {
  name: string;
  /** The field's raw lines joined with CRLF, without the final CRLF. */
  raw: string;
  /** Unfolded value, leading whitespace trimmed. */
  value: string;
}

/** Splits the header section into fields; throws a Refusal for anything that is not a header field. */
function parseHeaderSection(section: string): HeaderField[] {
  const fields: HeaderField[] = [];
  const lines = section.split("\r\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith(" ") || line.startsWith("\t")) {
      const last = fields[fields.length - 1];
      if (!last) throw new Refusal(422, "invalid_field", "the message starts with a continuation line", "body");
      last.raw += "\r\n" + line;
      last.value += " " + line.trim();
      continue;
    }
    const m = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:(.*)$/.exec(line);
    if (!m) throw new Refusal(422, "invalid_field", `header line ${i + 1} is not a header field (name: value)`, "body");
    fields.push({ name: m[1]!, raw: line, value: m[2]!.trim() });
  }
  return fields;
}

/** Parses the envelope recipients; `to[i]` names the offending one. */
export function parseEnvelopeRecipients(list: string[], max: number): Mailbox[] {
  if (list.length === 0) throw new Refusal(400, "missing_field", "at least one recipient is required (X-Envelope-To)", "to");
  if (list.length > max) throw new Refusal(422, "too_many_recipients", `at most ${max} recipients`, "to");
  const seen = new Set<string>();
  const out: Mailbox[] = [];
  list.forEach((a, i) => {
    const r = parseAddress(a.trim().replace(/^<(.*)>$/, "$1"));
    if (!r.ok) throw new Refusal(422, "invalid_recipient", r.error.message, `to[${i}]`);
    const key = envelopeAddress(r.value).toLowerCase();
    if (!seen.has(key)) {
      seen.add(key);
      out.push(r.value);
    }
  });
  return out;
}

/** Accepts a raw message for the given envelope. */
export async function acceptRaw(ctx: SendContext, bytes: Uint8Array, envelope: RawEnvelope): Promise<SendOutcome> {
  if (bytes.byteLength === 0) throw new Refusal(400, "missing_field", "the body must be a complete RFC 5322 message", "body");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new Refusal(400, "invalid_utf8", "the message is not valid UTF-8 (send 8-bit text as UTF-8, or encode it with quoted-printable/base64)", "body");
  }
  if (text.includes("\0")) throw new Refusal(400, "invalid_field", "the message contains a NUL character", "body");
  text = text.replace(/\r?\n/g, "\r\n").replace(/\r(?!\n)/g, "\r\n");
  const split = text.indexOf("\r\n\r\n");
  const headerSection = split >= 0 ? text.slice(0, split) : text.replace(/\r\n$/, "");
  const bodyPart = split >= 0 ? text.slice(split + 4) : "";
  if (headerSection.length > MAX_HEADER_SECTION_BYTES) throw new Refusal(413, "too_large", "the header section is too large", "body");
  for (const line of text.split("\r\n")) {
    if (line.length > MAX_LINE_OCTETS && new TextEncoder().encode(line).byteLength > MAX_LINE_OCTETS) {
      throw new Refusal(422, "invalid_field", "the message has a line longer than 998 octets (RFC 5322 section 2.1.1)", "body");
    }
  }
  const fields = parseHeaderSection(headerSection);
  const named = (n: string) => fields.filter((f) => f.name.toLowerCase() === n);

  const froms = named("from");
  if (froms.length !== 1) throw new Refusal(422, "invalid_sender", "the message must have exactly one From field", "from");
  // RFC 5322 address-list grammar, exactly one mailbox, no fallback: what we check is what the recipient sees.
  const fromResult = fromFieldMailbox(froms[0]!.value);
  if (!fromResult.ok) throw new Refusal(422, "invalid_sender", `From: ${fromResult.error}`, "from");
  const from = fromResult.value;
  await requireSenderDomain(ctx, from.asciiDomain, "from");
  // Sender (RFC 5322 section 3.6.2) is shown by clients as "on behalf of": it must be the tenant's too.
  const senders = named("sender");
  if (senders.length > 1) throw new Refusal(422, "invalid_sender", "the message must have at most one Sender field", "sender");
  if (senders.length === 1) {
    const sender = fromFieldMailbox(senders[0]!.value);
    if (!sender.ok) throw new Refusal(422, "invalid_sender", `Sender: ${sender.error}`, "sender");
    await requireSenderDomain(ctx, sender.value.asciiDomain, "sender");
  }

  let mailFrom: Mailbox = from;
  // X-Envelope-From present but empty (or "<>") is the null sender, MAIL FROM:<> (RFC 5321 section 4.5.5).
  const nullSender = envelope.from !== undefined && /^\s*(<\s*>)?\s*$/.test(envelope.from);
  if (envelope.from !== undefined && !nullSender) {
    const r = parseAddress(envelope.from.trim().replace(/^<(.*)>$/, "$1"));
    if (!r.ok) throw new Refusal(422, "invalid_sender", `X-Envelope-From: ${r.error.message}`, "envelope_from");
    mailFrom = r.value;
    await requireSenderDomain(ctx, mailFrom.asciiDomain, "envelope_from");
  }
  const rcpts = parseEnvelopeRecipients(envelope.to, ctx.config.maxRecipients);
  const recipients = rcpts.map(envelopeAddress);
  if (envelope.stream === "broadcast" && recipients.length !== 1) {
    throw new Refusal(422, "too_many_recipients", "a broadcast message carries a per-recipient unsubscribe link: send one message per recipient", "to");
  }

  // Bcc must not travel (RFC 5322 section 3.6.3); Return-Path is written by the final delivery (RFC 5321 section 4.4).
  let kept = fields.filter((f) => !["bcc", "return-path"].includes(f.name.toLowerCase()));
  const fromDomain = from.asciiDomain;
  let messageIdHeader = named("message-id")[0]?.value.replace(/^<(.*)>$/, "$1") ?? null;
  const added: string[] = [];
  // A missing field that an existing signature over-signs stays missing: adding it would break that signature.
  const signed = fieldsSignedByExistingSignatures(text);
  if (!messageIdHeader) {
    messageIdHeader = `${newId()}@${fromDomain}`;
    if (!signed.has("message-id")) added.push(`Message-ID: <${messageIdHeader}>`);
  }
  if (!named("date").length && !signed.has("date")) added.push(`Date: ${formatRfc5322Date(new Date())}`);
  if (!named("mime-version").length && !signed.has("mime-version")) added.push("MIME-Version: 1.0");
  kept = [...kept, ...added.map((raw) => ({ name: raw.slice(0, raw.indexOf(":")), raw, value: "" }))];
  let raw = kept.map((f) => f.raw).join("\r\n") + "\r\n\r\n" + bodyPart;
  const nonAscii = /[^\x00-\x7f]/;
  const smtputf8 = rcpts.some((m) => m.utf8) || mailFrom.utf8 || nonAscii.test(headerSection);
  // 8-bit safety (issue 21): unless the message needs SMTPUTF8 anyway (whose servers take 8-bit), an 8-bit body
  // becomes quoted-printable/base64 before we sign, so it can go to a server without 8BITMIME with every signature
  // valid. A body the sender signed already stays as it is (converting would break that signature); at delivery
  // it then needs 8BITMIME and is refused (5.6.3) rather than sent unconverted.
  if (!smtputf8 && !named("dkim-signature").length) raw = toSevenBitBody(raw)?.raw ?? raw;

  const id = newId();
  let outbound;
  try {
    outbound = await prepareOutbound(ctx.env, ctx.config.relayHostname, raw, {
      id,
      tenantId: ctx.tenant.id,
      stream: envelope.stream,
      tags: envelope.tags,
      fromDomain,
      recipients,
      protocol: ctx.protocol,
      ...(ctx.clientName ? { clientName: ctx.clientName } : {}),
      publicBaseUrl: ctx.publicBaseUrl,
    });
  } catch (e) {
    if (e instanceof OutboundError) throw new Refusal(422, "invalid_field", e.message, "stream");
    if (e instanceof DkimSignError || e instanceof HeaderValueError) throw new Refusal(422, "invalid_field", e.message, "body");
    throw e;
  }
  const size = new TextEncoder().encode(outbound.raw).byteLength;
  if (size > ctx.config.maxMessageBytes) throw new Refusal(413, "too_large", `the message is ${size} bytes with our headers; the limit is ${ctx.config.maxMessageBytes}`);

  const subject = named("subject")[0]?.value ?? null;
  const suppressed = await findSuppressed(ctx.env.DB, ctx.tenant.id, recipients, envelope.stream);
  const secret = signingSecret(ctx.env);
  const result = await acceptMessage(ctx.env, {
    id,
    tenantId: ctx.tenant.id,
    mailFrom: nullSender ? "" : envelopeAddress(mailFrom),
    headerFrom: from.address,
    subject: subject && subject.length > 998 ? subject.slice(0, 998) : subject,
    messageIdHeader,
    raw: outbound.raw,
    recipients,
    stream: envelope.stream,
    tags: envelope.tags,
    smtputf8,
    eightBit: nonAscii.test(outbound.raw),
    suppressed,
    ...(secret ? { verp: { secret, fromDomain } } : {}),
    ...tlsWishes({ tenantRequiresTls: ctx.tenant.requireTls, messageRequiresTls: envelope.requireTls === true, raw: outbound.raw }),
  });
  return { ...result, status: "accepted", message_id: messageIdHeader };
}
