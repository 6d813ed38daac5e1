/**
 * Send API routes: POST /v1/messages (JSON), /v1/messages/batch, /v1/messages/raw (RFC 5322), and the read side:
 * GET /v1/messages/:id, GET /v1/messages (search), GET /v1/events. Thin: logic lives in accept/ and store/.
 */
import { Hono, type Context } from "hono";
import { publicBaseUrl } from "../accept/outbound";
import { acceptRaw, readBodyLimited } from "../accept/raw";
import { batchOutbox, flushBatchOutbox } from "../accept/batch-outbox";
import { sendRequest, type SendContext } from "../accept/send";
import { validateSendRequest, type SendRequest } from "../mime/validate";
import { listEvents, listMessages } from "../store/message-list";
import { getMessage, type RecipientStatus } from "../store/messages";
import { addressSearchForm } from "../store/redaction";
import { requireApiKey, type AppEnv } from "./auth";
import { ApiError, apiErrorOf } from "./errors";
import { Refusal, refusalOf } from "../accept/refusal";
import { enforceRateLimit, idempotent, limitParam, maxJsonBytes, readJsonBody, stringParam, timeParam } from "./request";
import { ledgerOf } from "../store/shards";

/** Postmark and Resend take at most 500/100 messages per batch call; we take 100. */
export const MAX_BATCH_MESSAGES = 100;
const ID = /^[0-9a-z]{1,32}$/;
const STATUSES: readonly RecipientStatus[] = ["queued", "deferred", "delivered", "bounced", "expired", "suppressed", "failed"];

export function sendContext(c: Context<AppEnv>, protocol?: string): SendContext {
  const url = new URL(c.req.url);
  return {
    env: c.env,
    config: c.var.config(),
    tenant: c.get("tenant"),
    protocol: protocol ?? (url.protocol === "https:" ? "HTTPS" : "HTTP"),
    publicBaseUrl: publicBaseUrl(c.env, c.req.url),
  };
}

/** A request without `stream` goes out on the tenant's default stream. */
function withDefaultStream(ctx: SendContext, body: unknown, req: SendRequest): void {
  if (typeof body === "object" && body !== null && (body as { stream?: unknown }).stream == null) req.stream = ctx.tenant.defaultStream;
}

/** `?stream=transactional|broadcast` (issue 12); absent: both. */
function streamParam(c: Context<AppEnv>): "transactional" | "broadcast" | null {
  const v = c.req.query("stream");
  if (v === undefined || v === "") return null;
  if (v !== "transactional" && v !== "broadcast") throw new ApiError(400, "invalid_field", 'stream must be "transactional" or "broadcast"', "stream");
  return v;
}

/** A searched address as it reads in rows redacted in mode `hash` (issue 21), so searches keep finding them. */
async function hashedForm(c: Context<AppEnv>, recipient: string | null): Promise<string | null> {
  return recipient === null ? null : addressSearchForm(c.var.config().redactionHashKey, c.get("tenant").id, recipient);
}

export const messages = new Hono<AppEnv>();

messages.post("/v1/messages", requireApiKey, async (c) => {
  const ctx = sendContext(c);
  const { value, bytes } = await readJsonBody(c.req.raw, maxJsonBytes(ctx.config.maxMessageBytes));
  return idempotent(c, bytes, async () => {
    const v = validateSendRequest(value, { maxRecipients: ctx.config.maxRecipients });
    if (!v.ok) throw refusalOf(v.error);
    withDefaultStream(ctx, value, v.value);
    await enforceRateLimit(c, v.value.recipients.length);
    const result = await sendRequest(ctx, v.value);
    return c.json(result, 202);
  });
});

messages.post("/v1/messages/batch", requireApiKey, async (c) => {
  const ctx = sendContext(c);
  const { value, bytes } = await readJsonBody(c.req.raw, maxJsonBytes(ctx.config.maxMessageBytes));
  const list = Array.isArray(value) ? value : typeof value === "object" && value !== null && Array.isArray((value as { messages?: unknown }).messages) ? (value as { messages: unknown[] }).messages : null;
  if (!list) throw new ApiError(400, "invalid_field", "the body must be an array of messages or { messages: [...] }", "messages");
  if (list.length === 0) throw new ApiError(400, "missing_field", "messages must not be empty", "messages");
  if (list.length > MAX_BATCH_MESSAGES) throw new ApiError(422, "too_many_recipients", `at most ${MAX_BATCH_MESSAGES} messages per batch`, "messages");
  return idempotent(c, bytes, async () => {
    // The limit counts recipients; a message that will be refused for its content still counts one.
    const validated = list.map((item) => validateSendRequest(item, { maxRecipients: ctx.config.maxRecipients }));
    await enforceRateLimit(c, validated.reduce((n, v) => n + (v.ok ? v.value.recipients.length : 1), 0));
    const results: unknown[] = [];
    let accepted = 0;
    // The batch's delivery jobs go to the queue together at the end, several per Queue message (issue 16).
    const outbox = batchOutbox(ctx.env);
    const batchCtx = { ...ctx, env: outbox.env };
    for (const [index, item] of list.entries()) {
      try {
        const v = validated[index]!;
        if (!v.ok) throw refusalOf(v.error);
        withDefaultStream(ctx, item, v.value);
        const r = await sendRequest(batchCtx, v.value);
        accepted++;
        results.push({ index, ...r });
      } catch (thrown) {
        const e = thrown instanceof Refusal ? apiErrorOf(thrown) : thrown;
        if (!(e instanceof ApiError)) throw e;
        results.push({ index, status: "failed", error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}), status: e.status } });
      }
    }
    await flushBatchOutbox(ctx.env, outbox);
    return c.json({ accepted, failed: list.length - accepted, results }, 200);
  });
});

/** Splits a header that may be given several times (the Fetch API joins repeats with ", "). */
function listHeader(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

messages.post("/v1/messages/raw", requireApiKey, async (c) => {
  const ctx = sendContext(c);
  const type = c.req.header("content-type") ?? "";
  if (!/^message\/rfc822\s*(;|$)/i.test(type)) throw new ApiError(415, "unsupported_media_type", "send the message with Content-Type: message/rfc822");
  const stream = c.req.header("x-stream") ?? ctx.tenant.defaultStream;
  if (stream !== "transactional" && stream !== "broadcast") throw new ApiError(400, "invalid_field", 'X-Stream must be "transactional" or "broadcast"', "stream");
  const tags = listHeader(c.req.header("x-tags"));
  if (tags.length > 10 || tags.some((t) => !/^[\x21-\x7e]{1,64}$/.test(t))) throw new ApiError(400, "invalid_field", "X-Tags: up to 10 comma-separated tags of 1-64 printable characters", "tags");
  const to = listHeader(c.req.header("x-envelope-to"));
  const from = c.req.header("x-envelope-from");
  const helo = c.req.header("x-client-helo");
  if (helo !== undefined && !/^[A-Za-z0-9.:\-[\]_]{1,255}$/.test(helo)) throw new ApiError(400, "invalid_field", "X-Client-Helo must be a host name or address literal", "client_helo");
  const protocol = c.req.header("x-client-protocol");
  if (protocol !== undefined && !/^(ESMTP|ESMTPS|ESMTPA|ESMTPSA|SMTP|LMTP)$/.test(protocol)) throw new ApiError(400, "invalid_field", "X-Client-Protocol must be an RFC 3848 protocol name", "client_protocol");
  const requireTlsHeader = c.req.header("x-require-tls");
  if (requireTlsHeader !== undefined && !/^\s*(yes|no)\s*$/i.test(requireTlsHeader)) throw new ApiError(400, "invalid_field", 'X-Require-TLS must be "yes" or "no"', "require_tls");
  const requireTls = requireTlsHeader !== undefined && /yes/i.test(requireTlsHeader);
  const bytes = await readBodyLimited(c.req.raw, ctx.config.maxMessageBytes);
  const envelopeKey = new TextEncoder().encode(`${from ?? ""}\n${to.join(",")}\n${stream}\n${tags.join(",")}\n${requireTls ? "requiretls\n" : ""}`);
  const keyed = new Uint8Array(envelopeKey.byteLength + bytes.byteLength);
  keyed.set(envelopeKey);
  keyed.set(bytes, envelopeKey.byteLength);
  return idempotent(c, keyed, async () => {
    // Recipients count (capped at what accept will take; more is refused right after).
    await enforceRateLimit(c, Math.max(1, Math.min(to.length, ctx.config.maxRecipients)));
    const result = await acceptRaw(
      { ...ctx, ...(protocol ? { protocol } : {}), ...(helo ? { clientName: helo } : {}) },
      bytes,
      { ...(from !== undefined ? { from } : {}), to, stream, tags, ...(requireTls ? { requireTls } : {}) },
    );
    return c.json(result, 202);
  });
});

messages.get("/v1/messages/:id", requireApiKey, async (c) => {
  const id = c.req.param("id");
  if (!ID.test(id)) throw new ApiError(404, "not_found", "no such message");
  const view = await getMessage(await ledgerOf(c.env, c.get("tenant").id), id, c.get("tenant").id);
  if (!view) throw new ApiError(404, "not_found", "no such message");
  return c.json(view);
});

messages.get("/v1/messages", requireApiKey, async (c) => {
  const limit = limitParam(c);
  const status = stringParam(c, "status", /^[a-z_]{1,20}$/, "a recipient status");
  if (status !== null && !STATUSES.includes(status as RecipientStatus)) throw new ApiError(400, "invalid_field", `status must be one of ${STATUSES.join(", ")}`, "status");
  const recipient = stringParam(c, "recipient", /^[^\s<>]{3,320}$/, "an address");
  const page = await listMessages(await ledgerOf(c.env, c.get("tenant").id), c.get("tenant").id, {
    recipient,
    recipientHashed: await hashedForm(c, recipient),
    tag: stringParam(c, "tag", /^[^\x00-\x1f]{1,64}$/, "a tag of 1-64 characters"),
    status: status as RecipientStatus | null,
    stream: streamParam(c),
    since: timeParam(c, "since"),
    until: timeParam(c, "until"),
    before: stringParam(c, "cursor", ID, "a cursor returned by this endpoint"),
    limit,
  });
  return c.json({ data: page, next_cursor: page.length === limit ? page[page.length - 1]!.id : null });
});

messages.get("/v1/events", requireApiKey, async (c) => {
  const limit = limitParam(c, 100, 1000);
  const cursor = stringParam(c, "cursor", /^\d{1,15}$/, "a cursor returned by this endpoint");
  const recipient = stringParam(c, "recipient", /^[^\s<>]{3,320}$/, "an address");
  const page = await listEvents(await ledgerOf(c.env, c.get("tenant").id), c.get("tenant").id, {
    type: stringParam(c, "type", /^[a-z_]{1,20}$/, "an event type"),
    messageId: stringParam(c, "message_id", ID, "a message id"),
    recipient,
    recipientHashed: await hashedForm(c, recipient),
    stream: streamParam(c),
    since: timeParam(c, "since"),
    after: cursor === null ? null : Number(cursor),
    limit,
  });
  // The cursor always moves forward, so a client can poll with the last one it got.
  return c.json({ data: page, next_cursor: page.length ? String(page[page.length - 1]!.id) : cursor });
});
