// @ts-check
/**
 * The one place that turns the relay's answer into the SMTP reply the client gets after DATA. The rule:
 * - 250 only when the relay answered HTTP 202 (the message is recorded and queued there);
 * - 4xx when the relay is unreachable, busy (429), failing (5xx), or answers in a way that means the bridge or
 *   its configuration is wrong (401 key no longer valid, 404/405/415 wrong URL) — the client keeps the message
 *   and retries, so nothing is lost while someone fixes the cause;
 * - 5xx when the relay refuses this message for what it is (400 content, 403 sender/account, 413 size,
 *   422 addresses) — retrying the same message would get the same answer.
 * Reply codes after DATA are limited to 250/450/451/452/550/552/554 (RFC 5321 §4.3.2); the enhanced status
 * codes are from RFC 3463 and the IANA registry.
 */

/** @typedef {import("./relay-client.js").RelayAnswer} RelayAnswer */

/**
 * @typedef {object} SmtpReply
 * @property {number} code
 * @property {string} enhanced  e.g. "5.7.1"
 * @property {string} text  human-readable, without codes
 */

/**
 * @typedef {object} Verdict
 * @property {boolean} accepted  true only for HTTP 202
 * @property {SmtpReply} reply
 * @property {string[]} suppressedRecipients  recipients the relay reported as suppressed
 * @property {string | null} refusedRecipient  the recipient a refusal names (field "to[i]"), if any
 * @property {string | null} refusedSenderDomain  the domain the relay said this key may not send from
 */

/**
 * @param {string} text
 * @returns {string}
 */
function oneLine(text) {
  return text.replace(/[\r\n\t]+/g, " ").replace(/[^\x20-\x7e]/g, "?").slice(0, 300);
}

/**
 * Which envelope recipient a relay error's `field` names ("to[2]"), if any.
 * @param {string | null} field
 * @param {string[]} recipients
 * @returns {string | null}
 */
export function recipientOfField(field, recipients) {
  const m = field ? /^(?:to|recipients|rcpt_to)\[(\d+)\]$/.exec(field) : null;
  return m ? (recipients[Number(m[1])] ?? null) : null;
}

/**
 * @param {RelayAnswer} answer
 * @param {{ recipients: string[] }} envelope
 * @returns {Verdict}
 */
export function verdictFor(answer, envelope) {
  /** @type {Verdict} */
  const base = { accepted: false, reply: { code: 451, enhanced: "4.3.0", text: "" }, suppressedRecipients: [], refusedRecipient: null, refusedSenderDomain: null };
  if (answer.kind === "unreachable") {
    if (answer.reason === "timeout") return { ...base, reply: { code: 451, enhanced: "4.4.2", text: "the relay did not answer in time; try again later" } };
    return { ...base, reply: { code: 451, enhanced: "4.4.1", text: `the relay is unreachable (${oneLine(answer.message)}); try again later` } };
  }
  if (answer.kind === "accepted") {
    const suppressed = answer.recipients.filter((r) => r.status === "suppressed").map((r) => r.address);
    const id = answer.id ?? "unknown";
    if (answer.recipients.length > 0 && suppressed.length === answer.recipients.length) {
      // The relay recorded the message but will mail nobody: say so, so the sender's MTA bounces it.
      return {
        ...base,
        suppressedRecipients: suppressed,
        reply: { code: 550, enhanced: "5.7.1", text: `every recipient is on the suppression list (${oneLine(suppressed.join(", "))}); relay message ${oneLine(id)}` },
      };
    }
    const note = suppressed.length ? `; not sent to suppressed ${oneLine(suppressed.join(", "))}` : "";
    return { ...base, accepted: true, suppressedRecipients: suppressed, reply: { code: 250, enhanced: "2.0.0", text: `Ok: queued as ${oneLine(id)}${note}` } };
  }

  const { status, code } = answer;
  const detail = oneLine(answer.message || code || `HTTP ${status}`);
  const recipient = recipientOfField(answer.field, envelope.recipients);
  const refused = { ...base, refusedRecipient: recipient };
  if (status === 429) return { ...base, reply: { code: 451, enhanced: "4.7.0", text: `rate limited by the relay (${detail}); try again later` } };
  if (status >= 500) return { ...base, reply: { code: 451, enhanced: "4.3.0", text: `the relay could not take the message now (${detail}); try again later` } };
  if (status === 413 || code === "too_large") return { ...base, reply: { code: 552, enhanced: "5.3.4", text: `message too large for the relay (${detail})` } };
  if (status === 401) return { ...base, reply: { code: 451, enhanced: "4.7.8", text: `the relay no longer accepts this API key (${detail}); try again after fixing the credentials` } };
  if (code === "sender_domain_not_allowed") {
    // "this key may not send from example.com": the domain is the message's last word.
    const domain = /([a-z0-9-]+(?:\.[a-z0-9-]+)+)\s*$/i.exec(answer.message)?.[1]?.toLowerCase() ?? null;
    return { ...base, refusedSenderDomain: domain, reply: { code: 550, enhanced: "5.7.1", text: `sender refused by the relay: ${detail}` } };
  }
  if (code && /suppress/.test(code)) return { ...refused, reply: { code: 550, enhanced: "5.7.1", text: `recipient ${recipient ? `<${oneLine(recipient)}> ` : ""}is on the suppression list (${detail})` } };
  if (status === 403) return { ...base, reply: { code: 550, enhanced: "5.7.1", text: `refused by the relay: ${detail}` } };
  if (code === "too_many_recipients") return { ...base, reply: { code: 550, enhanced: "5.5.3", text: `too many recipients for the relay (${detail})` } };
  if (recipient) return { ...refused, reply: { code: 550, enhanced: "5.1.3", text: `recipient <${oneLine(recipient)}> refused by the relay: ${detail}` } };
  if (code === "invalid_sender" || answer.field === "from" || answer.field === "mail_from") {
    return { ...base, reply: { code: 550, enhanced: "5.1.7", text: `sender refused by the relay: ${detail}` } };
  }
  if (status === 400 || status === 422) return { ...base, reply: { code: 554, enhanced: "5.6.0", text: `message refused by the relay: ${detail}` } };
  // 404, 405, 409, 415 ...: the relay URL or version does not fit this bridge. Keep the mail queued at the client.
  return { ...base, reply: { code: 451, enhanced: "4.3.5", text: `unexpected answer from the relay (HTTP ${status}: ${detail}); check the bridge's --relay setting` } };
}

/**
 * The reply as one line of text for smtp-server's error/success callbacks: "5.7.1 text".
 * @param {SmtpReply} reply
 */
export function replyText(reply) {
  return `${reply.enhanced} ${reply.text}`;
}
