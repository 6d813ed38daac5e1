/**
 * The sender's TLS wishes for one message (RFC 8689): the REQUIRETLS request (the JSON API's `require_tls`, the raw
 * endpoint's `X-Require-TLS` header, the bridge's MAIL FROM parameter, a tenant-wide policy) and the
 * `TLS-Required: No` header field, which asks relays to ignore recipient-side policies (MTA-STS) for it.
 * Pure: no Workers imports.
 */

/** RFC 8689 section 5: the header field `TLS-Required: No` (the only value it defines) in the header section. */
export function hasTlsRequiredNo(raw: string): boolean {
  const end = raw.search(/\r?\n\r?\n/);
  const head = end >= 0 ? raw.slice(0, end) : raw;
  return /^TLS-Required[ \t]*:[ \t]*No[ \t]*(?:\r?\n(?![ \t])|$)/im.test(head);
}

export interface TlsWishes {
  /** Deliver only over TLS with a verified certificate, else bounce (5.7.10). */
  requireTls: boolean;
  /** `TLS-Required: No`: recipient-side policies (MTA-STS enforce) are not applied. */
  tlsOptional: boolean;
}

/**
 * Combines the sources. A tenant's policy is a floor that nothing in a message lowers; a REQUIRETLS request takes
 * precedence over `TLS-Required: No` in the same message (RFC 8689 section 4.1 calls the combination contradictory).
 */
export function tlsWishes(opts: { tenantRequiresTls: boolean; messageRequiresTls: boolean; raw: string }): TlsWishes {
  const requireTls = opts.tenantRequiresTls || opts.messageRequiresTls;
  return { requireTls, tlsOptional: !requireTls && hasTlsRequiredNo(opts.raw) };
}
