/** The bridge's own envelope address checks (src/bridge/server.js): syntax, and the address as the client wrote it. */
import { describe, expect, it } from "vitest";
import { addressAsWritten, validEnvelopeAddress } from "../../src/bridge/server.js";

describe("validEnvelopeAddress", () => {
  it("accepts ordinary, A-label and U-label addresses", () => {
    for (const a of ["a@b.example", "first.last+tag@sub.example.com", "info@xn--bcher-kva.example", "info@bücher.example", `${"l".repeat(64)}@example.net`]) {
      expect(validEnvelopeAddress(a), a).toBe(true);
    }
  });

  it("refuses what the relay could not send to", () => {
    for (const a of ["a..b@example.net", ".a@example.net", "a.@example.net", "a@-x.example", "a@x-.example", "a@x..example", "a@x_y.example", "a@x!.example", "a@x%y.example", "a@localhost", "a@[127.0.0.1]", `${"l".repeat(65)}@example.net`, `a@${"x".repeat(64)}.example`, "a b@example.net", 'a"b@example.net', "a,b@example.net", "@example.net", "a@", ""]) {
      expect(validEnvelopeAddress(a), a).toBe(false);
    }
  });
});

describe("addressAsWritten", () => {
  it("takes the address between the brackets, drops a source route, keeps A-labels", () => {
    expect(addressAsWritten("MAIL FROM:<u@xn--bcher-kva.example> BODY=8BITMIME")).toBe("u@xn--bcher-kva.example");
    expect(addressAsWritten("rcpt to: <@r1.example,@r2.example:u@x.example>")).toBe("u@x.example");
    expect(addressAsWritten("MAIL FROM:<>")).toBe("");
    expect(addressAsWritten("RCPT TO:u@x.example")).toBeNull();
    expect(addressAsWritten(undefined)).toBeNull();
  });
});
