import { describe, expect, it } from "vitest";
import { formatAddressHeader, parseAddress, type AddressInput, type Mailbox } from "../../src/mime/address.js";

function ok(input: AddressInput): Mailbox {
  const r = parseAddress(input);
  if (!r.ok) throw new Error(`expected ${JSON.stringify(input)} to parse: ${r.error.message}`);
  return r.value;
}

describe("parseAddress: accepted", () => {
  it("parses bare, named, quoted and object forms", () => {
    expect(ok("user@example.com")).toEqual({ address: "user@example.com", domain: "example.com", asciiDomain: "example.com", utf8: false });
    expect(ok("Jane Doe <jane@Example.COM>")).toMatchObject({ name: "Jane Doe", address: "jane@example.com", domain: "example.com" });
    expect(ok('"Doe, Jane \\"JD\\"" <jane@example.com>')).toMatchObject({ name: 'Doe, Jane "JD"', address: "jane@example.com" });
    expect(ok({ name: "Zoë", address: "zoe@example.com" })).toMatchObject({ name: "Zoë", address: "zoe@example.com" });
    expect(ok({ name: "  ", address: "a@example.com" }).name).toBeUndefined();
  });

  it("accepts atext, plus addressing and quoted local parts", () => {
    for (const a of ["first.last+tag@example.com", "o'brien@example.ie", "!#$%&'*+-/=?^_`{|}~@example.com", '"john doe"@example.com', '"a@b"@example.com']) {
      expect(parseAddress(a).ok, a).toBe(true);
    }
  });

  it("flags a UTF-8 local part as SMTPUTF8 and converts IDN domains to A-labels", () => {
    const u = ok("用户@例子.广告");
    expect(u.utf8).toBe(true);
    expect(u.asciiDomain).toMatch(/^xn--/);
    const idn = ok("info@bücher.de");
    expect(idn.utf8).toBe(false);
    expect(idn.asciiDomain).toBe("xn--bcher-kva.de");
    expect(idn.domain).toBe("bücher.de");
  });

  it("accepts a 64-octet local part and a 63-octet label", () => {
    expect(parseAddress(`${"a".repeat(64)}@example.com`).ok).toBe(true);
    expect(parseAddress(`a@${"b".repeat(63)}.com`).ok).toBe(true);
  });
});

describe("parseAddress: refused", () => {
  const cases: [AddressInput, string][] = [
    ["", "empty"],
    ["plainaddress", "missing_at"],
    ["a@b@example.com", "multiple_at"],
    ["@example.com", "local_part_syntax"],
    ["user@", "domain_syntax"],
    ["user@localhost", "domain_syntax"],
    ["user@[192.0.2.1]", "address_literal"],
    ["user@192.0.2.1", "domain_syntax"],
    ["user@-example.com", "domain_syntax"],
    ["user@example..com", "domain_syntax"],
    ["user@exa_mple.com", "domain_syntax"],
    [".user@example.com", "local_part_syntax"],
    ["us..er@example.com", "local_part_syntax"],
    ["us(er@example.com", "local_part_syntax"],
    ["us er@example.com", "syntax"],
    [`${"a".repeat(65)}@example.com`, "local_part_too_long"],
    [`${"é".repeat(33)}@example.com`, "local_part_too_long"],
    [`a@${"b".repeat(64)}.com`, "label_too_long"],
    [`a@${Array.from({ length: 60 }, () => "abcd").join(".")}.com`, "domain_too_long"],
    ["user@example.com\r\nBcc: victim@example.org", "control_character"],
    ["user@example.com\n", "control_character"],
    ["user\0@example.com", "control_character"],
    ["user@exam\u2028ple.com", "control_character"],
    ["<user@example.com>>", "syntax"],
    ["a <b@example.com", "syntax"],
    ["Evil <a@example.com>, Other <b@example.com>", "display_name"],
    ["<a@example.com> <b@example.com>", "display_name"],
    ["Name\r\nBcc: x@y.com <a@example.com>", "control_character"],
    [{ name: "Evil\r\nBcc: x@example.com", address: "a@example.com" }, "control_character"],
    [{ name: "x".repeat(257), address: "a@example.com" }, "display_name"],
    [{ address: "a@example.com\ud800" }, "invalid_utf8"],
    ['"unterminated <a@example.com>', "display_name"],
    ["user@ex\u00adample.com", "syntax"],
    [`${"a".repeat(64)}@${Array.from({ length: 5 }, () => "b".repeat(40)).join(".")}.com`, "domain_too_long"],
    ["us\u200ber@example.com", "syntax"],
    ["user@\uff45xample.com", "domain_syntax"],
    [{ name: "Bank \u202etxt.exe", address: "a@example.com" }, "display_name"],
  ];
  for (const [input, reason] of cases) {
    it(`${JSON.stringify(input).slice(0, 60)} → ${reason}`, () => {
      const r = parseAddress(input);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.reason).toBe(reason);
    });
  }

  it("never throws on wrong types", () => {
    for (const v of [null, undefined, 42, [], {}, { address: 1 }, { address: "a@example.com", name: 5 }]) {
      expect(parseAddress(v as unknown as AddressInput).ok).toBe(false);
    }
  });
});

describe("formatAddressHeader", () => {
  it("leaves simple names bare, quotes specials and encodes non-ASCII", () => {
    const list = [ok("Jane Doe <jane@example.com>"), ok({ name: "Doe, Jane", address: "j@example.com" }), ok({ name: "Zoë", address: "z@bücher.de" }), ok("x@example.com")];
    const value = formatAddressHeader(list);
    expect(value).toBe('Jane Doe <jane@example.com>, "Doe, Jane" <j@example.com>, =?UTF-8?Q?Zo=C3=AB?= <z@xn--bcher-kva.de>, x@example.com');
  });

  it("escapes quotes and backslashes inside quoted names", () => {
    expect(formatAddressHeader([ok({ name: 'a "b" \\ c', address: "a@example.com" })])).toBe('"a \\"b\\" \\\\ c" <a@example.com>');
  });

  it("keeps a UTF-8 local part raw (SMTPUTF8)", () => {
    expect(formatAddressHeader([ok("用户@例子.广告")])).toBe("用户@例子.广告");
  });
});
