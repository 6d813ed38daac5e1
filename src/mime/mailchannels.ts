/**
 * Maps a MailChannels Email API request (`POST /tx/v1/send`) onto the relay's own send
 * requests, one per personalization, so Workers apps that used MailChannels only change
 * the base URL and key.
 *
 * Request shape (docs.mailchannels.com, "Send an Email"): `personalizations[]` with `to`,
 * `cc`, `bcc`, `from`, `reply_to`, `subject`, `headers`, `dkim_domain`, `dkim_selector`,
 * `dkim_private_key`, `dynamic_template_data`, `envelope_from`; top-level `from`, `reply_to`, `subject`,
 * `content[] {type, value, template_type}`, `headers`, `attachments[] {content, filename, type}`,
 * `dkim_*`, `campaign_id`, `transactional`, `tracking_settings`, `envelope_from` (and the older
 * spelling `mailfrom`). The envelope sender's name is ignored, as MailChannels documents.
 * Personalization values override top-level ones; headers merge case-insensitively with the
 * personalization winning, as MailChannels documents.
 *
 * Mustache content (`template_type: "mustache"`) is rendered with variable interpolation
 * (`{{name}}`, `{{{name}}}`, `{{&name}}`, dotted names, comments); sections and partials are
 * refused with a clear error rather than rendered wrongly. `{{name}}` is HTML-escaped in
 * text/html content only. `tracking_settings.{open,click}_tracking.enable` become the relay's own
 * `track_opens`/`track_clicks` for the message. `?dry-run=true` is handled by the route.
 */
import * as v from "valibot";
import { type Mailbox, parseAddress } from "./address.js";
import { HERE, type SchemaMessage, bounded, issueToRefusal, objectMessage, objectOf, refine, says, strictJson } from "./body-schema.js";
import { hasLoneSurrogate } from "./encoding.js";
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
} from "./validate.js";

/** MailChannels documents at most 1000 personalizations per request. */
export const MAX_MAILCHANNELS_PERSONALIZATIONS = 1000;
/** MailChannels: campaign_id is up to 48 UTF-8 characters without spaces. */
export const MAX_CAMPAIGN_ID_CHARS = 48;
/** An RSA-4096 PKCS#8 key in PEM is about 3.3 KB; anything much larger is not a key. */
export const MAX_DKIM_PRIVATE_KEY_CHARS = 8192;

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

// ---------------------------------------------------------------------------------------------------------
// The schema: the one description of the MailChannels body. It validates (run piece by piece below, in the order
// MailChannels' checks have always run, so the first problem reported is the same), types what the mapping reads,
// and is converted into the OpenAPI document (src/http/openapi.ts). Values that are copied into the relay's own
// send request (addresses, subject, header values, attachment content) are checked there, by the send request's
// schema, and their refusals are named with MailChannels' paths (`mapFieldPath`); here they are `passedOn`.

/** A value the send request's schema checks once it is mapped; its JSON Schema type is `type`. */
function passedOn(type: string | string[], description?: string) {
  return v.pipe(v.unknown(), v.metadata(description === undefined ? { type } : { type, description }));
}

/** Required: present and not null (MailChannels treats null as absent). */
function required(type: string, message: string) {
  return v.pipe(
    v.unknown(),
    v.check((value) => value !== undefined && value !== null, says("missing_field", message)),
    v.metadata({ type }),
  );
}

/** MailChannels' address object `{ email, name }`. */
function addressObject<N extends v.GenericSchema>(name: N) {
  return strictJson(
    v.strictObject({ email: required("string", "email is required"), name: v.optional(name) }, objectMessage("address must be an object { email, name }", "invalid_field", { email: "email is required" })),
  );
}

const mcAddress = addressObject(passedOn(["string", "null"]));

const mcAddressList = v.nullish(v.array(mcAddress, says("invalid_field", "must be an array of { email, name }")));

/** `envelope_from` (MailChannels) or `mailfrom` (its older name): only the address is used. */
const mcEnvelopeFrom = v.pipe(
  addressObject(v.pipe(v.unknown(), v.description("ignored"))),
  refine((value): Mailbox => {
    const parsed = typeof value.email === "string" ? parseAddress(value.email) : null;
    if (!parsed || !parsed.ok) refuse("invalid_sender", parsed && !parsed.ok ? parsed.error.message : "email must be a string", "email");
    return parsed.value;
  }),
  v.description("The envelope sender (MAIL FROM); its name is ignored."),
);

const mcHeaders = v.nullish(
  v.pipe(objectOf(v.record(v.string(), v.string(), says("invalid_field", "headers must be an object of strings"))), v.description("Merged case-insensitively, the personalization's winning.")),
);

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/i;
const SELECTOR = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/i;
const DKIM_KEY_MESSAGE = says("invalid_field", "dkim_private_key must be a base64 or PEM private key");

/** The DKIM fields, at the top and in a personalization (which wins). Which of them go together is checked in `readDkim`. */
const dkimEntries = {
  dkim_domain: v.nullish(v.pipe(v.string(says("invalid_field", "dkim_domain must be a domain name")), v.regex(DOMAIN, says("invalid_field", "dkim_domain must be a domain name")))),
  dkim_selector: v.nullish(v.pipe(v.string(says("invalid_field", "dkim_selector must be a DNS label")), v.regex(SELECTOR, says("invalid_field", "dkim_selector must be a DNS label")))),
  dkim_private_key: v.nullish(
    v.pipe(
      v.string(DKIM_KEY_MESSAGE),
      v.check((key) => key.length > 0 && key.length <= MAX_DKIM_PRIVATE_KEY_CHARS && /^[A-Za-z0-9+/=\s-]+$/.test(key), DKIM_KEY_MESSAGE),
      v.description("base64 of the PKCS#8 DER key, or PEM; absent: the key the relay holds for the domain and selector"),
    ),
  ),
};

/** `dynamic_template_data`: an object, or (as MailChannels' generated sample sends it) a JSON string of one. */
const mcTemplateData = v.nullish(
  v.pipe(
    v.unknown(),
    refine((value): TemplateData => {
      if (typeof value === "string") {
        try {
          const parsed: unknown = JSON.parse(value);
          if (isRecord(parsed)) return parsed;
        } catch {
          // refused below
        }
      }
      if (!isRecord(value)) refuse("invalid_field", "dynamic_template_data must be an object", HERE);
      return value;
    }),
    v.metadata({ type: ["object", "string"], description: "Values for {{variables}} in mustache content." }),
  ),
);

const personalizationSchema = strictJson(
  v.strictObject(
    {
      to: mcAddressList,
      cc: mcAddressList,
      bcc: mcAddressList,
      from: v.nullish(mcAddress),
      reply_to: v.nullish(mcAddress),
      subject: v.nullish(passedOn("string")),
      headers: mcHeaders,
      ...dkimEntries,
      dynamic_template_data: mcTemplateData,
      envelope_from: v.nullish(mcEnvelopeFrom),
    },
    objectMessage("personalization must be an object", "invalid_field"),
  ),
);

const CONTENT_TYPE_MESSAGE = (issue: v.BaseIssue<unknown>) => says(issue.input === null ? "missing_field" : "invalid_field", "content type is required");
const CONTENT_VALUE_MESSAGE = (issue: v.BaseIssue<unknown>) => says(issue.input === null ? "missing_field" : "invalid_field", "content value must be a string");

const contentItemSchema = strictJson(
  v.strictObject(
    {
      type: v.pipe(
        v.string(CONTENT_TYPE_MESSAGE),
        v.transform((type) => type.toLowerCase().split(";")[0]!.trim()),
        v.check((type) => type === "text/plain" || type === "text/html", says("invalid_field", "content type must be text/plain or text/html")),
        v.metadata({ examples: ["text/plain", "text/html"] }),
      ),
      value: v.string(CONTENT_VALUE_MESSAGE),
      template_type: v.nullish(v.literal("mustache", says("invalid_field", 'template_type must be "mustache"'))),
    },
    objectMessage("content item must be an object { type, value }", "invalid_field", { type: "content type is required", value: "content value must be a string" }),
  ),
);

/** A list that must hold at least one item (its shape is checked before its items are read). */
function nonEmptyList<S extends v.GenericSchema>(item: S, message: string) {
  return v.pipe(v.array(item, message), v.minLength(1, message));
}

const attachmentItemSchema = v.pipe(
  strictJson(
    v.strictObject(
      { content: v.optional(passedOn("string", "base64")), filename: v.optional(passedOn("string")), type: v.optional(passedOn("string", "MIME type")) },
      objectMessage("attachment must be an object { content, filename, type }", "invalid_attachment"),
    ),
  ),
  v.metadata({ required: ["content", "filename"] }),
);

const trackingSwitch = (key: string) =>
  v.nullish(strictJson(v.strictObject({ enable: v.nullish(v.boolean(says("invalid_field", "enable must be a boolean"))) }, objectMessage(`${key} must be an object { enable }`, "invalid_field"))));

const CAMPAIGN_ID_MESSAGE = says("invalid_field", `campaign_id must be 1-${MAX_CAMPAIGN_ID_CHARS} characters without spaces`);

function personalizationsSchema<S extends v.GenericSchema>(item: S, max: number) {
  const message = says("invalid_field", "personalizations must be a non-empty array");
  return v.pipe(bounded(v.array(item, message), max, says("too_many_recipients", `more than ${max} personalizations`)), v.minLength(1, message));
}

/**
 * The MailChannels `/tx/v1/send` body. `maxPersonalizations`: the most personalizations one request may hold.
 * Fields are checked in the order `mapOrThrow` reads them (not the order here); the first problem is reported.
 */
export function mailChannelsSchema(maxPersonalizations = MAX_MAILCHANNELS_PERSONALIZATIONS) {
  return strictJson(
    v.strictObject(
      {
        personalizations: personalizationsSchema(personalizationSchema, maxPersonalizations),
        from: v.nullish(mcAddress),
        reply_to: v.nullish(mcAddress),
        subject: v.nullish(passedOn("string")),
        content: nonEmptyList(contentItemSchema, says("invalid_field", "content must be a non-empty array")),
        headers: mcHeaders,
        attachments: v.nullish(v.array(attachmentItemSchema, says("invalid_field", "attachments must be an array"))),
        tracking_settings: v.nullish(
          strictJson(v.strictObject({ click_tracking: trackingSwitch("click_tracking"), open_tracking: trackingSwitch("open_tracking") }, objectMessage("tracking_settings must be an object", "invalid_field"))),
        ),
        campaign_id: v.nullish(v.pipe(v.string(CAMPAIGN_ID_MESSAGE), v.check((id) => id !== "" && [...id].length <= MAX_CAMPAIGN_ID_CHARS && !/[\s\x00-\x1f\x7f]/.test(id), CAMPAIGN_ID_MESSAGE))),
        ...dkimEntries,
        transactional: v.nullish(v.pipe(v.boolean(says("invalid_field", "transactional must be a boolean")), v.description("false: the broadcast stream"))),
        envelope_from: v.nullish(mcEnvelopeFrom),
        mailfrom: v.nullish(v.pipe(mcEnvelopeFrom, v.description("The older name of envelope_from; give one of them."))),
      },
      objectMessage("body must be a JSON object", "invalid_json"),
    ),
  );
}

type MailChannelsSchema = ReturnType<typeof mailChannelsSchema>;
type TopEntries = MailChannelsSchema["entries"];

/** Only the shape of an object schema: an object, without unknown keys (its values are checked one by one after). */
function shapeOf<E extends v.ObjectEntries>(schema: v.StrictObjectSchema<E, SchemaMessage>) {
  return strictJson(v.strictObject(Object.fromEntries(Object.keys(schema.entries).map((k) => [k, v.optional(v.unknown())])), schema.message));
}

/** The path of `field` (relative to a value) below `base`, the way MailChannels' paths are written. */
function below(base: string, field: string): string {
  if (field === "") return base;
  if (base === "") return field;
  return field.startsWith("[") ? `${base}${field}` : `${base}.${field}`;
}

/** A valibot issue's path, relative to the value checked, with keys as given (`to[1].email`, `headers.X Foo`). */
function relativeField(issue: v.BaseIssue<unknown>): string {
  let field = "";
  for (const item of issue.path ?? []) {
    const key = (item as { key: unknown }).key;
    field = typeof key === "number" ? `${field}[${key}]` : below(field, String(key));
  }
  return field;
}

const CODES: readonly SendErrorCode[] = ["invalid_json", "invalid_utf8", "unknown_field", "missing_field", "invalid_field", "invalid_attachment", "invalid_sender", "too_many_recipients"];

/** Checks `value` (at `path` in the body) with one piece of the schema; refuses with the first problem. */
function check<S extends v.GenericSchema>(schema: S, value: unknown, path: string): v.InferOutput<S> {
  const parsed = v.safeParse(schema, value, { abortEarly: true });
  if (parsed.success) return parsed.output;
  const issue = parsed.issues[0]!;
  const refusal = issueToRefusal(issue, CODES, "invalid_field");
  let said: { field?: unknown } = {};
  try {
    said = JSON.parse(issue.message) as { field?: unknown };
  } catch {
    // valibot's own message: the issue's path says where
  }
  throw new Refusal({ ...refusal, field: below(path, typeof said.field === "string" ? below(relativeField(issue), said.field) : relativeField(issue)) });
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/** MailChannels address object {email, name} → our {address, name}, once `mcAddress` accepted it. */
function mapAddress(value: v.InferOutput<typeof mcAddress>): { address: unknown; name?: unknown } {
  return present(value.name) ? { address: value.email, name: value.name } : { address: value.email };
}

function mapAddressList(value: unknown, path: string): { address: unknown; name?: unknown }[] | undefined {
  const list = check(mcAddressList, value, path);
  return list ? list.map(mapAddress) : undefined;
}

function readHeaders(value: unknown, path: string): Map<string, { name: string; value: unknown; path: string }> {
  const out = new Map<string, { name: string; value: unknown; path: string }>();
  const headers = check(mcHeaders, value, path);
  if (!headers) return out;
  for (const [name, v] of Object.entries(headers)) out.set(name.toLowerCase(), { name, value: v, path: `${path}.${name}` });
  return out;
}

function readDkim(fields: Record<string, unknown>, fallback: Record<string, unknown>, path: string, topPath: string): MailChannelsDkim | undefined {
  const pick = (key: keyof typeof dkimEntries): { value: unknown; path: string; key: keyof typeof dkimEntries } =>
    present(fields[key]) ? { value: fields[key], path: `${path}.${key}`, key } : { value: fallback[key], path: topPath === "" ? key : `${topPath}.${key}`, key };
  const domain = pick("dkim_domain");
  const selector = pick("dkim_selector");
  const key = pick("dkim_private_key");
  if (![domain, selector, key].some((f) => present(f.value))) return undefined;
  // As MailChannels: a key needs its domain and selector; a domain needs a selector; a selector alone (or with a
  // domain) names a key held by the relay, for the From domain when no domain is given.
  if (present(key.value) && !present(domain.value)) refuse("missing_field", "dkim_private_key needs dkim_domain and dkim_selector", domain.path);
  if (!present(selector.value)) refuse("missing_field", "dkim_domain and dkim_private_key need dkim_selector", selector.path);
  const [domainValue, selectorValue, keyValue] = [domain, selector, key].map((f) => check(dkimEntries[f.key], f.value, f.path));
  const out: MailChannelsDkim = { selector: selectorValue! };
  if (typeof domainValue === "string") out.domain = domainValue.toLowerCase();
  if (typeof keyValue === "string") out.privateKey = keyValue;
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

interface ContentItem {
  type: "text/plain" | "text/html";
  value: string;
  mustache: boolean;
  path: string;
}

/** `content`: its shape, then each item; a second part of the same type is refused once the item's type is read. */
function readContent(value: unknown): ContentItem[] {
  if (!present(value)) refuse("missing_field", "content is required", "content");
  const items = check(contentList, value, "content");
  const seen = new Set<string>();
  return items.map((item, i): ContentItem => {
    const path = `content[${i}]`;
    const parsed = v.safeParse(contentItemSchema, item, { abortEarly: true });
    const failedAt = parsed.success ? null : relativeField(parsed.issues[0]!);
    // The item's shape and type come first, then a repeated type, then its value and template type.
    if (failedAt === null || failedAt === "value" || failedAt === "template_type") {
      const type = (item as { type: string }).type.toLowerCase().split(";")[0]!.trim();
      if (seen.has(type)) refuse("invalid_field", `content has more than one ${type} part`, `${path}.type`);
      seen.add(type);
    }
    const content = check(contentItemSchema, item, path);
    return { type: content.type as ContentItem["type"], value: content.value, mustache: content.template_type === "mustache", path };
  });
}

/** `tracking_settings.{open,click}_tracking.enable` as the relay's `track_opens`/`track_clicks`. */
function readTracking(value: unknown, schema: TopEntries["tracking_settings"]): { track_opens?: boolean; track_clicks?: boolean } {
  const settings = check(schema, value, "tracking_settings");
  const choice: { track_opens?: boolean; track_clicks?: boolean } = {};
  if (typeof settings?.click_tracking?.enable === "boolean") choice.track_clicks = settings.click_tracking.enable;
  if (typeof settings?.open_tracking?.enable === "boolean") choice.track_opens = settings.open_tracking.enable;
  return choice;
}

/**
 * Validate a MailChannels `/tx/v1/send` body and turn it into one validated send request per
 * personalization. Errors use the relay's error shape with MailChannels field paths
 * (`personalizations[0].to[1].email`, `content[0].value`). Never throws.
 */
export function fromMailChannelsRequest(body: unknown, limits: MailChannelsLimits = {}): ValidationResult<MailChannelsSend[]> {
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

/** The schema and the shallow pieces the mapping checks first: the body's keys, the personalizations list's shape. */
function compileSchema(maxPersonalizations: number) {
  const schema = mailChannelsSchema(maxPersonalizations);
  return { schema, shape: shapeOf(schema), personalizations: personalizationsSchema(v.unknown(), maxPersonalizations) };
}

/** Compiled schemas by the most personalizations allowed (configuration: only ever one or two). */
const compiledSchemas = new Map<number, ReturnType<typeof compileSchema>>();

function compiledSchema(maxPersonalizations: number): ReturnType<typeof compileSchema> {
  let compiled = compiledSchemas.get(maxPersonalizations);
  if (!compiled) {
    if (compiledSchemas.size >= 8) compiledSchemas.clear();
    compiledSchemas.set(maxPersonalizations, (compiled = compileSchema(maxPersonalizations)));
  }
  return compiled;
}

const personalizationShape = shapeOf(personalizationSchema);
const contentList = nonEmptyList(v.unknown(), says("invalid_field", "content must be a non-empty array"));

function mapOrThrow(input: unknown, limits: MailChannelsLimits): MailChannelsSend[] {
  const body = jsonObject(input);
  const badUtf8 = firstLoneSurrogate(body, "", 0);
  if (badUtf8 !== null) refuse("invalid_utf8", "string is not valid UTF-8 (unpaired surrogate)", badUtf8);
  const compiled = compiledSchema(limits.maxPersonalizations ?? MAX_MAILCHANNELS_PERSONALIZATIONS);
  const top = compiled.schema.entries;
  check(compiled.shape, body, "");

  if (!present(body.personalizations)) refuse("missing_field", "personalizations is required", "personalizations");
  // The list's shape and length first; each personalization is read in its turn below.
  const personalizations = check(compiled.personalizations, body.personalizations, "personalizations");

  const content = readContent(body.content);
  const attachments = check(top.attachments, body.attachments, "attachments")?.map((item) =>
    present(item.type) ? { filename: item.filename, content: item.content, content_type: item.type } : { filename: item.filename, content: item.content },
  );
  const topHeaders = readHeaders(body.headers, "headers");
  const tracking = readTracking(body.tracking_settings, top.tracking_settings);
  const campaignId = check(top.campaign_id, body.campaign_id, "campaign_id") ?? undefined;
  check(top.transactional, body.transactional, "transactional");
  if (present(body.envelope_from) && present(body.mailfrom)) refuse("invalid_field", "give envelope_from or mailfrom, not both", "mailfrom");
  const topEnvelopeField = present(body.envelope_from) ? "envelope_from" : "mailfrom";
  const topEnvelope = check(top[topEnvelopeField], body[topEnvelopeField], topEnvelopeField) ?? undefined;
  const ignored: string[] = [];

  return personalizations.map((p, i): MailChannelsSend => {
    const pPath = `personalizations[${i}]`;
    const fields = personalizationSchema.entries;
    check(personalizationShape, p, pPath);
    const own = p as Record<string, unknown>;

    const fromPath = present(own.from) ? `${pPath}.from` : "from";
    const replyPath = present(own.reply_to) ? `${pPath}.reply_to` : "reply_to";
    const subjectPath = present(own.subject) ? `${pPath}.subject` : "subject";
    const fromValue = present(own.from) ? own.from : body.from;
    const replyValue = present(own.reply_to) ? own.reply_to : body.reply_to;
    const subject = present(own.subject) ? own.subject : body.subject;
    if (!present(fromValue)) refuse("missing_field", "from is required", "from");
    if (!present(subject)) refuse("missing_field", "subject is required", "subject");

    const headers = new Map(topHeaders);
    for (const [k, v] of readHeaders(own.headers, `${pPath}.headers`)) headers.set(k, v);
    const data = check(fields.dynamic_template_data, own.dynamic_template_data, `${pPath}.dynamic_template_data`) ?? {};

    const request: Record<string, unknown> = {
      from: mapAddress(check(mcAddress, fromValue, fromPath)),
      subject,
      headers: Object.fromEntries([...headers.values()].map((h) => [h.name, h.value])),
      stream: body.transactional === false ? "broadcast" : "transactional",
    };
    const to = mapAddressList(own.to, `${pPath}.to`);
    if (to) request.to = to;
    const cc = mapAddressList(own.cc, `${pPath}.cc`);
    if (cc) request.cc = cc;
    const bcc = mapAddressList(own.bcc, `${pPath}.bcc`);
    if (bcc) request.bcc = bcc;
    if (present(replyValue)) request.reply_to = mapAddress(check(mcAddress, replyValue, replyPath));
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
    const dkim = readDkim(own, body, pPath, "");
    if (dkim) send.dkim = dkim;
    const ownEnvelope = check(fields.envelope_from, own.envelope_from, `${pPath}.envelope_from`) ?? undefined;
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

export interface PathContext {
  pPath: string;
  fromPath: string;
  replyPath: string;
  subjectPath: string;
  content: ContentItem[];
  headers: Map<string, { name: string; path: string }>;
}

/** Translate a field path of our own request shape back into the MailChannels request's. */
export function mapFieldPath(field: string, ctx: PathContext): string {
  const m = /^([a-z_]+)(.*)$/.exec(field);
  if (!m) return field;
  const [, head = "", rest = ""] = m;
  const tail = rest.replace(/\.address$/, ".email");
  switch (head) {
    case "from":
      return ctx.fromPath + tail;
    case "reply_to":
      return ctx.replyPath + tail;
    case "subject":
      return ctx.subjectPath;
    case "to":
    case "cc":
    case "bcc":
      return `${ctx.pPath}.${head}${tail}`;
    case "text":
    case "html": {
      const item = ctx.content.find((c) => (c.type === "text/html") === (head === "html"));
      return item ? `${item.path}.value` : "content";
    }
    case "headers": {
      const name = rest.startsWith(".") ? rest.slice(1) : "";
      return ctx.headers.get(name.toLowerCase())?.path ?? "headers";
    }
    case "attachments":
      return field.replace(/\.content_type$/, ".type");
    case "metadata":
      return "campaign_id";
    case "track_opens":
      return "tracking_settings.open_tracking.enable";
    case "track_clicks":
      return "tracking_settings.click_tracking.enable";
    default:
      return field;
  }
}
