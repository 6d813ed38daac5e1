// Secrets are not in wrangler.toml, so `wrangler types` cannot see them; they are declared here.
declare namespace Cloudflare {
  interface Env {
    /** Admin API token (wrangler secret put ADMIN_TOKEN). */
    ADMIN_TOKEN?: string;
    /** Secret for HMAC tokens (return paths, unsubscribe links). */
    SIGNING_SECRET?: string;
    /** DKIM keys: JSON array of {domain, selector, privateKeyPem} (PKCS#8 PEM); see README "DKIM". */
    DKIM_KEYS?: string;
    /** https base URL of this relay for links in mail (one-click unsubscribe); default: the request's origin. */
    PUBLIC_BASE_URL?: string;
  }
}
