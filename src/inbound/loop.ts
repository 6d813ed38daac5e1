/**
 * Forwarding loop detection on the header section of an incoming message: too many `Received` hops overall,
 * too many of our own, or our own loop marker for the alias being expanded (the way Postfix and Exim use
 * `Delivered-To`). Pure.
 */

/**
 * RFC 5321 section 6.3: counting `Received` fields detects loops; servers "SHOULD use a large rejection
 * threshold, normally at least 100 Received entries".
 */
export const MAX_RECEIVED_HOPS = 100;
/** Our own `Received` lines a message may carry: alias chains longer than this are loops in practice. */
export const MAX_OWN_RELAY_HOPS = 10;
/** The header we add when forwarding, naming the alias; seeing it again for the same alias is a loop. */
export const LOOP_MARKER_HEADER = "X-Edge-Relay-Loop";

export type LoopCheck = { loop: false; receivedHops: number } | { loop: true; reason: string };

/** The header section of a raw message (latin1 view of the bytes up to the first empty line). */
export function headerSectionOf(raw: Uint8Array | string): string {
  let text: string;
  if (typeof raw === "string") text = raw;
  else {
    // Header fields are ASCII (RFC 5322; RFC 6532 UTF-8 survives a latin1 view for matching purposes).
    let out = "";
    const limit = Math.min(raw.byteLength, 1024 * 1024);
    for (let i = 0; i < limit; i += 8192) out += String.fromCharCode(...raw.subarray(i, Math.min(limit, i + 8192)));
    text = out;
  }
  const m = /\r?\n\r?\n/.exec(text);
  return m ? text.slice(0, m.index) : text;
}

/** Unfolded header fields with the given name (case-insensitive), in order. */
export function headerValues(headerSection: string, name: string): string[] {
  const out: string[] = [];
  const lower = name.toLowerCase();
  let current: { name: string; value: string } | null = null;
  const flush = () => {
    if (current && current.name === lower) out.push(current.value.trim());
  };
  for (const line of headerSection.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && current) {
      current.value += " " + line.trim();
      continue;
    }
    flush();
    const colon = line.indexOf(":");
    current = colon > 0 ? { name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1) } : null;
  }
  flush();
  return out;
}

/** Decides whether forwarding this message to `alias` would loop. */
export function checkForwardingLoop(headerSection: string, alias: string, relayHostname: string): LoopCheck {
  const received = headerValues(headerSection, "received");
  if (received.length > MAX_RECEIVED_HOPS) {
    return { loop: true, reason: `too many hops: ${received.length} Received header fields (limit ${MAX_RECEIVED_HOPS})` };
  }
  const markers = headerValues(headerSection, LOOP_MARKER_HEADER).map((v) => v.toLowerCase());
  if (markers.includes(alias.toLowerCase())) return { loop: true, reason: `the message was already forwarded for ${alias} by this relay` };
  const host = relayHostname.toLowerCase();
  const byUs = new RegExp(`(?:^|\\s)by\\s+${host.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?=[\\s;()]|$)`, "i");
  const own = received.filter((r) => byUs.test(r)).length;
  if (own > MAX_OWN_RELAY_HOPS) return { loop: true, reason: `the message passed through this relay ${own} times (limit ${MAX_OWN_RELAY_HOPS})` };
  return { loop: false, receivedHops: received.length };
}
