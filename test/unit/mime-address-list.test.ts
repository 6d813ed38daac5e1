/**
 * The RFC 5322 address-list parser (src/mime/address-list.ts) and the From/Sender rule built on it: exactly one
 * mailbox, read the same way postal-mime reads it (issue 15, finding 1).
 */
import { describe, expect, it } from "vitest";
import PostalMime from "postal-mime";
import { fromFieldMailbox, parseAddressList } from "../../src/mime/address-list";

describe("parseAddressList", () => {
  it("reads mailboxes, groups, comments, quoted strings and obsolete forms", () => {
    const r = parseAddressList(
      '"Doe, Jane" <jane@example.com>, (team) ops: a@x.example, b (Bee) @ y.example;, <@relay.example:c@z.example>, , Mr . Smith <s@example.org>',
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.addresses).toEqual([
      { kind: "mailbox", name: "Doe, Jane", addrSpec: "jane@example.com", route: false, cfwsInAddrSpec: false, angle: true },
      {
        kind: "group",
        name: "ops",
        members: [
          { kind: "mailbox", addrSpec: "a@x.example", route: false, cfwsInAddrSpec: false, angle: false },
          { kind: "mailbox", addrSpec: "b@y.example", route: false, cfwsInAddrSpec: true, angle: false },
        ],
      },
      { kind: "mailbox", addrSpec: "c@z.example", route: true, cfwsInAddrSpec: false, angle: true },
      { kind: "mailbox", name: "Mr . Smith", addrSpec: "s@example.org", route: false, cfwsInAddrSpec: false, angle: true },
    ]);
    expect(r.value.comments).toEqual(["team", "Bee"]);
  });

  it("decodes RFC 2047 words in display names, dropping the space between adjacent words", () => {
    const r = parseAddressList("=?utf-8?q?J=C3=BCrgen?= =?utf-8?b?IE3DvGxsZXI=?= <jm@example.com>");
    expect(r.ok && r.value.addresses[0]).toMatchObject({ name: "Jürgen Müller", addrSpec: "jm@example.com" });
  });

  it("handles nested comments and quoted pairs in comments and quoted strings", () => {
    const r = parseAddressList('(a (b) \\) c) "x \\" y" <q@example.com>');
    expect(r.ok && r.value.addresses[0]).toMatchObject({ name: 'x " y', addrSpec: "q@example.com" });
  });

  it("refuses broken syntax", () => {
    for (const v of ["<a@example.com", "a@example.com>", '"open <a@example.com>', "(open a@example.com", "x: a@example.com", "a@", "@example.com", "a@example.com b@example.com"]) {
      expect(parseAddressList(v).ok, v).toBe(false);
    }
  });
});

describe("fromFieldMailbox", () => {
  const accepted: [string, string][] = [
    ["a@example.com", "a@example.com"],
    ["Alice <a@example.com>", "a@example.com"],
    ['"Alice, the CEO" <a@example.com>', "a@example.com"],
    ['"ceo@bank.example" <a@example.com>', "a@example.com"],
    ["=?utf-8?q?Caf=C3=A9?= <a@example.com>", "a@example.com"],
    ["a@example.com (Alice)", "a@example.com"],
    // obs-addr-list: an empty element is no address.
    ["a@example.com,", "a@example.com"],
  ];
  for (const [value, address] of accepted) {
    it(`takes ${value}`, async () => {
      const r = fromFieldMailbox(value);
      expect(r.ok && r.value.address).toBe(address);
      // postal-mime, which reads the delivered copy in the end-to-end tests, agrees.
      const parsed = await PostalMime.parse(`From: ${value}\r\nTo: x@example.net\r\nSubject: t\r\n\r\nbody\r\n`);
      expect(parsed.from?.address).toBe(address);
    });
  }

  const refused = [
    "ceo@bank.example (<a@example.com>)",
    "ceo@bank.example, <a@example.com>",
    "x: ceo@bank.example;",
    "x: a@example.com;",
    "(a (b) <ceo@bank.example>) a@example.com",
    "(\\) <ceo@bank.example>) a@example.com",
    "<@bank.example:a@example.com>",
    "ceo@bank.example <a@example.com>",
    "=?utf-8?q?ceo@bank.example_<ceo@bank.example>?=",
    "=?utf-8?q?<ceo@bank.example>?= <a@example.com>",
    "a . b@example.com",
    "",
    "Name",
    "=?utf-8?q?x=0D=0ABcc:_y@z.example?= <a@example.com>",
  ];
  for (const value of refused) {
    it(`refuses ${JSON.stringify(value)}`, () => {
      expect(fromFieldMailbox(value).ok).toBe(false);
    });
  }
});
