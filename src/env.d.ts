// Secrets are not in wrangler.toml, so `wrangler types` cannot see them; they are declared here.
declare namespace Cloudflare {
  interface Env {
    /** Admin API token (wrangler secret put ADMIN_TOKEN). */
    ADMIN_TOKEN?: string;
    /** Secret for HMAC tokens (return paths, unsubscribe links). */
    SIGNING_SECRET?: string;
  }
}
