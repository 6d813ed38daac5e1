/**
 * MailChannels Email API compatibility: `POST /tx/v1/send` and `POST /tx/v1/send-async` with their request shape
 * (personalizations, content[], per-personalization DKIM and envelope_from, `?dry-run=true`), so Workers apps and
 * the `mailchannels-sdk` package switch by changing the base URL and key.
 * Responses: send 202 `{ request_id, results: [{ index, message_id, status: "sent", reason }] }`, dry runs
 * 200 `{ data: ["<signed message>", ...] }`, send-async 202 `{ queued_at, request_id }`. Errors carry this API's
 * `error` object plus MailChannels' `errors: [string]`, which is what their SDK shows (`mailChannelsErrorBody`).
 */
import { Hono, type Context } from "hono";
import { keysForDomain, parseDkimKeys } from "../accept/dkim-keys";
import { dkimKeysSecret, signingSecret } from "../config";
import { sendRequest } from "../accept/send";
import { precheckSend } from "../accept/send";
import { refusalOf } from "../accept/refusal";
import type { DkimSigner } from "../mime/dkim";
import { fromMailChannelsRequest, type MailChannelsDkim } from "../mime/mailchannels";
import { newId } from "../store/ids";
import { trackingBaseUrl } from "../accept/tracking";
import { requireApiKey, type AppEnv } from "./auth";
import { ApiError } from "./errors";
import { sendContext } from "./messages";
import { enforceRateLimit, idempotent, maxJsonBytes, readJsonBody } from "./request";

/** MailChannels accepts the key as base64 of the PKCS#8 DER; turn that into PEM for the signer. */
function dkimPem(key: string): string {
  if (key.includes("-----BEGIN")) return key.replace(/\\n/g, "\n");
  const b64 = key.replace(/\s+/g, "");
  return `-----BEGIN PRIVATE KEY-----\n${b64.match(/.{1,64}/g)?.join("\n") ?? ""}\n-----END PRIVATE KEY-----\n`;
}

/**
 * The signer a personalization asks for, or null when the relay signs with that key anyway (DKIM_KEYS for the
 * From domain). `dkim.domain` must be the From domain or a parent of it (checked by the caller).
 */
function signerFor(env: Env, dkim: MailChannelsDkim, domain: string, fromDomain: string, prefix: string): DkimSigner | null {
  if (dkim.privateKey !== undefined) return { domain, selector: dkim.selector, privateKeyPem: dkimPem(dkim.privateKey) };
  // No key given: MailChannels would use the key stored with its DKIM API; here, the relay's DKIM_KEYS.
  const keys = parseDkimKeys(dkimKeysSecret(env));
  const stored = keys.find((k) => k.domain === domain && k.selector.toLowerCase() === dkim.selector.toLowerCase());
  if (!stored) {
    throw new ApiError(422, "invalid_field", `no DKIM key for ${domain} with selector ${dkim.selector} is configured at the relay (DKIM_KEYS); give dkim_private_key or a configured selector`, `${prefix}dkim_selector`);
  }
  if (keysForDomain(keys, fromDomain).includes(stored)) return null;
  return { domain: stored.domain, selector: stored.selector, privateKeyPem: stored.privateKeyPem };
}

export const mailchannels = new Hono<AppEnv>();

/**
 * The error body on /tx/v1/*: ours (`error`) plus MailChannels' `errors` list of strings, which `mailchannels-sdk`
 * joins into the `error.message` it hands the application ("Bad Request. personalizations[0].to[0].email: ...").
 */
export function mailChannelsErrorBody(e: ApiError): ReturnType<ApiError["toJSON"]> & { errors: string[] } {
  return { ...e.toJSON(), errors: [e.field ? `${e.field}: ${e.message}` : e.message] };
}

type Mode = "send" | "async";

async function handleSend(c: Context<AppEnv>, mode: Mode): Promise<Response> {
  const ctx = sendContext(c);
  const dryRunParam = c.req.query("dry-run");
  if (dryRunParam !== undefined && dryRunParam !== "true" && dryRunParam !== "false") throw new ApiError(400, "invalid_field", "dry-run must be true or false", "dry-run");
  const dryRun = dryRunParam === "true";
  if (dryRun && mode === "async") throw new ApiError(400, "invalid_field", "send-async has no dry run; use /tx/v1/send?dry-run=true", "dry-run");
  const { value, bytes } = await readJsonBody(c.req.raw, maxJsonBytes(ctx.config.maxMessageBytes));
  const mapped = fromMailChannelsRequest(value, { maxRecipients: ctx.config.maxRecipients });
  if (!mapped.ok) throw refusalOf(mapped.error);
  const sends = mapped.value;
  const run = async () => {
    // Dry runs count too: they sign nothing, but compose, validate and answer like a send.
    await enforceRateLimit(c, sends.reduce((n, s) => n + s.request.recipients.length, 0));
    // Refuse before anything is queued: every personalization is checked first, so none is half sent.
    const prepared = [];
    for (const s of sends) {
      const prefix = `personalizations[${s.personalization}].`;
      if (s.campaignId && !s.request.tags.includes(s.campaignId)) s.request.tags = [s.campaignId, ...s.request.tags].slice(0, 10);
      const extraSigners: DkimSigner[] = [];
      if (s.dkim) {
        // A request may only sign as a domain the tenant owns: the From domain or a parent of it.
        const from = s.request.sender.asciiDomain;
        const d = s.dkim.domain ?? from;
        if (from !== d && !from.endsWith(`.${d}`)) throw new ApiError(403, "sender_domain_not_allowed", "dkim_domain must be the From domain or a parent of it", `${prefix}dkim_domain`);
        const signer = signerFor(ctx.env, s.dkim, d, from, prefix);
        if (signer) extraSigners.push(signer);
      }
      const opts = { fieldPrefix: prefix, extraSigners, ...(s.mailfrom ? { mailFrom: s.mailfrom, mailFromField: s.mailfromField ?? "envelope_from" } : {}) };
      // tracking_settings asked for tracking the relay cannot host: refused under the MailChannels field name.
      if ((s.request.track_opens || s.request.track_clicks) && s.request.html !== undefined) {
        const base = trackingBaseUrl(ctx.env, ctx.publicBaseUrl);
        if (!signingSecret(ctx.env) || !base?.startsWith("https://")) {
          const field = s.request.track_clicks ? "tracking_settings.click_tracking.enable" : "tracking_settings.open_tracking.enable";
          throw new ApiError(422, "invalid_field", "tracking needs SIGNING_SECRET and an https TRACKING_BASE_URL or PUBLIC_BASE_URL", field);
        }
      }
      await precheckSend(ctx, s.request, opts);
      prepared.push({ s, opts });
    }
    const data: string[] = [];
    const results: { index: number; message_id: string; status: "sent"; reason: string; recipients: { address: string; status: string }[] }[] = [];
    for (const { s, opts } of prepared) {
      if (dryRun) {
        data.push((await sendRequest(ctx, s.request, { ...opts, dryRun: true, inertDryRun: true })).raw);
      } else {
        const r = await sendRequest(ctx, s.request, opts);
        results.push({ index: s.personalization, message_id: r.id, status: "sent", reason: "", recipients: r.recipients });
      }
    }
    if (dryRun) return c.json({ data }, 200);
    // send-async: MailChannels answers before processing; here the messages are already queued when it answers,
    // so the response only differs in shape. Message ids are not in it (MailChannels reports them by webhook).
    if (mode === "async") return c.json({ queued_at: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"), request_id: newId() }, 202);
    return c.json({ request_id: newId(), results }, 202);
  };
  return dryRun ? run() : idempotent(c, bytes, run);
}

mailchannels.post("/tx/v1/send", requireApiKey, (c) => handleSend(c, "send"));
mailchannels.post("/tx/v1/send-async", requireApiKey, (c) => handleSend(c, "async"));
