/** Send API routes: POST /v1/messages and GET /v1/messages/:id. Thin: logic lives in accept/ and store/. */
import { Hono } from "hono";
import { acceptMessage } from "../accept/accept";
import { composeSimple } from "../accept/simple-compose";
import { loadConfig } from "../config";
import { tenantOwnsDomain } from "../store/keys";
import { getMessage } from "../store/messages";
import { requireApiKey, type AppEnv } from "./auth";
import { ApiError } from "./errors";

const ADDRESS = /^[^\s@<>()",;:\\[\]]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;

async function readJson(req: Request): Promise<unknown> {
  const type = req.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) throw new ApiError(415, "unsupported_media_type", "send JSON with Content-Type: application/json");
  const text = await req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_json", "the request body is not valid JSON");
  }
}

function str(body: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) {
    if (required) throw new ApiError(400, "missing_field", `${field} is required`, field);
    return undefined;
  }
  if (typeof v !== "string") throw new ApiError(400, "invalid_field", `${field} must be a string`, field);
  if (/[\r\n\0]/.test(v) && field !== "text" && field !== "html") throw new ApiError(400, "header_injection", `${field} must not contain CR, LF or NUL`, field);
  return v;
}

export const messages = new Hono<AppEnv>();

messages.post("/v1/messages", requireApiKey, async (c) => {
  const config = loadConfig(c.env);
  const body = await readJson(c.req.raw);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, "invalid_json", "the body must be a JSON object");
  const b = body as Record<string, unknown>;
  const from = str(b, "from", true)!;
  if (!ADDRESS.test(from)) throw new ApiError(422, "invalid_sender", "from is not a valid address", "from");
  const to = b.to;
  if (!Array.isArray(to) || to.length === 0) throw new ApiError(400, "missing_field", "to must be a non-empty array of addresses", "to");
  if (to.length > config.maxRecipients) throw new ApiError(422, "too_many_recipients", `at most ${config.maxRecipients} recipients`, "to");
  to.forEach((a, i) => {
    if (typeof a !== "string" || !ADDRESS.test(a)) throw new ApiError(422, "invalid_recipient", "not a valid address", `to[${i}]`);
  });
  const subject = str(b, "subject", true)!;
  const text = str(b, "text", false);
  const html = str(b, "html", false);
  if (text === undefined && html === undefined) throw new ApiError(400, "missing_field", "text or html is required", "text");
  const tenant = c.get("tenant");
  const fromDomain = from.slice(from.lastIndexOf("@") + 1).toLowerCase();
  if (!(await tenantOwnsDomain(c.env.DB, tenant.id, fromDomain))) {
    throw new ApiError(403, "sender_domain_not_allowed", `this key may not send from ${fromDomain}`, "from");
  }
  const composed = composeSimple({ from, to: to as string[], subject, text, html }, fromDomain);
  const result = await acceptMessage(c.env, {
    tenantId: tenant.id,
    mailFrom: from,
    headerFrom: from,
    subject,
    messageIdHeader: composed.messageId,
    raw: composed.raw,
    recipients: to as string[],
  });
  return c.json({ id: result.id, status: "accepted", recipients: result.recipients }, 202);
});

messages.get("/v1/messages/:id", requireApiKey, async (c) => {
  const view = await getMessage(c.env.DB, c.req.param("id"), c.get("tenant").id);
  if (!view) throw new ApiError(404, "not_found", "no such message");
  return c.json(view);
});
