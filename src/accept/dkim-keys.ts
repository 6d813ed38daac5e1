/**
 * DKIM keys from the `DKIM_KEYS` secret: a JSON array of `{ "domain", "selector", "privateKeyPem" }` (PKCS#8
 * PEM, RSA or Ed25519). Several entries for one domain give several signatures (e.g. RSA and Ed25519).
 * A message is signed with the keys of its From domain or, failing that, of the closest parent domain (DMARC
 * relaxed alignment accepts a parent's signature).
 */
import { ConfigError } from "../config";
import type { DkimSigner } from "../mime/dkim";
import { isDomainName } from "../mime/domain-name";

export interface DkimKeyEntry {
  domain: string;
  selector: string;
  privateKeyPem: string;
}

const SELECTOR = /^[a-z0-9](?:[a-z0-9._-]{0,62})$/i;

const cache = new Map<string, DkimKeyEntry[]>();

/** Parses the secret (cached per value); throws ConfigError naming what is wrong. */
export function parseDkimKeys(secret: string | undefined): DkimKeyEntry[] {
  if (!secret || !secret.trim()) return [];
  const hit = cache.get(secret);
  if (hit) return hit;
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    throw new ConfigError("DKIM_KEYS must be a JSON array of {domain, selector, privateKeyPem}");
  }
  if (!Array.isArray(parsed)) throw new ConfigError("DKIM_KEYS must be a JSON array of {domain, selector, privateKeyPem}");
  const keys = parsed.map((e: unknown, i): DkimKeyEntry => {
    const r = e as Record<string, unknown>;
    if (typeof r !== "object" || r === null) throw new ConfigError(`DKIM_KEYS[${i}] must be an object`);
    const { domain, selector, privateKeyPem } = r;
    if (typeof domain !== "string" || !isDomainName(domain)) throw new ConfigError(`DKIM_KEYS[${i}].domain must be a domain name`);
    if (typeof selector !== "string" || !SELECTOR.test(selector)) throw new ConfigError(`DKIM_KEYS[${i}].selector must be a DNS label`);
    if (typeof privateKeyPem !== "string" || !privateKeyPem.includes("BEGIN PRIVATE KEY")) {
      throw new ConfigError(`DKIM_KEYS[${i}].privateKeyPem must be a PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----")`);
    }
    return { domain: domain.toLowerCase(), selector, privateKeyPem: privateKeyPem.replace(/\\n/g, "\n") };
  });
  cache.set(secret, keys);
  return keys;
}

/** Keys for a From domain: its own, or those of the closest parent domain that has any. */
export function keysForDomain(keys: readonly DkimKeyEntry[], fromDomain: string): DkimKeyEntry[] {
  const labels = fromDomain.toLowerCase().split(".");
  for (let i = 0; i < labels.length - 1; i++) {
    const candidate = labels.slice(i).join(".");
    const found = keys.filter((k) => k.domain === candidate);
    if (found.length) return found;
  }
  return [];
}

/** The signers for a From domain. */
export function signersForDomain(keys: readonly DkimKeyEntry[], fromDomain: string): DkimSigner[] {
  return keysForDomain(keys, fromDomain).map((k) => ({ domain: k.domain, selector: k.selector, privateKeyPem: k.privateKeyPem }));
}
