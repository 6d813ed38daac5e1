// @ts-check
/**
 * The bridge's side of the relay's HTTP API: stream one raw message with its envelope to
 * `POST /v1/messages/raw`, and check an API key at AUTH time. Returns what the relay said as data; turning
 * that into an SMTP reply is smtp-verdict.js's job.
 */

import { domainToASCII } from "node:url";

/**
 * The subset of fetch the bridge uses; Node's global fetch (undici) fits, tests may pass their own.
 * @typedef {(url: string, init: {
 *   method: string,
 *   headers: Record<string, string>,
 *   body?: AsyncIterable<Uint8Array>,
 *   duplex?: "half",
 *   signal?: AbortSignal,
 * }) => Promise<{ status: number, headers: { get(name: string): string | null }, text(): Promise<string> }>} RelayFetch
 */

/** @typedef {{ address: string, status: string }} RelayRecipient */
/** @typedef {{ kind: "accepted", status: number, id: string | null, recipients: RelayRecipient[] }} RelayAccepted */
/** @typedef {{ kind: "refused", status: number, code: string | null, message: string, field: string | null, retryAfterSeconds: number | null }} RelayRefused */
/** @typedef {{ kind: "unreachable", reason: "connect" | "timeout" | "aborted", message: string }} RelayUnreachable */
/** @typedef {RelayAccepted | RelayRefused | RelayUnreachable} RelayAnswer */

/** Node's fetch, seen through the narrow type above (its real type is the DOM/undici one). */
export const nodeFetch = /** @type {RelayFetch} */ (/** @type {unknown} */ (globalThis.fetch));

/**
 * Envelope addresses travel in HTTP headers, which carry Latin-1 bytes only, and the relay reads them as
 * they are. So an internationalized domain (RFC 6531) is sent as its A-label (xn--...), which names the
 * same domain; a non-ASCII local part has no ASCII equivalent and gets null (the caller refuses it).
 * @param {string} address
 * @returns {string | null}
 */
export function asciiEnvelopeAddress(address) {
  if (/^[\x20-\x7e]*$/.test(address)) return address;
  const at = address.lastIndexOf("@");
  const local = address.slice(0, at);
  if (at < 1 || /[^\x20-\x7e]/.test(local)) return null;
  const domain = domainToASCII(address.slice(at + 1));
  return domain ? `${local}@${domain}` : null;
}

/**
 * @param {string} text
 * @returns {unknown}
 */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * @param {unknown} v
 * @returns {v is Record<string, unknown>}
 */
function isObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Reads the relay's answer to a raw submission. Only HTTP 202 counts as accepted.
 * @param {number} status
 * @param {string} text
 * @param {string | null} retryAfter
 * @returns {RelayAccepted | RelayRefused}
 */
export function readRelayAnswer(status, text, retryAfter) {
  const body = parseJson(text);
  if (status === 202) {
    const id = isObject(body) && typeof body.id === "string" ? body.id : null;
    /** @type {RelayRecipient[]} */
    const recipients = [];
    if (isObject(body) && Array.isArray(body.recipients)) {
      for (const r of body.recipients) {
        if (isObject(r) && typeof r.address === "string" && typeof r.status === "string") recipients.push({ address: r.address, status: r.status });
      }
    }
    return { kind: "accepted", status, id, recipients };
  }
  const error = isObject(body) && isObject(body.error) ? body.error : null;
  const seconds = retryAfter !== null && /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) : null;
  return {
    kind: "refused",
    status,
    code: error && typeof error.code === "string" ? error.code : null,
    message: error && typeof error.message === "string" ? error.message : text.slice(0, 200).replace(/\s+/g, " ").trim(),
    field: error && typeof error.field === "string" ? error.field : null,
    retryAfterSeconds: seconds,
  };
}

/**
 * @param {unknown} e
 * @param {AbortSignal} signal
 * @returns {RelayUnreachable}
 */
function unreachable(e, signal) {
  const reason = signal.reason;
  if (signal.aborted && reason instanceof Error && reason.name === "TimeoutError") return { kind: "unreachable", reason: "timeout", message: "no answer from the relay in time" };
  if (signal.aborted) return { kind: "unreachable", reason: "aborted", message: reason instanceof Error ? reason.message : "aborted" };
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause : null;
  const code = cause && "code" in cause && typeof cause.code === "string" ? cause.code : null;
  const text = cause?.message ?? (e instanceof Error ? e.message : String(e));
  return { kind: "unreachable", reason: "connect", message: code ? `${code}: ${text}` : text };
}

/**
 * @typedef {object} RawSubmission
 * @property {URL} relayUrl
 * @property {string} apiKey
 * @property {string} mailFrom  "" for the null reverse-path
 * @property {string[]} recipients  ASCII addresses (see asciiEnvelopeAddress)
 * @property {string | null} clientHelo  the SMTP client's EHLO name, for the relay's Received line
 * @property {string | null} clientProtocol  RFC 3848 protocol name (ESMTPSA ...), for the relay's Received line
 * @property {boolean} [requireTls]  the client sent MAIL FROM ... REQUIRETLS (RFC 8689): sent as X-Require-TLS: yes
 * @property {AsyncIterable<Uint8Array>} body  the message, streamed
 * @property {AbortSignal} signal  aborts the upload (timeout, oversize, client gone)
 * @property {RelayFetch} [fetch]
 */

/**
 * Streams one message to `POST /v1/messages/raw` and returns the relay's answer. Never throws for network
 * or HTTP failures: those are answers too (`unreachable`, `refused`).
 * @param {RawSubmission} submission
 * @returns {Promise<RelayAnswer>}
 */
export async function postRawMessage(submission) {
  const doFetch = submission.fetch ?? nodeFetch;
  const url = new URL("v1/messages/raw", submission.relayUrl.href.endsWith("/") ? submission.relayUrl : `${submission.relayUrl.href}/`);
  try {
    const res = await doFetch(url.href, {
      method: "POST",
      headers: {
        authorization: `Bearer ${submission.apiKey}`,
        "content-type": "message/rfc822",
        "x-envelope-from": submission.mailFrom,
        "x-envelope-to": submission.recipients.join(", "),
        // Optional, and only in the shapes the relay accepts (it refuses anything else with 400).
        ...(submission.clientHelo && /^[A-Za-z0-9.:\-[\]_]{1,255}$/.test(submission.clientHelo) ? { "x-client-helo": submission.clientHelo } : {}),
        ...(submission.clientProtocol && /^(ESMTP|ESMTPS|ESMTPA|ESMTPSA|SMTP|LMTP)$/.test(submission.clientProtocol) ? { "x-client-protocol": submission.clientProtocol } : {}),
        ...(submission.requireTls ? { "x-require-tls": "yes" } : {}),
      },
      body: submission.body,
      duplex: "half",
      signal: submission.signal,
    });
    const text = await res.text();
    return readRelayAnswer(res.status, text, res.headers.get("retry-after"));
  } catch (e) {
    return unreachable(e, submission.signal);
  }
}

/** @typedef {"valid" | "invalid" | "suspended" | "unavailable"} KeyCheck */

/**
 * Asks the relay whether an API key is usable, with a read that has no side effects: the status of a message
 * id that cannot exist. 401 means a bad or revoked key, 403 a suspended tenant; 404 (or any other answer that
 * is not an authentication failure) means the key was accepted. 5xx, 429 and network errors are `unavailable`.
 * @param {URL} relayUrl
 * @param {string} apiKey
 * @param {{ fetch?: RelayFetch, timeoutMs: number }} options
 * @returns {Promise<KeyCheck>}
 */
export async function checkApiKey(relayUrl, apiKey, options) {
  const doFetch = options.fetch ?? nodeFetch;
  const url = new URL("v1/messages/bridgekeycheck", relayUrl.href.endsWith("/") ? relayUrl : `${relayUrl.href}/`);
  try {
    const res = await doFetch(url.href, {
      method: "GET",
      headers: { authorization: `Bearer ${apiKey}` },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    await res.text();
    if (res.status === 401) return "invalid";
    if (res.status === 403) return "suspended";
    if (res.status === 429 || res.status >= 500) return "unavailable";
    return "valid";
  } catch {
    return "unavailable";
  }
}
