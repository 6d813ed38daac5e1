/**
 * A small JSON Schema checker for the subset the OpenAPI document uses (type, enum, const, properties, required,
 * additionalProperties, items, oneOf, $ref), and `checkResponse`, which validates a real response against the
 * document's schema for its path, method and status.
 */
import { expect } from "vitest";
import { OPENAPI_DOCUMENT } from "../../src/http/openapi";

type Schema = Record<string, unknown>;
const doc = OPENAPI_DOCUMENT as unknown as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>>; components: { schemas: Record<string, Schema> } };

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** Problems with `value` against `schema`, as JSON paths with a reason; empty when it conforms. */
export function validate(schema: Schema, value: unknown, path = "$"): string[] {
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.replace("#/components/schemas/", "");
    const target = doc.components.schemas[name];
    if (!target) return [`${path}: unknown $ref ${schema.$ref}`];
    return validate(target, value, path);
  }
  const errors: string[] = [];
  if (Array.isArray(schema.oneOf)) {
    const matches = (schema.oneOf as Schema[]).filter((s) => validate(s, value, path).length === 0).length;
    if (matches !== 1) errors.push(`${path}: matches ${matches} of the oneOf schemas`);
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    const t = typeOf(value);
    if (!types.includes(t) && !(t === "integer" && types.includes("number"))) return [...errors, `${path}: expected ${types.join("|")}, got ${t}`];
  }
  if ("const" in schema && value !== schema.const) errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${path}: ${JSON.stringify(value)} not in enum`);
  if (typeOf(value) === "object" && (schema.properties || schema.additionalProperties !== undefined || schema.required)) {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) errors.push(`${path}: missing ${r}`);
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) errors.push(...validate(props[k]!, v, `${path}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property ${k}`);
      else if (typeof schema.additionalProperties === "object") errors.push(...validate(schema.additionalProperties as Schema, v, `${path}.${k}`));
    }
  }
  if (Array.isArray(value) && schema.items) value.forEach((v, i) => errors.push(...validate(schema.items as Schema, v, `${path}[${i}]`)));
  if (typeof value === "string" && schema.format === "date-time" && Number.isNaN(Date.parse(value))) errors.push(`${path}: not a date-time`);
  return errors;
}

/** The document's path template matching a concrete path (`/v1/messages/abc` -> `/v1/messages/{id}`). */
function templateFor(path: string): string | undefined {
  const clean = path.split("?")[0]!;
  return Object.keys(doc.paths).find((t) => new RegExp(`^${t.replace(/\{[^}]+\}/g, "[^/]+")}$`).test(clean) && (t.includes("{") ? !Object.keys(doc.paths).includes(clean) : true));
}

/** Asserts that the response is documented for this path/method/status and its JSON body matches the schema. Returns the body. */
export async function checkResponse<T = unknown>(res: Response, method: string, path: string): Promise<T> {
  const template = templateFor(path);
  expect(template, `no OpenAPI path for ${path}`).toBeDefined();
  const op = doc.paths[template!]![method.toLowerCase()];
  expect(op, `no OpenAPI operation ${method} ${template}`).toBeDefined();
  const documented = op!.responses[String(res.status)];
  expect(documented, `${method} ${template} does not document status ${res.status}`).toBeDefined();
  const body = (await res.clone().json()) as T;
  const schema = documented!.content?.["application/json"]?.schema;
  expect(schema, `${method} ${template} ${res.status} has no JSON schema`).toBeDefined();
  expect(validate(schema!, body), `${method} ${path} ${res.status}: ${JSON.stringify(body).slice(0, 500)}`).toEqual([]);
  return body;
}
