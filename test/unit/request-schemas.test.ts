/**
 * Each request body is described once: the OpenAPI document's request schemas are generated from the valibot
 * schemas that validate the bodies, so the document accepts every body the API accepts; and the response
 * checker the API tests use (test/workers/api-schema.ts) is a real JSON Schema validator that does fail.
 */
import { Validator, type Schema } from "@cfworker/json-schema";
import { describe, expect, it } from "vitest";
import { REQUEST_BODIES, aliasBodies, parseBody, webhookBodies } from "../../src/http/bodies.js";
import { ApiError } from "../../src/http/errors.js";
import { OPENAPI_DOCUMENT } from "../../src/http/openapi.js";
import { sendRequestSchema, validateSendRequest } from "../../src/mime/validate.js";
import { validate } from "../workers/api-schema.js";

const components = (OPENAPI_DOCUMENT as unknown as { components: { schemas: Record<string, Schema & { properties?: Record<string, unknown> }> } }).components;
const documented = (name: string) => new Validator({ $ref: `#/components/schemas/${name}`, components } as Schema, "2020-12", false);
const NOW = new Date("2026-11-28T06:00:00Z");

describe("request schemas in the OpenAPI document", () => {
  it("SendRequest is generated from the schema that validates it: same fields, strict, from required", () => {
    const send = components.schemas.SendRequest!;
    expect(Object.keys(send.properties ?? {})).toEqual(Object.keys(sendRequestSchema().entries));
    expect(send).toMatchObject({ type: "object", required: ["from"], additionalProperties: false });
    for (const name of Object.keys(REQUEST_BODIES)) expect(components.schemas[name], name).toBeDefined();
  });

  it("accepts every send request the API accepts, and refuses what the API refuses for its shape", () => {
    const doc = documented("SendRequest");
    const base = { from: "App <app@example.com>", to: ["user@example.org"], subject: "Hi", text: "Hello" };
    const values: unknown[] = [null, 1, "", "a@b.example", true, [], {}, ["a@b.example"], [1], { address: "a@b.example", name: null }, { address: 1 }, [{ address: "a@b.example", x: 1 }], { "X-A": "1" }, { k: 1 }, "2026-12-01T09:00:00Z", [{ filename: "a.txt", content: "YQ==" }], [{ filename: "a.txt", content: "YQ==", content_id: null, disposition: "inline" }], "broadcast", ["t1", "t2"]];
    let accepted = 0;
    let shapeRefused = 0;
    for (const field of [...Object.keys(sendRequestSchema().entries), "unknown"]) {
      for (const value of values) {
        const body = { ...base, [field]: value };
        const api = validateSendRequest(body, { now: NOW });
        const result = doc.validate(body);
        if (api.ok) {
          accepted++;
          expect(result.errors, `${JSON.stringify(body)} is accepted by the API`).toEqual([]);
        } else if (api.error.code === "unknown_field" || (field === "from" && api.error.code === "missing_field")) {
          shapeRefused++;
          expect(result.valid, `${JSON.stringify(body)} is refused by the API: ${api.error.code}`).toBe(false);
        }
      }
    }
    // Guard against a vacuous pass.
    expect(accepted).toBeGreaterThan(40);
    expect(shapeRefused).toBeGreaterThanOrEqual(values.length);
  });

  it("admin bodies: the document accepts what parseBody accepts, and parseBody refuses with the documented code and field", () => {
    expect(documented("TenantPatch").validate({ name: "A", rate_limit_per_minute: null, require_tls: true }).valid).toBe(true);
    expect(parseBody(REQUEST_BODIES.TenantPatch, { name: " A ", rate_limit_per_minute: null })).toEqual({ name: "A", rate_limit_per_minute: null });
    expect(documented("TenantPatch").validate({ colour: "red" }).valid).toBe(false);
    const refusal = (schema: Parameters<typeof parseBody>[0], body: unknown) => {
      try {
        parseBody(schema, body);
      } catch (e) {
        if (e instanceof ApiError) return { status: e.status, code: e.code, field: e.field };
        throw e;
      }
      return null;
    };
    expect(refusal(REQUEST_BODIES.TenantPatch, { colour: "red", name: 5 })).toEqual({ status: 400, code: "unknown_field", field: "colour" });
    expect(refusal(REQUEST_BODIES.TenantPatch, { rate_limit_per_minute: 1.5 })).toEqual({ status: 400, code: "invalid_field", field: "rate_limit_per_minute" });
    expect(refusal(REQUEST_BODIES.TenantCreate, { domains: ["a.example"] })).toEqual({ status: 400, code: "missing_field", field: "name" });
    expect(refusal(REQUEST_BODIES.TenantCreate, { name: "x", domains: ["ok.example", "not a domain"] })).toEqual({ status: 400, code: "invalid_field", field: "domains" });
    expect(refusal(REQUEST_BODIES.TenantStreamLimits, [])).toEqual({ status: 400, code: "invalid_json", field: undefined });
    expect(refusal(REQUEST_BODIES.TrackingSettingsPut, { stream: "broadcast" })).toEqual({ status: 400, code: "missing_field", field: "track_opens" });
    expect(documented("TrackingSettingsPut").validate({ stream: "broadcast", track_opens: null }).valid).toBe(true);
    // Routes: domain rules, the next hop parsed by the same function as NEXT_HOP_URL, the gate policy refinement.
    const route = { match_recipient_domain: "example.org", next_hop_url: "mx:", policy: { ratePerSecond: 2 }, retry_schedule_seconds: [60, 300], priority: 5 };
    expect(parseBody(REQUEST_BODIES.RouteRequest, route)).toMatchObject({ match_sender_domain: "*", policy: { ratePerSecond: 2 }, retry_schedule_seconds: [60, 300] });
    expect(documented("RouteRequest").validate(route).valid).toBe(true);
    expect(refusal(REQUEST_BODIES.RouteRequest, { match_recipient_domain: "example.org" })).toEqual({ status: 400, code: "missing_field", field: "next_hop_url" });
    expect(refusal(REQUEST_BODIES.RouteRequest, { next_hop_url: "ftp://x" })).toEqual({ status: 400, code: "invalid_field", field: "next_hop_url" });
    expect(refusal(REQUEST_BODIES.RouteRequest, { next_hop_url: "mx:", policy: { burst: -1 } })).toEqual({ status: 400, code: "invalid_field", field: "policy" });
    expect(refusal(REQUEST_BODIES.RouteRequest, { next_hop_url: "mx:", retry_schedule_seconds: [] })).toEqual({ status: 400, code: "invalid_field", field: "retry_schedule_seconds" });
    expect(refusal(REQUEST_BODIES.RouteRequest, { next_hop_url: "mx:", weight: -1 })).toEqual({ status: 400, code: "invalid_field", field: "weight" });
    expect(parseBody(REQUEST_BODIES.GatePolicyPatch, null)).toBeNull();
    expect(refusal(REQUEST_BODIES.GatePolicyPatch, [1])).toEqual({ status: 400, code: "invalid_field", field: "policy" });
    // Tenant erase: confirm is a string (the route checks that it is the tenant id).
    expect(parseBody(REQUEST_BODIES.TenantErase, { confirm: "acme" })).toEqual({ confirm: "acme" });
    expect(documented("TenantErase").validate({ confirm: "acme" }).valid).toBe(true);
    expect(documented("TenantErase").validate({}).valid).toBe(false);
    // Suppressions: the count before any entry (413), a bad address is 422 in its place in the order of checks.
    const entry = { address: "User@Example.ORG", scope: "broadcast", detail: "asked", expires_at: null };
    expect(parseBody(REQUEST_BODIES.SuppressionAdd, { suppressions: [entry, { address: "a@b.example" }] })).toEqual({
      suppressions: [{ ...entry, address: "User@example.org", reason: "manual" }, { address: "a@b.example", scope: "all", reason: "manual" }],
    });
    expect(documented("SuppressionAdd").validate({ suppressions: [entry] }).valid).toBe(true);
    expect(documented("SuppressionAdd").validate({ suppressions: [{ scope: "all" }] }).valid).toBe(false);
    const many = Array(1001).fill({ address: "nope" });
    expect(refusal(REQUEST_BODIES.SuppressionAdd, { suppressions: many })).toEqual({ status: 400, code: "too_large", field: "suppressions" });
    expect(() => parseBody(REQUEST_BODIES.SuppressionAdd, { suppressions: many }, { too_large: 413 })).toThrow(expect.objectContaining({ status: 413 }));
    expect(refusal(REQUEST_BODIES.SuppressionAdd, { suppressions: [] })).toEqual({ status: 400, code: "missing_field", field: "suppressions" });
    expect(refusal(REQUEST_BODIES.SuppressionAdd, { suppressions: "x" })).toEqual({ status: 400, code: "invalid_field", field: "suppressions" });
    expect(refusal(REQUEST_BODIES.SuppressionAdd, 5)).toEqual({ status: 400, code: "invalid_field", field: "suppressions" });
    expect(refusal(REQUEST_BODIES.SuppressionAdd, { suppressions: [{ address: "a@b.example" }, 1] })).toEqual({ status: 400, code: "invalid_field", field: "suppressions[1]" });
    expect(refusal(REQUEST_BODIES.SuppressionAdd, { suppressions: [{ address: 1, colour: "red" }] })).toEqual({ status: 400, code: "unknown_field", field: "suppressions[0].colour" });
    expect(refusal(REQUEST_BODIES.SuppressionAdd, { suppressions: [{ scope: "all" }] })).toEqual({ status: 400, code: "missing_field", field: "suppressions[0].address" });
    expect(refusal(REQUEST_BODIES.SuppressionAdd, { suppressions: [{ address: "nope", scope: "x" }] })).toEqual({ status: 400, code: "invalid_recipient", field: "suppressions[0].address" });
    expect(refusal(REQUEST_BODIES.SuppressionAdd, { suppressions: [{ address: "a@b.example", reason: "x" }] })).toEqual({ status: 400, code: "invalid_field", field: "suppressions[0].reason" });
    expect(refusal(REQUEST_BODIES.SuppressionAdd, { suppressions: [{ address: "a@b.example", detail: null }] })).toEqual({ status: 400, code: "invalid_field", field: "suppressions[0].detail" });
    expect(refusal(REQUEST_BODIES.SuppressionAdd, { suppressions: [{ address: "a@b.example", expires_at: "2001-01-01T00:00:00Z" }] })).toEqual({ status: 400, code: "invalid_field", field: "suppressions[0].expires_at" });
    // Webhooks: the URL rules (private addresses only when the operator allows them), events deduplicated.
    const hooks = webhookBodies([]);
    expect(parseBody(hooks.WebhookCreate, { tenant_id: "t", url: "https://hooks.example/x" })).toEqual({ tenant_id: "t", url: "https://hooks.example/x", events: ["*"] });
    expect(parseBody(hooks.WebhookCreate, { tenant_id: "t", url: "https://hooks.example/x", events: ["*", "*"] }).events).toEqual(["*"]);
    expect(documented("WebhookCreate").validate({ tenant_id: "t", url: "https://hooks.example/x", description: null }).valid).toBe(true);
    expect(documented("WebhookCreate").validate({ url: "https://hooks.example/x" }).valid).toBe(false);
    expect(refusal(hooks.WebhookCreate, { url: "https://hooks.example/x" })).toEqual({ status: 400, code: "missing_field", field: "tenant_id" });
    expect(refusal(hooks.WebhookCreate, { tenant_id: "t" })).toEqual({ status: 400, code: "missing_field", field: "url" });
    expect(refusal(hooks.WebhookCreate, { tenant_id: "t", url: "" })).toEqual({ status: 400, code: "missing_field", field: "url" });
    expect(refusal(hooks.WebhookCreate, { tenant_id: "t", url: "http://hooks.example/x" })).toEqual({ status: 400, code: "invalid_field", field: "url" });
    expect(refusal(hooks.WebhookCreate, { tenant_id: "t", url: "https://10.0.0.1/x" })).toEqual({ status: 400, code: "invalid_field", field: "url" });
    expect(parseBody(webhookBodies(["10.0.0.0/8"]).WebhookCreate, { tenant_id: "t", url: "https://10.0.0.1/x" }).url).toBe("https://10.0.0.1/x");
    expect(refusal(hooks.WebhookCreate, { tenant_id: "t", url: "https://hooks.example/x", events: ["nope"] })).toEqual({ status: 400, code: "invalid_field", field: "events" });
    expect(refusal(hooks.WebhookPatch, { url: 5, enabled: "yes" })).toEqual({ status: 400, code: "invalid_field", field: "enabled" });
    expect(refusal(hooks.WebhookPatch, { events: [] })).toEqual({ status: 400, code: "invalid_field", field: "events" });
    expect(refusal(hooks.WebhookPatch, { description: "x".repeat(201) })).toEqual({ status: 400, code: "invalid_field", field: "description" });
    expect(parseBody(hooks.WebhookPatch, { description: null })).toEqual({ description: null });
    // Aliases: the destinations checked in order, the alias itself refused, the count first (422 in the route).
    const alias = { address: "Info@Shop.example", tenant_id: "t", destinations: ["a@b.example", "A@b.example"] };
    expect(parseBody(aliasBodies(2).AliasCreate, alias)).toEqual({ address: { address: "info@shop.example", domain: "shop.example" }, tenant_id: "t", destinations: ["a@b.example"] });
    expect(documented("AliasCreate").validate(alias).valid).toBe(true);
    expect(documented("AliasCreate").validate({ ...alias, destinations: [] }).valid).toBe(false);
    expect(refusal(aliasBodies(2).AliasCreate, { ...alias, destinations: ["info@shop.example", "nope"] })).toEqual({ status: 400, code: "invalid_recipient", field: "destinations[0]" });
    expect(refusal(aliasBodies(2).AliasCreate, { ...alias, destinations: ["a@b.example", 1] })).toEqual({ status: 400, code: "invalid_recipient", field: "destinations[1]" });
    expect(refusal(aliasBodies(2).AliasCreate, { ...alias, destinations: ["x", "y", "z"] })).toEqual({ status: 400, code: "too_many_recipients", field: "destinations" });
    expect(refusal(aliasBodies(2).AliasCreate, { ...alias, destinations: [] })).toEqual({ status: 400, code: "missing_field", field: "destinations" });
    expect(refusal(aliasBodies(2).AliasCreate, { ...alias, address: 1, tenant_id: "" })).toEqual({ status: 400, code: "missing_field", field: "address" });
    expect(refusal(aliasBodies(2).AliasCreate, { ...alias, address: "not an address" })).toEqual({ status: 400, code: "invalid_field", field: "address" });
    expect(refusal(aliasBodies(2).AliasCreate, { ...alias, tenant_id: "" })).toEqual({ status: 400, code: "missing_field", field: "tenant_id" });
    expect(refusal(aliasBodies(2, "info@shop.example").AliasPatch, { destinations: ["Info@shop.example"] })).toEqual({ status: 400, code: "invalid_recipient", field: "destinations[0]" });
    expect(parseBody(aliasBodies(2, "info@shop.example").AliasPatch, { description: null })).toEqual({ description: null });
    // Reputation subjects: an IPv4 address or a domain, normalised.
    expect(parseBody(REQUEST_BODIES.ReputationSubjectAdd, { subject: " Mail.Example.COM " })).toEqual({ subject: { subject: "mail.example.com", kind: "domain" }, label: null, tenant_id: null });
    expect(parseBody(REQUEST_BODIES.ReputationSubjectAdd, { subject: "192.0.2.1", label: "smtp-a", tenant_id: "t" }).subject).toEqual({ subject: "192.0.2.1", kind: "ip" });
    expect(documented("ReputationSubjectAdd").validate({ subject: "192.0.2.1", label: null }).valid).toBe(true);
    expect(documented("ReputationSubjectAdd").validate({ label: "x" }).valid).toBe(false);
    expect(refusal(REQUEST_BODIES.ReputationSubjectAdd, { subject: "  " })).toEqual({ status: 400, code: "missing_field", field: "subject" });
    expect(refusal(REQUEST_BODIES.ReputationSubjectAdd, { label: "x" })).toEqual({ status: 400, code: "missing_field", field: "subject" });
    expect(refusal(REQUEST_BODIES.ReputationSubjectAdd, { subject: "not a domain", label: 5 })).toEqual({ status: 400, code: "invalid_field", field: "subject" });
    expect(refusal(REQUEST_BODIES.ReputationSubjectAdd, { subject: "192.0.2.1", label: "x".repeat(101) })).toEqual({ status: 400, code: "invalid_field", field: "label" });
    expect(refusal(REQUEST_BODIES.ReputationSubjectAdd, { subject: "192.0.2.1", tenant_id: "Bad!" })).toEqual({ status: 400, code: "invalid_field", field: "tenant_id" });
    for (const body of [null, [], {}, { confirm: 1 }]) expect(refusal(REQUEST_BODIES.TenantErase, body)).toEqual({ status: 400, code: "invalid_field", field: "confirm" });
  });
});

describe("the response checker", () => {
  it("is a real validator: it finds a wrong type, a missing property, an extra property and a bad date-time", () => {
    const sendResult = { $ref: "#/components/schemas/SendResult" } as Schema;
    const good = { id: "m1", status: "accepted", message_id: "<a@b>", recipients: [{ address: "a@b.example", status: "queued" }] };
    expect(validate(sendResult, good)).toEqual([]);
    expect(validate(sendResult, { ...good, id: 1 }).length).toBeGreaterThan(0);
    const { message_id: _m, ...missing } = good;
    expect(validate(sendResult, missing).length).toBeGreaterThan(0);
    expect(validate(sendResult, { ...good, extra: true }).length).toBeGreaterThan(0);
    expect(validate(sendResult, { ...good, recipients: [{ address: "a@b.example", status: "lost" }] }).length).toBeGreaterThan(0);
    expect(validate({ $ref: "#/components/schemas/MailChannelsQueued" } as Schema, { queued_at: "yesterday", request_id: "r" }).length).toBeGreaterThan(0);
  });
});
