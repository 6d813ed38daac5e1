/**
 * DKIM signing: RFC 6376 with rsa-sha256 and RFC 8463 ed25519-sha256, on Web Crypto only, so the same module
 * runs in the Worker (at accept, after the last header change) and in plain Node (tests, outside tools).
 *
 * Line endings: the signed message is returned with CRLF line endings (the SMTP wire form), because that is the
 * form the signature covers; bare LF in the input is treated as CRLF. Dot-stuffing is the SMTP client's job.
 *
 * Pure: no Workers imports, no I/O; private keys are imported once per PEM and the CryptoKey is cached.
 */
import { encodeBase64 } from "./encoding";
import { constantTimeEqual } from "./hmac";

export type DkimAlgorithm = "rsa-sha256" | "ed25519-sha256";
export type DkimCanonicalization = "relaxed/relaxed" | "relaxed/simple" | "simple/relaxed" | "simple/simple";

/** One signature to add: a signing domain, a selector and its private key. */
export interface DkimSigner {
  /** Signing domain (d=). */
  domain: string;
  /** Selector (s=); the public key lives at `<selector>._domainkey.<domain>`. */
  selector: string;
  /** PKCS#8 PEM ("BEGIN PRIVATE KEY"), RSA (2048 bits or more recommended) or Ed25519. */
  privateKeyPem: string;
  /** Inferred from the key when omitted. */
  algorithm?: DkimAlgorithm;
  /** header/body canonicalization (c=); default "relaxed/relaxed". */
  canonicalization?: DkimCanonicalization;
  /** Header fields to sign, every instance present; default {@link DEFAULT_SIGNED_HEADERS}. */
  headers?: readonly string[];
  /**
   * Fields listed once more than they occur in h=, so a field added later (or added where absent) breaks the
   * signature (RFC 6376 section 8.15). Only names that are also in `headers` count.
   * Default {@link DEFAULT_OVERSIGNED_HEADERS}.
   */
  oversignHeaders?: readonly string[];
  /** Adds x= this many seconds after t=. */
  expireSeconds?: number;
  /** Agent or user identifier (i=), must be the signing domain or a subdomain of it. */
  identity?: string;
}

export interface SignDkimOptions {
  /** Signing time for t= (default: now). */
  now?: Date;
}

/** Thrown for unusable signer configuration or a message DKIM cannot sign (no From field). */
export class DkimSignError extends Error {
  override name = "DkimSignError";
}

/** The fields signed by default (RFC 6376 section 5.4.1 recommendations plus the bulk-sender headers). */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = [
  "from",
  "sender",
  "reply-to",
  "subject",
  "date",
  "message-id",
  "to",
  "cc",
  "mime-version",
  "content-type",
  "content-transfer-encoding",
  "content-disposition",
  "in-reply-to",
  "references",
  "list-id",
  "list-unsubscribe",
  "list-unsubscribe-post",
  "feedback-id",
];

/** Signed fields that are not over-signed: a second copy of these does not change what a reader sees. */
const NOT_OVERSIGNED = new Set(["content-disposition", "in-reply-to", "references", "list-id"]);

/**
 * The fields over-signed by default: those whose addition or duplication changes what a reader sees (Sender
 * among them: clients show it as "on behalf of", so an inserted Sender must break the signature).
 */
export const DEFAULT_OVERSIGNED_HEADERS: readonly string[] = DEFAULT_SIGNED_HEADERS.filter((h) => !NOT_OVERSIGNED.has(h));

/**
 * Signs a message with one DKIM-Signature per signer, prepended in signer order.
 * A string is treated as Unicode text (hashed as UTF-8) and a string comes back; bytes are treated as octets
 * (any 8-bit content survives unchanged) and bytes come back. Either way the result uses CRLF line endings.
 * Existing DKIM-Signature fields are kept and not signed, so they stay valid.
 */
export async function signDkim(raw: string, signers: readonly DkimSigner[], options?: SignDkimOptions): Promise<string>;
export async function signDkim(
  raw: Uint8Array,
  signers: readonly DkimSigner[],
  options?: SignDkimOptions,
): Promise<Uint8Array>;
export async function signDkim(
  raw: string | Uint8Array,
  signers: readonly DkimSigner[],
  options: SignDkimOptions = {},
): Promise<string | Uint8Array> {
  const isText = typeof raw === "string";
  const encode = isText ? encodeUtf8 : encodeOctets;
  const text = normalizeLineEndings(isText ? raw : decodeOctets(raw));
  const headersSigned = await dkimSignatureHeaders(text, encode, signers, options.now ?? new Date());
  const signed = headersSigned.map((h) => h + "\r\n").join("") + text;
  return isText ? signed : encodeOctets(signed);
}

/**
 * Only the DKIM-Signature fields (each ending in CRLF) for a message, without copying the message, for callers
 * that stream or store the body separately. Prepend them to the CRLF form of the same message.
 */
export async function dkimSignatureFields(
  raw: string | Uint8Array,
  signers: readonly DkimSigner[],
  options: SignDkimOptions = {},
): Promise<string> {
  const isText = typeof raw === "string";
  const text = normalizeLineEndings(isText ? raw : decodeOctets(raw));
  const fields = await dkimSignatureHeaders(text, isText ? encodeUtf8 : encodeOctets, signers, options.now ?? new Date());
  return fields.map((h) => h + "\r\n").join("");
}

/**
 * The DNS TXT value to publish at `<selector>._domainkey.<domain>` for a PKCS#8 private key:
 * `v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>` or `v=DKIM1; k=ed25519; p=<32-byte key>` (RFC 8463 section 4.2).
 */
export async function publicKeyRecord(privateKeyPem: string): Promise<string> {
  const der = pemToDer(privateKeyPem);
  const algorithm = algorithmOfKey(der);
  if (algorithm === "rsa-sha256") {
    const params = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    const key = await crypto.subtle.importKey("pkcs8", der, params, true, ["sign"]);
    const jwk = await exportJwk(key);
    const pub = await crypto.subtle.importKey("jwk", { kty: "RSA", n: jwk.n, e: jwk.e }, params, true, ["verify"]);
    const spki = await crypto.subtle.exportKey("spki", pub);
    if (!(spki instanceof ArrayBuffer)) throw new DkimSignError("could not export the RSA public key");
    return `v=DKIM1; k=rsa; p=${encodeBase64(new Uint8Array(spki))}`;
  }
  const key = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await exportJwk(key);
  if (typeof jwk.x !== "string") throw new DkimSignError("Ed25519 key has no public part");
  return `v=DKIM1; k=ed25519; p=${encodeBase64(base64UrlToBytes(jwk.x))}`;
}

async function exportJwk(key: CryptoKey): Promise<JsonWebKey> {
  const jwk = await crypto.subtle.exportKey("jwk", key);
  if (jwk instanceof ArrayBuffer) throw new DkimSignError("could not export the DKIM key as JWK");
  return jwk;
}

/** The algorithm a PKCS#8 PEM key signs with. */
export function dkimAlgorithmOf(privateKeyPem: string): DkimAlgorithm {
  return algorithmOfKey(pemToDer(privateKeyPem));
}

interface HeaderField {
  /** Lower-case field name. */
  name: string;
  /** The whole field as it appears, continuation lines included, without the final CRLF. */
  raw: string;
}

type Encode = (s: string) => Uint8Array;

const DOMAIN_PATTERN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/i;
const SELECTOR_PATTERN = DOMAIN_PATTERN;
// RFC 5322 section 3.6.8: field names are printable ASCII except colon.
const FIELD_NAME_PATTERN = /^[\x21-\x39\x3b-\x7e]+$/;
/** Folded DKIM-Signature lines stay under the RFC 5322 section 2.1.1 recommendation of 78 characters. */
const FOLD_WIDTH = 76;

async function dkimSignatureHeaders(
  text: string,
  encode: Encode,
  signers: readonly DkimSigner[],
  now: Date,
): Promise<string[]> {
  const { headerBlock, body } = splitMessage(text);
  const fields = parseHeaderFields(headerBlock);
  if (!fields.some((f) => f.name === "from")) {
    throw new DkimSignError("message has no From field; DKIM requires From to be signed (RFC 6376 section 5.4)");
  }
  const bodyHashes = new Map<"simple" | "relaxed", Promise<string>>();
  const bodyHash = (mode: "simple" | "relaxed"): Promise<string> => {
    let hash = bodyHashes.get(mode);
    if (!hash) {
      const canon = mode === "relaxed" ? canonicalizeBodyRelaxed(body) : canonicalizeBodySimple(body);
      hash = sha256(encode(canon)).then(encodeBase64);
      bodyHashes.set(mode, hash);
    }
    return hash;
  };
  const time = Math.floor(now.getTime() / 1000);
  return Promise.all(signers.map((signer) => signOne(fields, encode, signer, time, bodyHash)));
}

async function signOne(
  fields: readonly HeaderField[],
  encode: Encode,
  signer: DkimSigner,
  time: number,
  bodyHash: (mode: "simple" | "relaxed") => Promise<string>,
): Promise<string> {
  const domain = signer.domain.toLowerCase();
  if (!DOMAIN_PATTERN.test(domain)) throw new DkimSignError(`invalid DKIM signing domain: ${signer.domain}`);
  if (!SELECTOR_PATTERN.test(signer.selector)) throw new DkimSignError(`invalid DKIM selector: ${signer.selector}`);
  const canonicalization = signer.canonicalization ?? "relaxed/relaxed";
  const [headerCanon, bodyCanon] = canonicalization.split("/");
  if (!isCanonMode(headerCanon) || !isCanonMode(bodyCanon)) {
    throw new DkimSignError(`invalid DKIM canonicalization: ${String(canonicalization)}`);
  }
  const key = await signingKey(signer.privateKeyPem, signer.algorithm);

  const { names, canonical } = selectHeaders(
    fields,
    signer.headers ?? DEFAULT_SIGNED_HEADERS,
    signer.oversignHeaders ?? DEFAULT_OVERSIGNED_HEADERS,
    headerCanon,
  );
  const tags: string[] = ["v=1", `a=${key.algorithm}`, `c=${headerCanon}/${bodyCanon}`, `d=${domain}`, `s=${signer.selector}`];
  if (signer.identity !== undefined) tags.push(`i=${identityTag(signer.identity, domain)}`);
  tags.push(`t=${time}`);
  if (signer.expireSeconds !== undefined) {
    if (!Number.isInteger(signer.expireSeconds) || signer.expireSeconds <= 0) {
      throw new DkimSignError(`expireSeconds must be a positive integer, got ${signer.expireSeconds}`);
    }
    tags.push(`x=${time + signer.expireSeconds}`);
  }
  tags.push(`h=${names.join(":")}`, `bh=${await bodyHash(bodyCanon)}`);

  const unsigned = foldSignatureField(tags);
  const sigField = headerCanon === "relaxed" ? canonicalizeHeaderRelaxed(unsigned) : unsigned;
  const data = encode(canonical + sigField);
  const signature = encodeBase64(await key.sign(data));
  return unsigned + foldBase64(signature);
}

function isCanonMode(mode: string | undefined): mode is "simple" | "relaxed" {
  return mode === "simple" || mode === "relaxed";
}

function identityTag(identity: string, domain: string): string {
  const at = identity.lastIndexOf("@");
  const idDomain = identity.slice(at + 1).toLowerCase();
  if (at < 0 || !(idDomain === domain || idDomain.endsWith("." + domain)) || /[\s;]/.test(identity)) {
    throw new DkimSignError(`DKIM identity ${identity} is not within ${domain} (RFC 6376 section 3.5, i=)`);
  }
  return identity;
}

/**
 * h= and the canonical header text (RFC 6376 section 5.4.2): each field name once per instance, instances
 * taken from the bottom up; an over-signed name appears once more and then matches nothing.
 */
function selectHeaders(
  fields: readonly HeaderField[],
  signed: readonly string[],
  oversigned: readonly string[],
  canon: "simple" | "relaxed",
): { names: string[]; canonical: string } {
  const byName = new Map<string, HeaderField[]>();
  for (const field of fields) {
    const list = byName.get(field.name);
    if (list) list.push(field);
    else byName.set(field.name, [field]);
  }
  const over = new Set(oversigned.map((n) => n.toLowerCase()));
  const seen = new Set<string>();
  const names: string[] = [];
  let canonical = "";
  for (const rawName of signed) {
    const name = rawName.toLowerCase();
    if (seen.has(name)) continue;
    seen.add(name);
    if (!FIELD_NAME_PATTERN.test(name)) throw new DkimSignError(`invalid header field name to sign: ${rawName}`);
    if (name === "dkim-signature") continue;
    const instances = byName.get(name) ?? [];
    for (let i = instances.length - 1; i >= 0; i--) {
      const field = instances[i] as HeaderField;
      names.push(name);
      canonical += canon === "relaxed" ? canonicalizeHeaderRelaxed(field.raw) + "\r\n" : field.raw + "\r\n";
    }
    if (over.has(name)) names.push(name);
  }
  if (!names.includes("from")) throw new DkimSignError("the signed header list must include From (RFC 6376 section 5.4)");
  return { names, canonical };
}

/** Builds `DKIM-Signature: <tags>; b=` folded at FOLD_WIDTH; the b= value is appended by the caller. */
function foldSignatureField(tags: readonly string[]): string {
  const lines: string[] = [];
  let line = "DKIM-Signature:";
  const push = (token: string, glue: string) => {
    if (line.length + glue.length + token.length > FOLD_WIDTH && line !== "DKIM-Signature:") {
      lines.push(line);
      line = "\t" + token;
    } else {
      line += glue + token;
    }
  };
  for (const tag of tags) {
    if (tag.startsWith("h=")) {
      // h= may be folded after any colon (RFC 6376 section 3.5, sig-h-tag allows FWS around ":").
      const parts = tag.split(":");
      parts.forEach((part, i) => push(part + (i < parts.length - 1 ? ":" : ";"), i === 0 ? " " : ""));
    } else {
      push(tag + ";", " ");
    }
  }
  lines.push(line);
  lines.push("\tb=");
  return lines.join("\r\n");
}

/** The b= value, folded; verifiers delete it with all whitespace inside it (RFC 6376 section 3.5). */
function foldBase64(value: string): string {
  const first = FOLD_WIDTH - 3;
  let out = value.slice(0, first);
  for (let i = first; i < value.length; i += FOLD_WIDTH - 2) out += "\r\n\t " + value.slice(i, i + FOLD_WIDTH - 2);
  return out;
}

function normalizeLineEndings(text: string): string {
  // Fast path: already CRLF everywhere (the common case for mail we composed ourselves); indexOf beats a regex.
  for (let lf = text.indexOf("\n"); lf >= 0; lf = text.indexOf("\n", lf + 1)) {
    if (lf === 0 || text.charCodeAt(lf - 1) !== 13) return text.replace(/\r?\n/g, "\r\n");
  }
  return text;
}

function splitMessage(text: string): { headerBlock: string; body: string } {
  if (text.startsWith("\r\n")) return { headerBlock: "", body: text.slice(2) };
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return { headerBlock: text.endsWith("\r\n") ? text : text + "\r\n", body: "" };
  return { headerBlock: text.slice(0, end + 2), body: text.slice(end + 4) };
}

function parseHeaderFields(headerBlock: string): HeaderField[] {
  const fields: HeaderField[] = [];
  const lines = headerBlock.split("\r\n");
  lines.pop(); // the block ends with CRLF
  let current: { name: string; raw: string } | null = null;
  for (const line of lines) {
    if ((line.startsWith(" ") || line.startsWith("\t")) && current) {
      current.raw += "\r\n" + line;
      continue;
    }
    if (current) fields.push(current);
    const colon = line.indexOf(":");
    // A line without a colon is not a field; it cannot be signed, so it is skipped here and kept in the message.
    current = colon > 0 ? { name: trimWsp(line.slice(0, colon)).toLowerCase(), raw: line } : null;
  }
  if (current) fields.push(current);
  return fields;
}

/** RFC 6376 section 3.4.2 for one field, without the trailing CRLF. */
function canonicalizeHeaderRelaxed(raw: string): string {
  const colon = raw.indexOf(":");
  const name = trimWsp(raw.slice(0, colon)).toLowerCase();
  const value = trimWsp(
    raw
      .slice(colon + 1)
      .replace(/\r\n/g, "")
      .replace(/[ \t]+/g, " "),
  );
  return name + ":" + value;
}

/**
 * Strips SP and HTAB only. String.prototype.trim would also strip U+00A0 and friends, which are content, and
 * in octet mode 0xA0 is a UTF-8 continuation byte (as in "à" = C3 A0).
 */
function trimWsp(text: string): string {
  return text.replace(/^[ \t]+|[ \t]+$/g, "");
}

/** RFC 6376 section 3.4.3: only trailing empty lines go; an empty body becomes one CRLF. */
function canonicalizeBodySimple(body: string): string {
  const end = trimTrailingLineBreaks(body);
  return body.slice(0, end) + "\r\n";
}

/** RFC 6376 section 3.4.4 (with erratum 3133: an empty body stays empty). */
function canonicalizeBodyRelaxed(body: string): string {
  // The second pattern skips single spaces, which are already canonical and by far the most common run.
  const squeezed = body.replace(/[ \t]+(?=\r\n|$)/g, "").replace(/\t[ \t]*| [ \t]+/g, " ");
  const end = trimTrailingLineBreaks(squeezed);
  return end === 0 ? "" : squeezed.slice(0, end) + "\r\n";
}

/** Length of `text` without its trailing CRLFs (and a last line's missing CRLF). */
function trimTrailingLineBreaks(text: string): number {
  let end = text.length;
  while (end >= 2 && text.charCodeAt(end - 1) === 10 && text.charCodeAt(end - 2) === 13) end -= 2;
  return end;
}

interface SigningKey {
  algorithm: DkimAlgorithm;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** Imported keys kept per isolate; far more than one relay's selectors, small enough that rotation cannot grow it. */
const MAX_CACHED_KEYS = 256;
const keyCache = new Map<string, Promise<SigningKey>>();

function signingKey(pem: string, requested: DkimAlgorithm | undefined): Promise<SigningKey> {
  const cacheKey = `${requested ?? ""}\n${pem}`;
  let key = keyCache.get(cacheKey);
  if (!key) {
    key = importSigningKey(pem, requested);
    if (keyCache.size >= MAX_CACHED_KEYS) keyCache.delete(keyCache.keys().next().value as string);
    keyCache.set(cacheKey, key);
    // A bad key must not stay cached as a rejected promise once its configuration is fixed.
    key.catch(() => keyCache.delete(cacheKey));
  }
  return key;
}

async function importSigningKey(pem: string, requested: DkimAlgorithm | undefined): Promise<SigningKey> {
  const der = pemToDer(pem);
  const algorithm = algorithmOfKey(der);
  if (requested !== undefined && requested !== algorithm) {
    throw new DkimSignError(`DKIM algorithm ${requested} does not match the ${algorithm} key`);
  }
  if (algorithm === "rsa-sha256") {
    const params = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    const key = await crypto.subtle.importKey("pkcs8", der, params, false, ["sign"]);
    return { algorithm, sign: async (data) => new Uint8Array(await crypto.subtle.sign(params, key, data)) };
  }
  const key = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
  // RFC 8463 section 3: Ed25519 signs the SHA-256 hash of the header data, not the data itself.
  return {
    algorithm,
    sign: async (data) => new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, await sha256(data))),
  };
}

function pemToDer(pem: string): Uint8Array<ArrayBuffer> {
  // Secrets pasted into dashboards often carry literal "\n" instead of line breaks.
  const text = pem.replace(/\\n/g, "\n").trim();
  if (/-----BEGIN (?:RSA |EC )?PRIVATE KEY-----/.test(text) && !text.includes("BEGIN PRIVATE KEY")) {
    throw new DkimSignError(
      "DKIM key must be PKCS#8 (BEGIN PRIVATE KEY); convert with: openssl pkcs8 -topk8 -nocrypt -in key.pem",
    );
  }
  const match = /-----BEGIN PRIVATE KEY-----([\s\S]*?)-----END PRIVATE KEY-----/.exec(text);
  if (!match) throw new DkimSignError("DKIM key is not a PKCS#8 PEM (BEGIN PRIVATE KEY)");
  try {
    return base64ToBytes((match[1] ?? "").replace(/\s+/g, ""));
  } catch {
    throw new DkimSignError("DKIM key PEM has invalid base64");
  }
}

const RSA_OID = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]; // 1.2.840.113549.1.1.1
const ED25519_OID = [0x06, 0x03, 0x2b, 0x65, 0x70]; // 1.3.101.112 (RFC 8410)

/** Reads the algorithm OID from the PKCS#8 AlgorithmIdentifier, which sits in the first bytes. */
function algorithmOfKey(der: Uint8Array): DkimAlgorithm {
  const head = der.subarray(0, 32);
  if (indexOfBytes(head, RSA_OID) >= 0) return "rsa-sha256";
  if (indexOfBytes(head, ED25519_OID) >= 0) return "ed25519-sha256";
  throw new DkimSignError("DKIM key is neither RSA nor Ed25519");
}

function indexOfBytes(haystack: Uint8Array, needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

const utf8 = new TextEncoder();

function encodeUtf8(text: string): Uint8Array {
  return utf8.encode(text);
}

/** One char per octet (code points 0-255), so 8-bit content that is not UTF-8 survives untouched. */
function decodeOctets(bytes: Uint8Array): string {
  let out = "";
  const CHUNK = 0x2000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    out += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, i + CHUNK)));
  }
  return out;
}

function encodeOctets(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}


function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function base64UrlToBytes(b64url: string): Uint8Array {
  const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
  return base64ToBytes(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
}

/** What `verifyOwnHeaderSignature` found: the signature that verified and the fields it covers. */
export interface VerifiedHeaderSignature {
  domain: string;
  selector: string;
  /** The signed fields (lower-case name, unfolded value), in the order h= lists them; absent instances left out. */
  signedFields: { name: string; value: string }[];
}

/**
 * Checks a header block (one char per octet, as in a returned original inside a bounce or feedback report)
 * for a DKIM-Signature made with one of `signers` whose header hash verifies (RFC 6376 sections 3.7 and 6.1.3,
 * header part only: bh= is not checked, a report seldom returns the whole body). Our keys are RSASSA-PKCS1-v1_5
 * or Ed25519, both deterministic, so signing the same data again with the private key and comparing b= is a
 * verification. Returns the first signature that verifies, or null.
 */
export async function verifyOwnHeaderSignature(headerBlockOctets: string, signers: readonly DkimSigner[]): Promise<VerifiedHeaderSignature | null> {
  const block = normalizeLineEndings(headerBlockOctets).replace(/(\r\n)*$/, "\r\n");
  const fields = parseHeaderFields(block);
  for (const sig of fields.filter((f) => f.name === "dkim-signature")) {
    const tags = parseTagList(sig.raw.slice(sig.raw.indexOf(":") + 1));
    const d = (tags.get("d") ?? "").toLowerCase();
    const s = (tags.get("s") ?? "").toLowerCase();
    const signer = signers.find((x) => x.domain.toLowerCase() === d && x.selector.toLowerCase() === s);
    if (!signer || tags.get("v") !== "1") continue;
    const [headerCanon = "simple"] = (tags.get("c") ?? "simple/simple").split("/");
    if (!isCanonMode(headerCanon)) continue;
    const names = (tags.get("h") ?? "").split(":").map((n) => n.trim().toLowerCase()).filter(Boolean);
    const b = (tags.get("b") ?? "").replace(/[ \t\r\n]/g, "");
    if (!names.includes("from") || !b) continue;
    let key: SigningKey;
    try {
      key = await signingKey(signer.privateKeyPem, signer.algorithm);
    } catch {
      continue;
    }
    if (tags.get("a") !== key.algorithm) continue;
    const used = new Map<string, number>();
    const signedFields: VerifiedHeaderSignature["signedFields"] = [];
    let canonical = "";
    for (const name of names) {
      const instances = fields.filter((f) => f.name === name && f !== sig);
      const n = used.get(name) ?? 0;
      used.set(name, n + 1);
      const field = instances[instances.length - 1 - n];
      if (!field) continue;
      canonical += (headerCanon === "relaxed" ? canonicalizeHeaderRelaxed(field.raw) : field.raw) + "\r\n";
      signedFields.push({ name, value: trimWsp(field.raw.slice(field.raw.indexOf(":") + 1).replace(/\r\n/g, "")) });
    }
    // The signature field itself with the value of b= emptied (RFC 6376 section 3.7), no trailing CRLF.
    const colon = sig.raw.indexOf(":");
    const withoutB = sig.raw.slice(0, colon + 1) + sig.raw.slice(colon + 1).replace(/(^|;)([ \t\r\n]*b[ \t\r\n]*=)[^;]*/, "$1$2");
    const sigField = headerCanon === "relaxed" ? canonicalizeHeaderRelaxed(withoutB) : withoutB;
    const expected = encodeBase64(await key.sign(encodeOctets(canonical + sigField)));
    if (constantTimeEqual(expected, b)) return { domain: d, selector: signer.selector, signedFields };
  }
  return null;
}

/** RFC 6376 section 3.2 tag=value list; names and values trimmed of FWS. */
function parseTagList(value: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of value.replace(/\r\n/g, "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = trimWsp(part.slice(0, eq));
    if (!tags.has(name)) tags.set(name, trimWsp(part.slice(eq + 1)));
  }
  return tags;
}

