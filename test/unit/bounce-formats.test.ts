/**
 * Formats the issue names (test/fixtures/inbound/formats/, written after the MTAs' own layouts): a nested reply
 * ("554 5.0.0 <a@b>... 550 Host unknown", Sendmail quoting the remote server), a second DSN inside the returned
 * message (a bounce of a bounce: only the outer one is about our recipient), and a failed recipient that is the
 * bounce's own To address.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseBounce } from "../../src/inbound/bounce";

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/inbound/formats");
const parse = (file: string) => parseBounce(readFileSync(path.join(dir, file)));

describe("bounce formats", () => {
  it("reads the remote server's own reply inside Sendmail's nested reply", () => {
    const r = parse("sendmail-nested-reply.eml");
    expect(r.kind).toBe("bounce");
    expect(r.recipients.map((x) => [x.address, x.replyCode, x.reason, x.hard])).toEqual([["mia@gone-domain.example", "550", "hostunknown", true]]);
    expect(r.originalMessageId).toBe("m-nested@sender.example");
  });

  it("ignores a DSN inside the returned message: only the outer report names our recipient", () => {
    const r = parse("dsn-with-inner-dsn.eml");
    expect(r.recipients.map((x) => [x.address, x.status, x.reason, x.hard])).toEqual([["ops@rcpt.example", "5.2.2", "mailboxfull", false]]);
  });

  it("finds a failed recipient that is the bounce's own To address", () => {
    const r = parse("recipient-is-to.eml");
    expect(r.kind).toBe("bounce");
    expect(r.recipients.map((x) => [x.address, x.status, x.reason, x.hard])).toEqual([["mia@rcpt.example", "5.1.1", "userunknown", true]]);
  });
});
