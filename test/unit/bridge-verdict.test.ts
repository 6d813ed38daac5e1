// The mapping from the relay's HTTP answer to the SMTP reply after DATA: 250 only for 202, 4xx for anything
// temporary or caused by configuration, 5xx with RFC 3463 codes for refusals of the message itself.
import { describe, expect, it } from "vitest";
import { readRelayAnswer, type RelayAnswer } from "../../src/bridge/relay-client.js";
import { recipientOfField, verdictFor } from "../../src/bridge/smtp-verdict.js";

const envelope = { recipients: ["a@example.net", "b@example.net"] };
const refusal = (status: number, code: string | null, message = "m", field: string | null = null): RelayAnswer => ({ kind: "refused", status, code, message, field, retryAfterSeconds: null });

describe("verdictFor", () => {
  it("accepts with 250 and the relay's id only for HTTP 202", () => {
    const v = verdictFor({ kind: "accepted", status: 202, id: "abc123", recipients: [{ address: "a@example.net", status: "queued" }] }, envelope);
    expect(v.accepted).toBe(true);
    expect(v.reply).toEqual({ code: 250, enhanced: "2.0.0", text: "Ok: queued as abc123" });
    for (const status of [200, 201, 204]) {
      const other = verdictFor(readRelayAnswer(status, JSON.stringify({ id: "x" }), null), envelope);
      expect(other.accepted, `HTTP ${status}`).toBe(false);
      expect(other.reply.code).toBe(451);
    }
  });

  it("names suppressed recipients; refuses with 550 5.7.1 when every recipient is suppressed", () => {
    const some = verdictFor({ kind: "accepted", status: 202, id: "m1", recipients: [{ address: "a@example.net", status: "queued" }, { address: "b@example.net", status: "suppressed" }] }, envelope);
    expect(some.accepted).toBe(true);
    expect(some.reply.text).toContain("not sent to suppressed b@example.net");
    expect(some.suppressedRecipients).toEqual(["b@example.net"]);
    const all = verdictFor({ kind: "accepted", status: 202, id: "m2", recipients: [{ address: "b@example.net", status: "suppressed" }] }, envelope);
    expect(all.accepted).toBe(false);
    expect([all.reply.code, all.reply.enhanced]).toEqual([550, "5.7.1"]);
  });

  it("answers 4xx when the relay is unreachable, slow, busy or failing", () => {
    const cases: [RelayAnswer, number, string][] = [
      [{ kind: "unreachable", reason: "connect", message: "ECONNREFUSED" }, 451, "4.4.1"],
      [{ kind: "unreachable", reason: "timeout", message: "t" }, 451, "4.4.2"],
      [refusal(429, "rate_limited"), 451, "4.7.0"],
      [refusal(500, "internal_error"), 451, "4.3.0"],
      [refusal(502, null, "<html>bad gateway</html>"), 451, "4.3.0"],
      [refusal(503, "unavailable"), 451, "4.3.0"],
      [refusal(401, "key_revoked"), 451, "4.7.8"],
      [refusal(404, "not_found"), 451, "4.3.5"],
      [refusal(415, "unsupported_media_type"), 451, "4.3.5"],
    ];
    for (const [answer, code, enhanced] of cases) {
      const v = verdictFor(answer, envelope);
      expect([v.accepted, v.reply.code, v.reply.enhanced], JSON.stringify(answer)).toEqual([false, code, enhanced]);
    }
  });

  it("answers 5xx with an enhanced code when the relay refuses the message", () => {
    const cases: [RelayAnswer, number, string][] = [
      [refusal(403, "sender_domain_not_allowed", "this key may not send from other.example", "from"), 550, "5.7.1"],
      [refusal(403, "tenant_suspended"), 550, "5.7.1"],
      [refusal(413, "too_large"), 552, "5.3.4"],
      [refusal(422, "invalid_recipient", "bad", "to[1]"), 550, "5.1.3"],
      [refusal(422, "recipient_suppressed", "on the list", "to[0]"), 550, "5.7.1"],
      [refusal(422, "invalid_sender", "bad", "envelope_from"), 550, "5.1.7"],
      [refusal(422, "too_many_recipients"), 550, "5.5.3"],
      [refusal(400, "invalid_utf8", "not UTF-8", "body"), 554, "5.6.0"],
      [refusal(422, "invalid_field", "line too long", "body"), 554, "5.6.0"],
    ];
    for (const [answer, code, enhanced] of cases) {
      const v = verdictFor(answer, envelope);
      expect([v.accepted, v.reply.code, v.reply.enhanced], JSON.stringify(answer)).toEqual([false, code, enhanced]);
    }
  });

  it("names the refused recipient and the refused sender domain", () => {
    const v = verdictFor(refusal(422, "invalid_recipient", "not an address", "to[1]"), envelope);
    expect(v.refusedRecipient).toBe("b@example.net");
    expect(v.reply.text).toContain("<b@example.net>");
    const d = verdictFor(refusal(403, "sender_domain_not_allowed", "this key may not send from Other.Example", "from"), envelope);
    expect(d.refusedSenderDomain).toBe("other.example");
    expect(recipientOfField("to[9]", envelope.recipients)).toBeNull();
    expect(recipientOfField("from", envelope.recipients)).toBeNull();
  });

  it("keeps reply text on one printable line", () => {
    const v = verdictFor(refusal(400, "invalid_field", "bad\r\n250 injected\tline é"), envelope);
    expect(v.reply.text).not.toMatch(/[\r\n\t]/);
    expect(v.reply.text).toMatch(/^[\x20-\x7e]+$/);
  });
});

describe("readRelayAnswer", () => {
  it("reads the error shape and Retry-After", () => {
    const a = readRelayAnswer(429, JSON.stringify({ error: { code: "rate_limited", message: "slow down" } }), "30");
    expect(a).toEqual({ kind: "refused", status: 429, code: "rate_limited", message: "slow down", field: null, retryAfterSeconds: 30 });
    const b = readRelayAnswer(502, "Bad gateway", null);
    expect(b).toMatchObject({ kind: "refused", status: 502, code: null, message: "Bad gateway" });
  });
});
