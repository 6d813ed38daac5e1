/**
 * The MailChannels body checker as it was written by hand before the body became a valibot schema (issue 19),
 * kept only for the differential test (test/unit/mailchannels-schema.test.ts): the schema must answer every
 * body exactly as this did. Not used by the Worker.
 */
import { type Mailbox, parseAddress } from "../../src/mime/address.js";
import { hasLoneSurrogate } from "../../src/mime/encoding.js";
import {
  type SendError,
  type SendErrorCode,
  type SendLimits,
  type SendRequest,
  type ValidationResult,
  validateSendRequest,
  Refusal,
  refuse,
  isRecord,
  jsonObject,
} from "../../src/mime/validate.js";
// Field paths are mapped back as before: the rewrite did not change the mapping, so the frozen checker shares it.
import { mapFieldPath } from "../../src/mime/mailchannels.js";

/** MailChannels documents at most 1000 personalizations per request. */
const MAX_MAILCHANNELS_PERSONALIZATIONS = 1000;
/** MailChannels: campaign_id is up to 48 UTF-8 characters without spaces. */
const MAX_CAMPAIGN_ID_CHARS = 48;
/** An RSA-4096 PKCS#8 key in PEM is about 3.3 KB; anything much larger is not a key. */
const MAX_DKIM_PRIVATE_KEY_CHARS = 8192;

export interface MailChannelsDkim {
  /** Absent: the From domain (MailChannels takes it from `from.email` when only a selector is given). */
  domain?: string;
  selector: string;
  /**
   * As given: base64 of the DER key, or PEM. The route decides whether this tenant may use it. Absent: sign with
   * the key the relay holds for this domain and selector (MailChannels' keys stored with its DKIM API).
   */
  privateKey?: string;
}

export interface MailChannelsSend {
  /** Index in `personalizations`. */
  personalization: number;
  request: SendRequest;
  dkim?: MailChannelsDkim;
  /** Envelope sender requested with `envelope_from` (or `mailfrom`), when given. */
  mailfrom?: Mailbox;
  /** Request path of that envelope sender, for errors (`envelope_from`, `personalizations[1].envelope_from`). */
  mailfromField?: string;
  campaignId?: string;
  /** Request fields that were accepted but have no effect here (none at present; kept for the response contract). */
  ignored: string[];
}

export interface MailChannelsLimits extends Partial<SendLimits> {
  maxPersonalizations?: number;
}

const TOP_FIELDS = new Set([
  "personalizations",
  "from",
  "reply_to",
  "subject",
  "content",
  "headers",
  "attachments",
  "tracking_settings",
  "campaign_id",
  "dkim_domain",
  "dkim_selector",
  "dkim_private_key",
  "transactional",
  "envelope_from",
  "mailfrom",
]);
const PERSONALIZATION_FIELDS = new Set([
  "to",
  "cc",
  "bcc",
  "from",
  "reply_to",
  "subject",
  "headers",
  "dkim_domain",
  "dkim_selector",
  "dkim_private_key",
  "dynamic_template_data",
  "envelope_from",
]);
const ADDRESS_FIELDS = new Set(["email", "name"]);
const CONTENT_FIELDS = new Set(["type", "value", "template_type"]);
const ATTACHMENT_FIELDS = new Set(["content", "filename", "type"]);
const TRACKING_FIELDS = new Set(["click_tracking", "open_tracking"]);

function checkKeys(obj: Record<string, unknown>, allowed: Set<string>, path: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) refuse("unknown_field", `unknown field ${JSON.stringify(key)}`, path === "" ? key : `${path}.${key}`);
  }
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/** MailChannels address object {email, name} → our {address, name}; unknown keys refused. */
function mapAddress(value: unknown, path: string): { address: unknown; name?: unknown } {
  if (!isRecord(value)) refuse("invalid_field", "address must be an object { email, name }", path);
  checkKeys(value, ADDRESS_FIELDS, path);
  if (!present(value.email)) refuse("missing_field", "email is required", `${path}.email`);
  return present(value.name) ? { address: value.email, name: value.name } : { address: value.email };
}

function mapAddressList(value: unknown, path: string): { address: unknown; name?: unknown }[] | undefined {
  if (!present(value)) return undefined;
  if (!Array.isArray(value)) refuse("invalid_field", "must be an array of { email, name }", path);
  return value.map((v, i) => mapAddress(v, `${path}[${i}]`));
}

function readHeaders(value: unknown, path: string): Map<string, { name: string; value: unknown; path: string }> {
  const out = new Map<string, { name: string; value: unknown; path: string }>();
  if (!present(value)) return out;
  if (!isRecord(value)) refuse("invalid_field", "headers must be an object of strings", path);
  for (const [name, v] of Object.entries(value)) out.set(name.toLowerCase(), { name, value: v, path: `${path}.${name}` });
  return out;
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/i;
const SELECTOR = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/i;

function readDkim(fields: Record<string, unknown>, fallback: Record<string, unknown>, path: string, topPath: string): MailChannelsDkim | undefined {
  const pick = (key: string): { value: unknown; path: string } =>
    present(fields[key]) ? { value: fields[key], path: `${path}.${key}` } : { value: fallback[key], path: topPath === "" ? key : `${topPath}.${key}` };
  const domain = pick("dkim_domain");
  const selector = pick("dkim_selector");
  const key = pick("dkim_private_key");
  if (![domain, selector, key].some((f) => present(f.value))) return undefined;
  // As MailChannels: a key needs its domain and selector; a domain needs a selector; a selector alone (or with a
  // domain) names a key held by the relay, for the From domain when no domain is given.
  if (present(key.value) && !present(domain.value)) refuse("missing_field", "dkim_private_key needs dkim_domain and dkim_selector", domain.path);
  if (!present(selector.value)) refuse("missing_field", "dkim_domain and dkim_private_key need dkim_selector", selector.path);
  if (present(domain.value) && (typeof domain.value !== "string" || !DOMAIN.test(domain.value))) refuse("invalid_field", "dkim_domain must be a domain name", domain.path);
  if (typeof selector.value !== "string" || !SELECTOR.test(selector.value)) refuse("invalid_field", "dkim_selector must be a DNS label", selector.path);
  const out: MailChannelsDkim = { selector: selector.value };
  if (typeof domain.value === "string") out.domain = domain.value.toLowerCase();
  if (present(key.value)) {
    if (typeof key.value !== "string" || key.value.length === 0 || key.value.length > MAX_DKIM_PRIVATE_KEY_CHARS || !/^[A-Za-z0-9+/=\s-]+$/.test(key.value)) {
      refuse("invalid_field", "dkim_private_key must be a base64 or PEM private key", key.path);
    }
    out.privateKey = key.value;
  }
  return out;
}

type TemplateData = Record<string, unknown>;

function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`=/]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function lookup(data: TemplateData, name: string): unknown {
  if (name === ".") return data;
  let current: unknown = data;
  for (const part of name.split(".")) {
    if (!isRecord(current) || !Object.prototype.hasOwnProperty.call(current, part)) return undefined;
    current = current[part];
  }
  return current;
}

function stringify(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** Mustache variable interpolation; refuses sections, partials and delimiter changes. */
function renderMustache(template: string, data: TemplateData, html: boolean, path: string): string {
  return template.replace(/\{\{(\{?)([^{}]*?)(\}?)\}\}/g, (_all, open: string, inner: string, close: string) => {
    const tag = inner.trim();
    if (open === "{" && close === "}") return stringify(lookup(data, tag));
    if (open || close) refuse("invalid_field", "unbalanced mustache tag", path);
    const sigil = tag.charAt(0);
    if (sigil === "!") return "";
    if (sigil === "&") return stringify(lookup(data, tag.slice(1).trim()));
    if ("#^/>=<$".includes(sigil)) refuse("invalid_field", "mustache sections, partials and delimiter changes are not supported; only {{variables}}", path);
    const value = stringify(lookup(data, tag));
    return html ? escapeHtml(value) : value;
  });
}

function readTemplateData(value: unknown, path: string): TemplateData {
  if (!present(value)) return {};
  if (typeof value === "string") {
    // The generated MailChannels API sample sends "{}" as a string.
    try {
      const parsed: unknown = JSON.parse(value);
      if (isRecord(parsed)) return parsed;
    } catch {
      // fall through to the refusal below
    }
  }
  if (!isRecord(value)) refuse("invalid_field", "dynamic_template_data must be an object", path);
  return value;
}

interface ContentItem {
  type: "text/plain" | "text/html";
  value: string;
  mustache: boolean;
  path: string;
}

function readContent(value: unknown): ContentItem[] {
  if (!present(value)) refuse("missing_field", "content is required", "content");
  if (!Array.isArray(value) || value.length === 0) refuse("invalid_field", "content must be a non-empty array", "content");
  const seen = new Set<string>();
  return value.map((item, i): ContentItem => {
    const path = `content[${i}]`;
    if (!isRecord(item)) refuse("invalid_field", "content item must be an object { type, value }", path);
    checkKeys(item, CONTENT_FIELDS, path);
    if (typeof item.type !== "string") refuse(present(item.type) ? "invalid_field" : "missing_field", "content type is required", `${path}.type`);
    const type = item.type.toLowerCase().split(";")[0]!.trim();
    if (type !== "text/plain" && type !== "text/html") refuse("invalid_field", "content type must be text/plain or text/html", `${path}.type`);
    if (seen.has(type)) refuse("invalid_field", `content has more than one ${type} part`, `${path}.type`);
    seen.add(type);
    if (typeof item.value !== "string") refuse(present(item.value) ? "invalid_field" : "missing_field", "content value must be a string", `${path}.value`);
    if (present(item.template_type) && item.template_type !== "mustache") refuse("invalid_field", 'template_type must be "mustache"', `${path}.template_type`);
    return { type, value: item.value, mustache: item.template_type === "mustache", path };
  });
}

function readAttachments(value: unknown): { filename: unknown; content: unknown; content_type?: unknown }[] | undefined {
  if (!present(value)) return undefined;
  if (!Array.isArray(value)) refuse("invalid_field", "attachments must be an array", "attachments");
  return value.map((item, i) => {
    const path = `attachments[${i}]`;
    if (!isRecord(item)) refuse("invalid_attachment", "attachment must be an object { content, filename, type }", path);
    checkKeys(item, ATTACHMENT_FIELDS, path);
    return present(item.type) ? { filename: item.filename, content: item.content, content_type: item.type } : { filename: item.filename, content: item.content };
  });
}

interface TrackingChoice {
  track_opens?: boolean;
  track_clicks?: boolean;
}

function readTracking(value: unknown): TrackingChoice {
  const choice: TrackingChoice = {};
  if (!present(value)) return choice;
  if (!isRecord(value)) refuse("invalid_field", "tracking_settings must be an object", "tracking_settings");
  checkKeys(value, TRACKING_FIELDS, "tracking_settings");
  for (const key of TRACKING_FIELDS) {
    const setting = value[key];
    if (!present(setting)) continue;
    if (!isRecord(setting)) refuse("invalid_field", `${key} must be an object { enable }`, `tracking_settings.${key}`);
    checkKeys(setting, new Set(["enable"]), `tracking_settings.${key}`);
    if (present(setting.enable) && typeof setting.enable !== "boolean") refuse("invalid_field", "enable must be a boolean", `tracking_settings.${key}.enable`);
    if (typeof setting.enable === "boolean") choice[key === "open_tracking" ? "track_opens" : "track_clicks"] = setting.enable;
  }
  return choice;
}

/** `envelope_from` (MailChannels) or `mailfrom` (its older name): only the address is used. */
function readEnvelopeFrom(value: unknown, path: string): Mailbox {
  const mapped = mapAddress(value, path);
  const parsed = typeof mapped.address === "string" ? parseAddress(mapped.address) : null;
  if (!parsed || !parsed.ok) refuse("invalid_sender", parsed && !parsed.ok ? parsed.error.message : "email must be a string", `${path}.email`);
  return parsed.value;
}

/**
 * Validate a MailChannels `/tx/v1/send` body and turn it into one validated send request per
 * personalization. Errors use the relay's error shape with MailChannels field paths
 * (`personalizations[0].to[1].email`, `content[0].value`). Never throws.
 */
export function handCheckedMailChannelsRequest(body: unknown, limits: MailChannelsLimits = {}): ValidationResult<MailChannelsSend[]> {
  try {
    return { ok: true, value: mapOrThrow(body, limits) };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, error: e.error };
    return { ok: false, error: { code: "invalid_field", message: "request could not be validated", field: "" } };
  }
}

function firstLoneSurrogate(value: unknown, path: string, depth: number): string | null {
  if (depth > 32) refuse("invalid_json", "body is nested too deeply", path);
  if (typeof value === "string") return hasLoneSurrogate(value) ? path : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = firstLoneSurrogate(value[i], `${path}[${i}]`, depth + 1);
      if (hit !== null) return hit;
    }
  } else if (isRecord(value)) {
    for (const [k, v] of Object.entries(value)) {
      const p = path === "" ? k : `${path}.${k}`;
      if (hasLoneSurrogate(k)) return path;
      const hit = firstLoneSurrogate(v, p, depth + 1);
      if (hit !== null) return hit;
    }
  }
  return null;
}

function mapOrThrow(input: unknown, limits: MailChannelsLimits): MailChannelsSend[] {
  const body = jsonObject(input);
  const badUtf8 = firstLoneSurrogate(body, "", 0);
  if (badUtf8 !== null) refuse("invalid_utf8", "string is not valid UTF-8 (unpaired surrogate)", badUtf8);
  checkKeys(body, TOP_FIELDS, "");

  const maxPersonalizations = limits.maxPersonalizations ?? MAX_MAILCHANNELS_PERSONALIZATIONS;
  const personalizations = body.personalizations;
  if (!present(personalizations)) refuse("missing_field", "personalizations is required", "personalizations");
  if (!Array.isArray(personalizations) || personalizations.length === 0) refuse("invalid_field", "personalizations must be a non-empty array", "personalizations");
  if (personalizations.length > maxPersonalizations) refuse("too_many_recipients", `more than ${maxPersonalizations} personalizations`, "personalizations");

  const content = readContent(body.content);
  const attachments = readAttachments(body.attachments);
  const topHeaders = readHeaders(body.headers, "headers");
  const tracking = readTracking(body.tracking_settings);
  let campaignId: string | undefined;
  if (present(body.campaign_id)) {
    if (typeof body.campaign_id !== "string" || body.campaign_id === "" || [...body.campaign_id].length > MAX_CAMPAIGN_ID_CHARS || /[\s\x00-\x1f\x7f]/.test(body.campaign_id)) {
      refuse("invalid_field", `campaign_id must be 1-${MAX_CAMPAIGN_ID_CHARS} characters without spaces`, "campaign_id");
    }
    campaignId = body.campaign_id;
  }
  if (present(body.transactional) && typeof body.transactional !== "boolean") refuse("invalid_field", "transactional must be a boolean", "transactional");
  if (present(body.envelope_from) && present(body.mailfrom)) refuse("invalid_field", "give envelope_from or mailfrom, not both", "mailfrom");
  const topEnvelopeField = present(body.envelope_from) ? "envelope_from" : "mailfrom";
  const topEnvelope = present(body[topEnvelopeField]) ? readEnvelopeFrom(body[topEnvelopeField], topEnvelopeField) : undefined;
  const ignored: string[] = [];

  return personalizations.map((p, i): MailChannelsSend => {
    const pPath = `personalizations[${i}]`;
    if (!isRecord(p)) refuse("invalid_field", "personalization must be an object", pPath);
    checkKeys(p, PERSONALIZATION_FIELDS, pPath);

    const fromPath = present(p.from) ? `${pPath}.from` : "from";
    const replyPath = present(p.reply_to) ? `${pPath}.reply_to` : "reply_to";
    const subjectPath = present(p.subject) ? `${pPath}.subject` : "subject";
    const fromValue = present(p.from) ? p.from : body.from;
    const replyValue = present(p.reply_to) ? p.reply_to : body.reply_to;
    const subject = present(p.subject) ? p.subject : body.subject;
    if (!present(fromValue)) refuse("missing_field", "from is required", "from");
    if (!present(subject)) refuse("missing_field", "subject is required", "subject");

    const headers = new Map(topHeaders);
    for (const [k, v] of readHeaders(p.headers, `${pPath}.headers`)) headers.set(k, v);
    const data = readTemplateData(p.dynamic_template_data, `${pPath}.dynamic_template_data`);

    const request: Record<string, unknown> = {
      from: mapAddress(fromValue, fromPath),
      subject,
      headers: Object.fromEntries([...headers.values()].map((h) => [h.name, h.value])),
      stream: body.transactional === false ? "broadcast" : "transactional",
    };
    const to = mapAddressList(p.to, `${pPath}.to`);
    if (to) request.to = to;
    const cc = mapAddressList(p.cc, `${pPath}.cc`);
    if (cc) request.cc = cc;
    const bcc = mapAddressList(p.bcc, `${pPath}.bcc`);
    if (bcc) request.bcc = bcc;
    if (present(replyValue)) request.reply_to = mapAddress(replyValue, replyPath);
    if (attachments) request.attachments = attachments;
    if (campaignId !== undefined) request.metadata = { campaign_id: campaignId };
    Object.assign(request, tracking);
    for (const item of content) {
      const value = item.mustache ? renderMustache(item.value, data, item.type === "text/html", `${item.path}.value`) : item.value;
      request[item.type === "text/html" ? "html" : "text"] = value;
    }

    const result = validateSendRequest(request, limits);
    if (!result.ok) {
      throw new Refusal({ ...result.error, field: mapFieldPath(result.error.field, { pPath, fromPath, replyPath, subjectPath, content, headers }) });
    }
    const send: MailChannelsSend = { personalization: i, request: result.value, ignored };
    const dkim = readDkim(p, body, pPath, "");
    if (dkim) send.dkim = dkim;
    const ownEnvelope = present(p.envelope_from) ? readEnvelopeFrom(p.envelope_from, `${pPath}.envelope_from`) : undefined;
    if (ownEnvelope) {
      send.mailfrom = ownEnvelope;
      send.mailfromField = `${pPath}.envelope_from`;
    } else if (topEnvelope) {
      send.mailfrom = topEnvelope;
      send.mailfromField = topEnvelopeField;
    }
    if (campaignId !== undefined) send.campaignId = campaignId;
    return send;
  });
}

