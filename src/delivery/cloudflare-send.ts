/**
 * The send_email route's sending stage: delivers a work item through a Cloudflare Email Service binding, one
 * recipient per EmailMessage, and classifies the binding's errors.
 */
import type { Work } from "./work";
import { errorText } from "./work";
import { readStoredText } from "../store/body-crypto";

/**
 * Whether a send_email failure is permanent. The binding throws Errors with a string `code` (E_...); refusals
 * of the message or recipient are permanent. Sender and account problems (unverified sender, not entitled, rate
 * and daily limits, internal errors) are temporary, like an SMTP AUTH failure: fixing the account delivers the
 * queue. Without a code (the local simulator), the message text decides the same way.
 */
export function isPermanentSendEmailError(code: string, message: string): boolean {
  if (code) return /RECIPIENT|VALIDATION|INVALID|TOO_LARGE|TOO_MANY|SUPPRESSED|DESTINATION/.test(code) && !/SENDER|LIMIT|INTERNAL/.test(code);
  return /email to \S+ not allowed|destination|recipient|could not parse|invalid/i.test(message) && !/from \S+ not allowed|sender/i.test(message);
}

/** The address in the header From field: Email Service wants the envelope sender to match it (VERP cannot). */
function headerFromAddress(raw: string): string | undefined {
  const head = raw.slice(0, Math.max(0, raw.search(/\r?\n\r?\n/)) || raw.length);
  const m = /^From:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)/im.exec(head);
  if (!m) return undefined;
  const value = m[1]!.replace(/\r?\n[ \t]/g, " ");
  const angle = /<([^<>\s]+@[^<>\s]+)>/.exec(value);
  return angle ? angle[1] : /([^\s<>",;]+@[^\s<>",;]+)/.exec(value)?.[1];
}

/**
 * The message as Email Service takes it: without our `Received` trace fields, which it refuses ("invalid
 * headers set") and adds itself.
 */
function withoutTraceFields(raw: string): string {
  const end = raw.search(/\r?\n\r?\n/);
  if (end < 0) return raw;
  const head = raw
    .slice(0, end)
    .replace(/^Received:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*\r?\n?/gim, "")
    .replace(/\r?\n$/, "");
  return head + raw.slice(end);
}

/** Delivers one job through a send_email binding, one recipient per EmailMessage. */
export async function sendCloudflare(env: Env, binding: string, w: Work, seq: number): Promise<void> {
  const target = (env as unknown as Record<string, unknown>)[binding] as SendEmail | undefined;
  const { EmailMessage } = await import("cloudflare:email");
  // Email Service takes at most 25 MiB, so reading an R2 body whole here is bounded.
  const raw = w.raw ?? (await readStoredText(env, w.job.bodyKey!));
  if (raw === undefined) {
    for (const r of w.pending) if (!w.results.has(r.idx)) w.results.set(r.idx, { status: "bounced", enhanced: "5.3.0", text: "message body missing from storage", seq });
    return;
  }
  const from = headerFromAddress(raw) ?? w.job.mailFrom;
  const host = `cloudflare:${binding}`;
  for (const r of w.pending) {
    if (w.results.has(r.idx)) continue;
    const started = Date.now();
    if (!target || typeof target.send !== "function") {
      w.results.set(r.idx, { status: "deferred", enhanced: "4.3.5", text: `send_email binding ${binding} is not configured`, host, seq });
      continue;
    }
    try {
      const res = await target.send(new EmailMessage(from, r.address, withoutTraceFields(raw)));
      w.results.set(r.idx, { status: "delivered", text: `accepted as ${res.messageId}`, host, tls: true, latencyMs: Date.now() - started, seq });
    } catch (e) {
      const code = typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : "";
      const permanent = isPermanentSendEmailError(code, errorText(e));
      w.results.set(r.idx, {
        status: permanent ? "bounced" : "deferred",
        enhanced: permanent ? "5.0.0" : "4.0.0",
        text: `${code ? `${code}: ` : ""}${errorText(e)}`,
        host,
        latencyMs: Date.now() - started,
        seq,
      });
    }
  }
}
