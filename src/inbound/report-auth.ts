/**
 * Whether a report that reached the bounce domain (not a signed VERP return path) may change anything.
 *
 * Anyone can mail `*@bounces.<domain>`, so the report's own claims (a Message-ID, an address) prove nothing.
 * Two things do:
 * - a returned original whose DKIM-Signature was made by this relay (one of DKIM_KEYS) and whose header hash
 *   still verifies: the report then speaks for the message with that signed Message-ID and signed From domain
 *   (so a tenant cannot reuse another tenant's Message-ID: its own signed From differs), and only for
 *   recipients of it, of the tenant whose bounce domain the report came to;
 * - a feedback-loop source the operator listed in FEEDBACK_LOOP_SOURCES, when the report's From is at that
 *   source and the topmost Authentication-Results header, written by INBOUND_AUTHSERV_ID (Cloudflare Email
 *   Routing's MX), says DKIM or DMARC passed for that domain.
 * A signed VERP return path (the address the report came to, or one quoted in it) is handled by the caller.
 *
 * Pure: works on the report's octets (one char per byte) and the configuration.
 */
import { verifyOwnHeaderSignature, type DkimSigner } from "../mime/dkim";

/** Why a report may change state, when it may. */
export type ReportAuthentication =
  | { kind: "dkim"; signingDomain: string; fromDomain: string; messageIdHeader: string }
  | { kind: "feedback-loop"; source: string }
  | { kind: "none" };

export interface FeedbackLoopConfig {
  /** Domains whose feedback reports are trusted once authenticated (FEEDBACK_LOOP_SOURCES). */
  sources: string[];
  /** authserv-id of the Authentication-Results header we trust (INBOUND_AUTHSERV_ID). */
  authservId: string;
}

/** Header blocks at most this long are looked at; a returned header section is far smaller. */
const MAX_RETURNED_HEADER_OCTETS = 64 * 1024;
/** At most this many DKIM-Signature fields are tried per report (each costs a signing operation). */
const MAX_SIGNATURE_BLOCKS = 8;

function under(domain: string, parent: string): boolean {
  const d = domain.toLowerCase().replace(/\.$/, "");
  const p = parent.toLowerCase().replace(/\.$/, "");
  return d === p || d.endsWith(`.${p}`);
}

/**
 * The header blocks in a report that carry a DKIM-Signature: from the blank line before it to the blank line
 * after it (a message/rfc822 or text/rfc822-headers part holds the original's headers as lines of the report).
 */
export function returnedHeaderBlocks(octets: string): string[] {
  const text = octets.replace(/\r?\n/g, "\n");
  const blocks: string[] = [];
  const re = /^DKIM-Signature[ \t]*:/gim;
  let m: RegExpExecArray | null;
  let lastEnd = -1;
  while ((m = re.exec(text)) && blocks.length < MAX_SIGNATURE_BLOCKS) {
    if (m.index < lastEnd) continue;
    const start = Math.max(text.lastIndexOf("\n\n", m.index) + 2, 0);
    let end = text.indexOf("\n\n", m.index);
    if (end < 0) end = text.length;
    lastEnd = end;
    if (end - start > MAX_RETURNED_HEADER_OCTETS) continue;
    blocks.push(text.slice(start, end).replace(/\n/g, "\r\n") + "\r\n");
  }
  return blocks;
}

function domainOfMailboxField(value: string): string | null {
  const m = /<([^<>]*)>\s*$/.exec(value) ?? /([^\s<>(),;:]+@[^\s<>(),;:]+)/.exec(value);
  const address = m?.[1] ?? "";
  const at = address.lastIndexOf("@");
  return at > 0 ? address.slice(at + 1).toLowerCase() : null;
}

/** A returned original signed by this relay, whose header hash verifies. */
export async function dkimAuthenticatedOriginal(octets: string, signers: readonly DkimSigner[]): Promise<ReportAuthentication | null> {
  if (!signers.length) return null;
  for (const block of returnedHeaderBlocks(octets)) {
    const v = await verifyOwnHeaderSignature(block, signers);
    if (!v) continue;
    const from = v.signedFields.find((f) => f.name === "from");
    const messageId = v.signedFields.find((f) => f.name === "message-id");
    const fromDomain = from ? domainOfMailboxField(from.value) : null;
    const id = messageId ? /<([^<>\s]+)>/.exec(messageId.value)?.[1] : undefined;
    if (!fromDomain || !id) continue;
    return { kind: "dkim", signingDomain: v.domain, fromDomain, messageIdHeader: id };
  }
  return null;
}

/** The report's top-level header fields (name lower-cased, value unfolded), in order. */
function topHeaders(octets: string): { name: string; value: string }[] {
  const text = octets.replace(/\r?\n/g, "\n");
  const end = text.indexOf("\n\n");
  const head = end >= 0 ? text.slice(0, end) : text;
  const out: { name: string; value: string }[] = [];
  for (const line of head.split("\n")) {
    const last = out[out.length - 1];
    if (/^[ \t]/.test(line) && last) last.value += " " + line.trim();
    else {
      const i = line.indexOf(":");
      if (i > 0) out.push({ name: line.slice(0, i).trim().toLowerCase(), value: line.slice(i + 1).trim() });
    }
  }
  return out;
}

/**
 * A configured feedback-loop source this report authentically comes from: its From is at the source, and the
 * topmost Authentication-Results field (RFC 8601 section 5: the receiving MTA adds its own above the others)
 * is our MX's and says dkim=pass with header.d under the source, or dmarc=pass with header.from under it.
 */
export function feedbackLoopSource(octets: string, config: FeedbackLoopConfig): ReportAuthentication | null {
  if (!config.sources.length) return null;
  const headers = topHeaders(octets);
  const fromField = headers.find((h) => h.name === "from");
  const fromDomain = fromField ? domainOfMailboxField(fromField.value) : null;
  if (!fromDomain) return null;
  const source = config.sources.find((s) => under(fromDomain, s));
  if (!source) return null;
  const ar = headers.find((h) => h.name === "authentication-results");
  if (!ar) return null;
  const [servId = "", ...results] = ar.value.replace(/\([^()]*\)/g, " ").split(";");
  if (servId.trim().split(/\s+/)[0]?.toLowerCase() !== config.authservId.toLowerCase()) return null;
  for (const r of results) {
    const method = /^\s*(dkim|dmarc)\s*=\s*(\w+)/i.exec(r);
    if (!method || method[2]!.toLowerCase() !== "pass") continue;
    const prop = method[1]!.toLowerCase() === "dkim" ? /header\.[di]\s*=\s*@?([^\s;]+)/i.exec(r) : /header\.from\s*=\s*([^\s;]+)/i.exec(r);
    const domain = prop?.[1]?.replace(/^.*@/, "");
    if (domain && under(domain, source) && under(fromDomain, source)) return { kind: "feedback-loop", source };
  }
  return null;
}

/** One char per byte (code points 0-255): DKIM canonicalization works on octets, whatever the charset. */
export function bytesToOctets(bytes: Uint8Array): string {
  let out = "";
  const CHUNK = 0x2000;
  for (let i = 0; i < bytes.length; i += CHUNK) out += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + CHUNK)));
  return out;
}
