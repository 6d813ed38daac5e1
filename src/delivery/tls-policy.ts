/**
 * TLS policies at delivery (issue 21): the sender's REQUIRETLS wish (RFC 8689) and the recipient domain's MTA-STS
 * policy (RFC 8461). Decides which MX hosts may be tried, how strict the connection's TLS must be, what a TLS
 * failure means (bounce 5.7.10 for REQUIRETLS, defer 4.7.5 for MTA-STS enforce) and what the delivery event says.
 * Pure: the consumer does the I/O. Certificates are verified by the runtime's TLS (the MX host name is the
 * expected server name); a session never counts as TLS unless the handshake, and so the verification, succeeded.
 */
import type { TlsMode } from "../smtp/client";
import type { MxHost } from "./mx";
import { mxMatchesPolicy, type MtaStsLookup } from "./mta-sts";

export interface TlsPolicy {
  /** RFC 8689: no TLS (or no verified certificate) means the message is returned (5.7.10). */
  requireTls: boolean;
  /** RFC 8461 enforce: no TLS means a deferral (4.7.5), and expiry in the end. */
  stsEnforce: boolean;
  /** RFC 8461 testing: deliver anyway, note what would have failed. */
  stsTesting: boolean;
  /** For the delivery event: which policy applied, e.g. "MTA-STS enforce (id 2026a)". */
  note: string;
}

/** The stricter TLS mode a policy asks for: STARTTLS or fail, implicit TLS stays. */
export function strictTls(mode: TlsMode): TlsMode {
  return mode === "implicit" ? "implicit" : "starttls-required";
}

/** Whether connections under this policy must be encrypted. */
export function needsTls(p: TlsPolicy | undefined): boolean {
  return !!p && (p.requireTls || p.stsEnforce);
}

/**
 * Applies the MTA-STS lookup to a domain's MX hosts. In enforce mode only matching hosts remain (none: a
 * `refusal`); `TLS-Required: No` skips the policy (RFC 8689 section 5).
 */
export function mxPolicy(
  mx: MxHost[],
  sts: MtaStsLookup | null,
  wishes: { requireTls: boolean; tlsOptional: boolean },
): { hosts: MxHost[]; policy?: TlsPolicy; refusal?: string } {
  const notes: string[] = [];
  if (wishes.requireTls) notes.push("REQUIRETLS");
  const p = sts?.policy;
  if (wishes.tlsOptional) {
    if (p && p.mode !== "none") notes.push(`MTA-STS ${p.mode} not applied (TLS-Required: No)`);
    return { hosts: mx, ...(notes.length ? { policy: { requireTls: wishes.requireTls, stsEnforce: false, stsTesting: false, note: notes.join("; ") } } : {}) };
  }
  if (!p || p.mode === "none") {
    return { hosts: mx, ...(wishes.requireTls ? { policy: { requireTls: true, stsEnforce: false, stsTesting: false, note: notes.join("; ") } } : {}) };
  }
  const matching = mx.filter((h) => mxMatchesPolicy(h.host, p.mx));
  const label = `MTA-STS ${p.mode} (id ${p.id}, ${sts!.source})`;
  if (p.mode === "enforce") {
    notes.push(label);
    const policy = { requireTls: wishes.requireTls, stsEnforce: true, stsTesting: false, note: notes.join("; ") };
    if (!matching.length) return { hosts: [], policy, refusal: `no MX host (${mx.map((h) => h.host).join(", ")}) matches the MTA-STS policy (mx: ${p.mx.join(", ")})` };
    return { hosts: matching, policy };
  }
  notes.push(matching.length === mx.length ? label : `${label}: would fail, ${mx.filter((h) => !matching.includes(h)).map((h) => h.host).join(", ")} not in the policy`);
  return { hosts: mx, policy: { requireTls: wishes.requireTls, stsEnforce: false, stsTesting: true, note: notes.join("; ") } };
}

/** The outcome of a connection that could not be encrypted (or verified) under a policy. */
export function tlsFailure(p: TlsPolicy, reason: string): { status: "bounced" | "deferred"; enhanced: string; text: string } {
  // RFC 8689 section 4.2.1: a REQUIRETLS message that cannot be sent over TLS is returned, not retried.
  if (p.requireTls) return { status: "bounced", enhanced: "5.7.10", text: `REQUIRETLS: not sent, TLS with a verified certificate is required (${reason}) [${p.note}]` };
  // RFC 8461 section 5: deliver only over TLS with a valid certificate; otherwise the mail waits (and expires).
  return { status: "deferred", enhanced: "4.7.5", text: `MTA-STS: not sent, the policy requires TLS with a valid certificate (${reason}) [${p.note}]` };
}
