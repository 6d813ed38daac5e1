/** The accept side's pure helpers: DKIM_KEYS parsing, key choice per From domain, fields existing signatures cover. */
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { keysForDomain, parseDkimKeys } from "../../src/accept/dkim-keys";
import { fieldsSignedByExistingSignatures } from "../../src/accept/outbound";
import { ConfigError } from "../../src/config";
import { signDkim } from "../../src/mime/dkim";

const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();

describe("DKIM_KEYS", () => {
  it("parses entries, lower-cases domains and accepts \\n-escaped PEM from a one-line secret", () => {
    const keys = parseDkimKeys(JSON.stringify([{ domain: "Example.COM", selector: "ed1", privateKeyPem: pem.replace(/\n/g, "\\n") }]));
    expect(keys).toEqual([{ domain: "example.com", selector: "ed1", privateKeyPem: pem }]);
    expect(parseDkimKeys(undefined)).toEqual([]);
    expect(parseDkimKeys("  ")).toEqual([]);
  });

  it("refuses bad configuration with a ConfigError naming the entry", () => {
    expect(() => parseDkimKeys("{")).toThrow(ConfigError);
    expect(() => parseDkimKeys("{}")).toThrow(/JSON array/);
    expect(() => parseDkimKeys(JSON.stringify([{ domain: "example.com", selector: "s", privateKeyPem: "-----BEGIN RSA PRIVATE KEY-----" }]))).toThrow(/DKIM_KEYS\[0\]\.privateKeyPem/);
    expect(() => parseDkimKeys(JSON.stringify([{ domain: "not a domain", selector: "s", privateKeyPem: pem }]))).toThrow(/DKIM_KEYS\[0\]\.domain/);
    expect(() => parseDkimKeys(JSON.stringify([{ domain: "example.com", selector: "a b", privateKeyPem: pem }]))).toThrow(/selector/);
  });

  it("picks the From domain's keys, else the closest parent's, never a sibling's or a suffix look-alike's", () => {
    const keys = parseDkimKeys(
      JSON.stringify([
        { domain: "example.com", selector: "a", privateKeyPem: pem },
        { domain: "example.com", selector: "b", privateKeyPem: pem },
        { domain: "mail.example.com", selector: "m", privateKeyPem: pem },
      ]),
    );
    expect(keysForDomain(keys, "example.com").map((k) => k.selector)).toEqual(["a", "b"]);
    expect(keysForDomain(keys, "MAIL.example.com").map((k) => k.selector)).toEqual(["m"]);
    expect(keysForDomain(keys, "news.mail.example.com").map((k) => k.selector)).toEqual(["m"]);
    expect(keysForDomain(keys, "other.example.com").map((k) => k.selector)).toEqual(["a", "b"]);
    expect(keysForDomain(keys, "badexample.com")).toEqual([]);
    expect(keysForDomain(keys, "com")).toEqual([]);
  });
});

describe("fieldsSignedByExistingSignatures", () => {
  it("lists the h= fields of signatures already in the message, folded or not", async () => {
    const msg = "From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n";
    expect(fieldsSignedByExistingSignatures(msg).size).toBe(0);
    const signed = await signDkim(msg, [{ domain: "example.com", selector: "s", privateKeyPem: pem, headers: ["from", "to", "subject", "feedback-id"], oversignHeaders: ["feedback-id"] }]);
    const names = fieldsSignedByExistingSignatures(signed);
    expect([...names].sort()).toEqual(["feedback-id", "from", "subject", "to"]);
    // The body is never mistaken for headers.
    expect(fieldsSignedByExistingSignatures(`From: a@example.com\r\n\r\nDKIM-Signature: h=date\r\n`).size).toBe(0);
  });
});
