/**
 * The pieces every JSON request body schema is built from (the send request in validate.ts, the admin and
 * settings bodies in http/bodies.ts). A body is described once, as a valibot schema: it validates, types the
 * handler's value and is converted into the OpenAPI document. Each schema carries the closed error code of
 * its refusal in its message (`says`), so a refusal keeps the documented `{ code, field, message }`; domain
 * checks run as refinements (`refine`) that call `refuse`-style functions throwing a `Refusal`.
 *
 * Valibot's own object and union schemas differ from what the error codes document in four ways, fixed by
 * wrappers that keep the wrapped schema (so its JSON Schema is unchanged): arrays are not objects
 * (`strictJson`, `objectOf`), unknown keys come first (`strictJson`), a union reports its option's precise
 * problem (`byKind`), and a list's length is checked before its items (`bounded`).
 */
import * as v from "valibot";

/** Thrown by a domain check to refuse a body: the single catch of a validator (or `refine`) turns it into its answer. */
export class Refusal<C extends string = string> {
  constructor(readonly error: { code: C; message: string; field: string }) {}
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The JSON path of `key` under `parent`: `a.b`, or `a["odd key"]` for keys that are not plain identifiers. */
export function fieldPath(parent: string, key: string): string {
  // Keys that are not plain identifiers are bracket-quoted so the path stays unambiguous.
  const plain = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  if (plain.startsWith('"')) return parent === "" ? `[${plain}]` : `${parent}[${plain}]`;
  return parent === "" ? plain : `${parent}.${plain}`;
}

/**
 * A refusal carried through valibot as an issue message, so the closed code and (when the schema's own path
 * would not say it the documented way) the field survive. `issueToRefusal` decodes it.
 */
export function says(code: string, message: string, field?: string): string {
  return JSON.stringify(field === undefined ? { code, message } : { code, message, field });
}

/** The message of an object schema's issues: wrong type, a missing required key, or an unknown key. */
export function objectMessage(notObject: string, notObjectCode: string, missing: Record<string, string> = {}): (issue: v.BaseIssue<unknown>) => string {
  return (issue) => {
    if (issue.expected === "never") return says("unknown_field", `unknown field ${JSON.stringify(issue.input)}`);
    if (issue.expected?.startsWith('"')) {
      const key = issue.expected.slice(1, -1);
      return says("missing_field", missing[key] ?? `${key} is required`);
    }
    return says(notObjectCode, notObject);
  };
}

export type SchemaMessage = string | ((issue: v.BaseIssue<unknown>) => string) | undefined;

/** An issue of `schema` made here, with the schema's own message (valibot's `_addIssue` is internal). */
function schemaIssue(schema: v.GenericSchema, input: unknown, expected: string, path?: v.IssuePathItem[]): v.BaseIssue<unknown> {
  const message = (schema as unknown as { message?: SchemaMessage }).message;
  const issue = { kind: "schema", type: schema.type, input, expected, received: typeof input, message: "" } as v.BaseIssue<unknown>;
  const text = typeof message === "function" ? message(issue) : (message ?? says("invalid_field", "must be an object"));
  return { ...issue, message: text, ...(path ? { path: path as [v.IssuePathItem, ...v.IssuePathItem[]] } : {}) };
}

/**
 * A strict object as a JSON body means it: an array is not an object (valibot's object schemas accept arrays),
 * and an unknown key is reported before any value is checked, as the error codes document.
 */
export function strictJson<S extends v.StrictObjectSchema<v.ObjectEntries, SchemaMessage>>(schema: S): S {
  const run = schema["~run"].bind(schema);
  return {
    ...schema,
    "~run"(dataset: v.UnknownDataset, config: v.Config<v.BaseIssue<unknown>>) {
      const input = dataset.value;
      if (Array.isArray(input)) return { typed: false, value: input, issues: [schemaIssue(schema, input, "Object")] } as unknown as ReturnType<S["~run"]>;
      if (isRecord(input)) {
        const unknown = Object.keys(input).find((key) => !Object.hasOwn(schema.entries, key));
        if (unknown !== undefined) {
          const path = [{ type: "object", origin: "key", input, key: unknown, value: input[unknown] }] as unknown as v.IssuePathItem[];
          return { typed: false, value: input, issues: [schemaIssue(schema, unknown, "never", path)] } as unknown as ReturnType<S["~run"]>;
        }
      }
      return run(dataset, config) as ReturnType<S["~run"]>;
    },
  };
}

/**
 * A union that picks its option by the kind of the input (string, array, object) instead of trying each:
 * valibot's union reports its own message when every option fails, hiding the option's precise issue
 * (`to[0].email` unknown). Input that fits no option gets the union's message.
 */
export function byKind<S extends v.GenericSchema & { readonly options: readonly v.GenericSchema[] }>(union: S, pick: (value: unknown) => number): S {
  const run = union["~run"].bind(union);
  return {
    ...union,
    "~run"(dataset: v.UnknownDataset, config: v.Config<v.BaseIssue<unknown>>) {
      const option = union.options[pick(dataset.value)];
      return (option ? option["~run"](dataset, config) : run(dataset, config)) as ReturnType<S["~run"]>;
    },
  };
}

/**
 * An object of arbitrary keys (headers, metadata) as a JSON object, kept as given: valibot's record drops keys
 * such as `__proto__` and `constructor`, which are ordinary (if odd) header and metadata names here. The
 * values are checked by the refinement that follows; the JSON Schema conversion sees the record.
 */
export function objectOf<S extends v.GenericSchema>(record: S): S {
  return {
    ...record,
    "~run"(dataset: v.UnknownDataset, config: v.Config<v.BaseIssue<unknown>>) {
      if (isRecord(dataset.value)) return { typed: true, value: dataset.value } as ReturnType<S["~run"]>;
      return { typed: false, value: dataset.value, issues: [schemaIssue(record, dataset.value, "Object")] } as unknown as ReturnType<S["~run"]>;
    },
  };
}

/** The field of a refusal inside a refinement that is where the schema's path says (`to[2]`, `to`). */
export const HERE = "\u0000here";

/** A domain check (or normalisation) as a valibot transformation: `refuse()` inside it becomes an issue. */
export function refine<TIn, TOut>(check: (value: TIn) => TOut): v.RawTransformAction<TIn, TOut> {
  return v.rawTransform<TIn, TOut>(({ dataset, addIssue, NEVER }) => {
    try {
      return check(dataset.value);
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      addIssue({ message: says(e.error.code, e.error.message, e.error.field === HERE ? undefined : e.error.field) });
      return NEVER;
    }
  });
}

/**
 * An array schema that refuses more than `max` items before reading any of them (a body of a million
 * tags costs one comparison, and the count is the first problem reported); the JSON Schema says maxItems.
 */
export function bounded<S extends v.ArraySchema<v.GenericSchema, SchemaMessage>>(array: S, max: number, message: string) {
  const run = array["~run"].bind(array);
  const schema = {
    ...array,
    "~run"(dataset: v.UnknownDataset, config: v.Config<v.BaseIssue<unknown>>) {
      if (Array.isArray(dataset.value) && dataset.value.length > max) {
        const issue = { kind: "validation", type: "max_length", input: dataset.value, expected: `<=${max}`, received: `${dataset.value.length}`, message };
        return { typed: false, value: dataset.value, issues: [issue] } as unknown as ReturnType<S["~run"]>;
      }
      return run(dataset, config) as ReturnType<S["~run"]>;
    },
  };
  return v.pipe(schema as S, v.metadata({ maxItems: max }));
}

/** The JSON path of a valibot issue, written the way the error codes document it (`to[2]`, `headers.X-Foo`). */
export function issueField(issue: v.BaseIssue<unknown>): string {
  let field = "";
  for (const item of issue.path ?? []) {
    const key = (item as { key: unknown }).key;
    if (typeof key === "number") field = `${field}[${key}]`;
    else if (field === "headers") field = `headers.${String(key)}`;
    else field = fieldPath(field, String(key));
  }
  return field;
}

/** A valibot issue as a refusal with one of `codes` (`fallback` for a message valibot wrote itself). */
export function issueToRefusal<C extends string>(issue: v.BaseIssue<unknown>, codes: readonly C[], fallback: C): { code: C; message: string; field: string } {
  try {
    const said = JSON.parse(issue.message) as { code?: unknown; message?: unknown; field?: unknown };
    if (typeof said.code === "string" && (codes as readonly string[]).includes(said.code) && typeof said.message === "string") {
      return { code: said.code as C, message: said.message, field: typeof said.field === "string" ? said.field : issueField(issue) };
    }
  } catch {
    // A message valibot wrote itself: a schema above without its own message.
  }
  return { code: fallback, message: issue.message, field: issueField(issue) };
}

