// Secrets are not in wrangler.toml, so `wrangler types` cannot see them; they are declared here, on both the
// global `Env` (what the code uses) and `Cloudflare.Env` (what `cloudflare:workers` exports).
interface EdgeRelaySecrets {
  /** Admin API token (wrangler secret put ADMIN_TOKEN). */
  ADMIN_TOKEN?: string;
  /** Secret for HMAC tokens (return paths, unsubscribe links); at least 16 characters. */
  SIGNING_SECRET?: string;
  /** HMAC key for redaction mode "hash" (issue 21); at least 16 characters. */
  REDACTION_HASH_KEY?: string;
  /** DKIM keys: JSON array of {domain, selector, privateKeyPem} (PKCS#8 PEM); see docs/sending.md "DKIM". */
  DKIM_KEYS?: string;
  /** https base URL of this relay for links in mail (one-click unsubscribe); default: the request's origin. */
  PUBLIC_BASE_URL?: string;
  /** https base URL of the open/click tracking links (a tracking domain routed to this Worker); default PUBLIC_BASE_URL. */
  TRACKING_BASE_URL?: string;
  /** SPF include(s) of the upstream relay, comma-separated (e.g. "amazonses.com"), for the records we suggest. */
  SPF_INCLUDE?: string;
  /** Feedback-loop sources whose authenticated reports may suppress recipients, comma-separated domains (issue 15). */
  FEEDBACK_LOOP_SOURCES?: string;
  /** authserv-id of the Authentication-Results header trusted on inbound reports; default mx.cloudflare.net. */
  INBOUND_AUTHSERV_ID?: string;
  /** Non-public destinations (CIDRs, comma-separated) the relay may connect or post to; default none (issue 15). */
  ALLOW_PRIVATE_DESTINATIONS?: string;
  /** "false" lets tenants send from domains not yet verified with POST /v1/domains/:d/verify; default "true". */
  REQUIRE_VERIFIED_DOMAINS?: string;
}
interface Env extends EdgeRelaySecrets {}
declare namespace Cloudflare {
  interface Env extends EdgeRelaySecrets {}
}
