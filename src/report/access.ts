import { decodeBase64Url } from "../mime/encoding";
import type { AccessSettings } from "../config";
/**
 * Cloudflare Access in front of the reporting page: validates the `Cf-Access-Jwt-Assertion` JWT (RS256) against
 * the team's published signing keys (https://<team>.cloudflareaccess.com/cdn-cgi/access/certs), the
 * application's audience tag, the issuer and the expiry, as Cloudflare's Access docs prescribe.
 */

export interface AccessIdentity {
  sub: string;
  email: string | null;
}

type Jwk = JsonWebKey & { kid?: string };
export type KeyLoader = (teamDomain: string) => Promise<Jwk[]>;

/** Access rotates keys every 6 weeks and publishes the next one early; an hour's cache is safe. */
const CERTS_CACHE_MS = 3_600_000;
const certsCache = new Map<string, { keys: Jwk[]; at: number }>();

export const fetchAccessKeys: KeyLoader = async (teamDomain) => {
  const cached = certsCache.get(teamDomain);
  if (cached && Date.now() - cached.at < CERTS_CACHE_MS) return cached.keys;
  const res = await fetch(`https://${teamDomain}/cdn-cgi/access/certs`);
  if (!res.ok) throw new Error(`Access certs: HTTP ${res.status}`);
  const body = (await res.json()) as { keys?: Jwk[] };
  const keys = body.keys ?? [];
  certsCache.set(teamDomain, { keys, at: Date.now() });
  return keys;
};


function b64urlJson(s: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(decodeBase64Url(s) ?? new Uint8Array()));
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The identity in a valid Access JWT, or null for anything malformed, unsigned by the team, expired or for another app. */
export async function verifyAccessJwt(
  token: string,
  settings: AccessSettings,
  loadKeys: KeyLoader = fetchAccessKeys,
  nowS = Math.floor(Date.now() / 1000),
): Promise<AccessIdentity | null> {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const [h, p, s] = parts as [string, string, string];
  const header = b64urlJson(h);
  const payload = b64urlJson(p);
  if (!header || !payload || header.alg !== "RS256") return null;
  const keys = await loadKeys(settings.teamDomain);
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) return null;
  const key = await crypto.subtle.importKey("jwk", jwk, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"]);
  const signature = decodeBase64Url(s);
  if (!signature) return null;
  const ok = await crypto.subtle.verify("RSASSA-PKCS1-v1_5", key, signature, new TextEncoder().encode(`${h}.${p}`));
  if (!ok) return null;
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!aud.includes(settings.aud)) return null;
  if (payload.iss !== `https://${settings.teamDomain}`) return null;
  if (typeof payload.exp !== "number" || payload.exp < nowS) return null;
  if (typeof payload.nbf === "number" && payload.nbf > nowS + 60) return null;
  if (typeof payload.sub !== "string") return null;
  return { sub: payload.sub, email: typeof payload.email === "string" ? payload.email : null };
}
