/**
 * `checkResponse`: validates a real response against the OpenAPI document's schema for its path, method and
 * status with a real JSON Schema (2020-12) validator, @cfworker/json-schema, which runs inside workerd (it
 * compiles nothing with eval or new Function).
 */
import { Validator, type Schema } from "@cfworker/json-schema";
import { expect } from "vitest";
import { OPENAPI_DOCUMENT } from "../../src/http/openapi";

const doc = OPENAPI_DOCUMENT as unknown as {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>>;
  components: { schemas: Record<string, Schema> };
};

/** One validator per documented schema; `#/components/schemas/…` references resolve against the document's components. */
const validators = new Map<Schema, Validator>();
function validatorFor(schema: Schema): Validator {
  let validator = validators.get(schema);
  if (!validator) {
    validator = new Validator({ ...schema, components: doc.components } as Schema, "2020-12", false);
    validators.set(schema, validator);
  }
  return validator;
}

/** Problems with `value` against `schema`, as "location: error" lines; empty when it conforms. */
export function validate(schema: Schema, value: unknown): string[] {
  const result = validatorFor(schema).validate(value);
  return result.valid ? [] : result.errors.map((e) => `${e.instanceLocation}: ${e.error}`);
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
