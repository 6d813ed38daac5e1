/**
 * DKIM signing checked by an independent verifier: mailauth in Node, with a stub resolver serving the public
 * keys that `publicKeyRecord` derives. Keys are generated per run.
 */
import { createHash, createPublicKey, generateKeyPairSync, verify as cryptoVerify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { dkimVerify } from "mailauth/lib/dkim/verify";
import { dkimSign } from "mailauth/lib/dkim/sign";
import {
  DkimSignError,
  dkimAlgorithmOf,
  dkimSignatureFields,
  publicKeyRecord,
  signDkim,
  verifyOwnHeaderSignature,
  type DkimCanonicalization,
  type DkimSigner,
} from "../../src/mime/dkim";

const rsaPem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const edPem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const otherRsaPem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();

const rsa: DkimSigner = { domain: "example.com", selector: "rsa2026", privateKeyPem: rsaPem };
const ed: DkimSigner = { domain: "example.com", selector: "ed2026", privateKeyPem: edPem };

const dns = new Map<string, string>();
dns.set("rsa2026._domainkey.example.com", await publicKeyRecord(rsaPem));
dns.set("ed2026._domainkey.example.com", await publicKeyRecord(edPem));
dns.set("upstream._domainkey.esp.example.net", await publicKeyRecord(otherRsaPem));

async function resolver(name: string, type: string): Promise<string[][]> {
  const record = type === "TXT" ? dns.get(name.toLowerCase()) : undefined;
  if (record === undefined) throw Object.assign(new Error(`stub DNS: no ${type} for ${name}`), { code: "ENOTFOUND" });
  // DNS TXT strings are at most 255 octets each; serve the record split the way a real zone would.
  return [record.match(/.{1,255}/g) ?? []];
}

async function verify(message: string | Uint8Array, curTime?: Date) {
  const result = await dkimVerify(typeof message === "string" ? message : Buffer.from(message), { resolver, curTime });
  return result.results.map((r) => ({ domain: r.signingDomain, selector: r.selector, result: r.status.result, info: r.info }));
}

function results(verified: Awaited<ReturnType<typeof verify>>): string[] {
  return verified.map((r) => `${r.domain}/${r.selector}:${r.result}`);
}

const headers = [
  "From: Alice Example <alice@example.com>",
  "To: bob@example.org",
  "Subject: Quarterly report",
  "Date: Sat, 28 Nov 2026 05:49:30 +0000",
  "Message-ID: <m1.abc123@example.com>",
  "MIME-Version: 1.0",
];

function message(body: string, extraHeaders: string[] = ["Content-Type: text/plain; charset=utf-8"]): string {
  return [...headers, ...extraHeaders].join("\r\n") + "\r\n\r\n" + body;
}

const bodies: Record<string, string> = {
  plain: "Hello Bob,\r\n\r\nThe numbers are in.\r\n",
  "trailing whitespace": "line with spaces   \r\nline with tab\t\r\n  indented   twice  \r\n\r\n\r\n   \r\n",
  empty: "",
  "only blank lines": "\r\n\r\n\r\n",
  "no final line break": "last line has no CRLF",
  "lines starting with dots": ".\r\n..\r\n.hidden\r\n. leading dot and space\r\n.\r\n",
  "long lines": "x".repeat(990) + "\r\n" + "word ".repeat(400) + "\r\n",
  "8-bit UTF-8": "Grüße aus Zürich — 東京 🚀 naïve café\r\nŁódź\r\n",
};

describe("signDkim verified by mailauth", () => {
  for (const [label, body] of Object.entries(bodies)) {
    it(`RSA and Ed25519 pass for a body with ${label}`, async () => {
      const signed = await signDkim(message(body), [rsa, ed]);
      expect(results(await verify(signed))).toEqual(["example.com/rsa2026:pass", "example.com/ed2026:pass"]);
    });
  }

  const canonicalizations: DkimCanonicalization[] = ["simple/simple", "simple/relaxed", "relaxed/simple"];
  for (const canonicalization of canonicalizations) {
    it(`verifies with ${canonicalization} canonicalization, including trailing whitespace and folded headers`, async () => {
      const raw = message(bodies["trailing whitespace"] ?? "", [
        "Content-Type: text/plain;\r\n  charset=utf-8   ",
        "List-Unsubscribe:  <https://relay.example.com/u/abc>,\r\n\t<mailto:unsub@example.com>",
      ]);
      const signed = await signDkim(raw, [
        { ...rsa, canonicalization },
        { ...ed, canonicalization },
      ]);
      expect(signed).toContain(`c=${canonicalization};`);
      expect(results(await verify(signed))).toEqual(["example.com/rsa2026:pass", "example.com/ed2026:pass"]);
    });
  }

  it("signs a multipart message with an attachment", async () => {
    const attachment = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256)).toString("base64");
    const body = [
      "--b1",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: 8bit",
      "",
      "See the attached report — ünïcödé.",
      "--b1",
      'Content-Type: application/octet-stream; name="report.bin"',
      "Content-Transfer-Encoding: base64",
      'Content-Disposition: attachment; filename="report.bin"',
      "",
      ...(attachment.match(/.{1,76}/g) ?? []),
      "--b1--",
      "",
    ].join("\r\n");
    const signed = await signDkim(message(body, ['Content-Type: multipart/mixed; boundary="b1"']), [rsa, ed]);
    expect(results(await verify(signed))).toEqual(["example.com/rsa2026:pass", "example.com/ed2026:pass"]);
  });

  it("treats bare LF as CRLF and returns CRLF line endings", async () => {
    const lf = message(bodies.plain ?? "").replace(/\r\n/g, "\n");
    const signed = await signDkim(lf, [rsa]);
    expect(signed).not.toMatch(/[^\r]\n/);
    expect(results(await verify(signed))).toEqual(["example.com/rsa2026:pass"]);
  });

  it("keeps octets unchanged for Uint8Array input (8-bit Latin-1 body) and returns bytes", async () => {
    const head = new TextEncoder().encode(message("", ["Content-Type: text/plain; charset=iso-8859-1", "Content-Transfer-Encoding: 8bit"]));
    const latin1Body = Uint8Array.from([0x47, 0x72, 0xfc, 0xdf, 0x65, 0x20, 0xe9, 0x0d, 0x0a, 0x80, 0x9f, 0xff, 0x0d, 0x0a]);
    const raw = new Uint8Array([...head, ...latin1Body]);
    const signed = await signDkim(raw, [rsa, ed]);
    expect(signed).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(signed.subarray(signed.length - latin1Body.length)).equals(Buffer.from(latin1Body))).toBe(true);
    expect(results(await verify(signed))).toEqual(["example.com/rsa2026:pass", "example.com/ed2026:pass"]);
  });

  it("signs UTF-8 header values (RFC 6532) the same as bytes", async () => {
    const raw = message("body\r\n").replace("Subject: Quarterly report", "Subject: Grüße – 東京");
    const fromText = await signDkim(raw, [ed], { now: new Date(1_800_000_000_000) });
    const fromBytes = await signDkim(new TextEncoder().encode(raw), [ed], { now: new Date(1_800_000_000_000) });
    expect(new TextDecoder().decode(fromBytes)).toBe(fromText);
    expect(results(await verify(fromText))).toEqual(["example.com/ed2026:pass"]);
  });

  it("keeps non-ASCII whitespace and 0xA0 bytes in header values (simple header canonicalization)", async () => {
    const raw = message("body\r\n").replace("Subject: Quarterly report", "Subject: voilà").replace("To: bob@example.org", "To: bob@example.org\u00a0");
    for (const input of [raw, new TextEncoder().encode(raw)]) {
      const signed = await signDkim(input as string, [{ ...rsa, canonicalization: "simple/relaxed" }, { ...ed, canonicalization: "simple/simple" }]);
      expect(results(await verify(signed))).toEqual(["example.com/rsa2026:pass", "example.com/ed2026:pass"]);
    }
  });

  it("treats only SP and HTAB as whitespace in relaxed header canonicalization (RFC 6376 section 3.4.2)", async () => {
    // mailauth collapses and trims with JavaScript's \s, which also matches U+00A0 and, on its byte strings, the
    // 0xA0 continuation byte of "à" (C3 A0); RFC 6376 and dkimpy/OpenDKIM do not. So this case is checked against
    // the RFC text directly: rebuild the signed data by hand and verify the Ed25519 signature with node:crypto.
    const raw = "From: a@example.com\r\nSubject:  voilà\u00a0 \r\n\tici voilà\u00a0 \r\n\r\nbody\r\n";
    const signed = await signDkim(new TextEncoder().encode(raw), [{ ...ed, headers: ["from", "subject"], oversignHeaders: [] }]);
    const text = Buffer.from(signed).toString("latin1");
    const sigField = /^DKIM-Signature:[\s\S]*?\r\n(?![ \t])/.exec(text)?.[0].slice(0, -2) ?? "";
    const b = (/b=([A-Za-z0-9+/=\s]+)$/.exec(sigField)?.[1] ?? "").replace(/\s+/g, "");
    const relaxed = (field: string) => {
      const colon = field.indexOf(":");
      const value = field.slice(colon + 1).replace(/\r\n/g, "").replace(/[ \t]+/g, " ").replace(/^[ \t]+|[ \t]+$/g, "");
      return field.slice(0, colon).toLowerCase() + ":" + value;
    };
    const data =
      "from:a@example.com\r\n" +
      "subject:voil\u00c3\u00a0\u00c2\u00a0 ici voil\u00c3\u00a0\u00c2\u00a0\r\n" + // "voilà" + NBSP: UTF-8 read as latin1
      relaxed(sigField.replace(/b=[A-Za-z0-9+/=\s]+$/, "b="));
    const hash = createHash("sha256").update(Buffer.from(data, "latin1")).digest();
    expect(cryptoVerify(null, hash, createPublicKey(edPem), Buffer.from(b, "base64"))).toBe(true);
  });

  it("leaves an existing DKIM signature valid and both verify", async () => {
    const original = message(bodies["8-bit UTF-8"] ?? "");
    const key = { signingDomain: "esp.example.net", selector: "upstream", privateKey: otherRsaPem };
    const upstream = await dkimSign(original, { ...key, canonicalization: "relaxed/relaxed", signatureData: [key] });
    expect(upstream.errors).toEqual([]);
    const alreadySigned = upstream.signatures + original;
    expect(results(await verify(alreadySigned))).toEqual(["esp.example.net/upstream:pass"]);

    const signed = await signDkim(alreadySigned, [rsa, ed]);
    expect(results(await verify(signed)).sort()).toEqual(
      ["esp.example.net/upstream:pass", "example.com/ed2026:pass", "example.com/rsa2026:pass"].sort(),
    );
  });
});

describe("signDkim detects tampering", () => {
  it("fails when one body byte changes", async () => {
    const signed = await signDkim(message(bodies.plain ?? ""), [rsa, ed]);
    const tampered = signed.replace("The numbers are in.", "The numbers are IN.");
    expect(tampered).not.toBe(signed);
    const verified = await verify(tampered);
    expect(verified.map((r) => r.result)).toEqual(["neutral", "neutral"]);
    expect(verified.every((r) => /body hash did not verify/.test(r.info))).toBe(true);
  });

  it("fails when a signed header changes", async () => {
    const signed = await signDkim(message(bodies.plain ?? ""), [rsa, ed]);
    const tampered = signed.replace("Subject: Quarterly report", "Subject: Quarterly rep0rt");
    expect(results(await verify(tampered))).toEqual(["example.com/rsa2026:fail", "example.com/ed2026:fail"]);
  });

  it("fails when a second From is added above (From is over-signed)", async () => {
    const signed = await signDkim(message(bodies.plain ?? ""), [rsa]);
    const split = signed.indexOf("From:");
    const tampered = signed.slice(0, split) + "From: mallory@evil.example\r\n" + signed.slice(split);
    expect(results(await verify(tampered))).toEqual(["example.com/rsa2026:fail"]);
  });

  it("fails when an absent over-signed header (Reply-To) is added", async () => {
    const signed = await signDkim(message(bodies.plain ?? ""), [ed]);
    expect(results(await verify(signed + ""))).toEqual(["example.com/ed2026:pass"]);
    const tampered = signed.replace("Subject:", "Reply-To: mallory@evil.example\r\nSubject:");
    expect(results(await verify(tampered))).toEqual(["example.com/ed2026:fail"]);
  });

  it("fails when a Sender is inserted (Sender is over-signed; issue 15)", async () => {
    const signed = await signDkim(message(bodies.plain ?? ""), [ed]);
    const tampered = signed.replace("Subject:", "Sender: ceo@bank.example\r\nSubject:");
    expect(results(await verify(tampered))).toEqual(["example.com/ed2026:fail"]);
  });
});

describe("DKIM-Signature field contents", () => {
  const now = new Date("2026-11-28T06:00:00Z");
  const t = Math.floor(now.getTime() / 1000);

  function tagsOf(signed: string): Map<string, string> {
    const field = /^DKIM-Signature:([\s\S]*?)\r\n(?![ \t])/.exec(signed)?.[1] ?? "";
    const map = new Map<string, string>();
    for (const part of field.replace(/\r\n[ \t]/g, "").split(";")) {
      const eq = part.indexOf("=");
      if (eq > 0) map.set(part.slice(0, eq).trim(), part.slice(eq + 1).replace(/\s+/g, ""));
    }
    return map;
  }

  it("has t=, x=, no l=, the inferred algorithm and over-signed headers", async () => {
    const raw = message("hi\r\n", ["Content-Type: text/plain", "Cc: carol@example.org", "X-Mailer: none"]);
    const signed = await signDkim(raw, [{ ...rsa, expireSeconds: 3600 }], { now });
    const tags = tagsOf(signed);
    expect(tags.get("a")).toBe("rsa-sha256");
    expect(tags.get("c")).toBe("relaxed/relaxed");
    expect(tags.get("t")).toBe(String(t));
    expect(tags.get("x")).toBe(String(t + 3600));
    expect(tags.has("l")).toBe(false);
    const h = (tags.get("h") ?? "").split(":");
    expect(h.filter((n) => n === "from")).toHaveLength(2);
    expect(h.filter((n) => n === "subject")).toHaveLength(2);
    expect(h.filter((n) => n === "cc")).toHaveLength(2);
    expect(h.filter((n) => n === "reply-to")).toHaveLength(1); // absent but over-signed
    expect(h).not.toContain("x-mailer");
    expect(h).not.toContain("dkim-signature");

    expect(results(await verify(signed, new Date(now.getTime() + 60_000)))).toEqual(["example.com/rsa2026:pass"]);
    const late = await verify(signed, new Date(now.getTime() + 7200_000));
    expect(late.map((r) => r.result)).not.toContain("pass");
  });

  it("folds every line of the field under 78 characters", async () => {
    const signed = await signDkim(message("hi\r\n"), [rsa, ed]);
    const fieldLines = signed.slice(0, signed.indexOf("From:")).split("\r\n").filter(Boolean);
    expect(fieldLines.length).toBeGreaterThan(4);
    for (const line of fieldLines) expect(line.length).toBeLessThanOrEqual(78);
  });

  it("signs a custom header list, every instance, and infers ed25519", async () => {
    const raw = message("hi\r\n", ["Content-Type: text/plain", "X-Tag: one", "X-Tag: two"]);
    const signed = await signDkim(raw, [{ ...ed, headers: ["From", "X-Tag"], oversignHeaders: [] }]);
    const tags = tagsOf(signed);
    expect(tags.get("a")).toBe("ed25519-sha256");
    expect(tags.get("h")).toBe("from:x-tag:x-tag");
    expect(results(await verify(signed))).toEqual(["example.com/ed2026:pass"]);
  });

  it("dkimSignatureFields returns only the fields, which verify when prepended", async () => {
    const raw = message(bodies.plain ?? "");
    const fields = await dkimSignatureFields(raw, [rsa, ed]);
    expect(fields.match(/^DKIM-Signature:/gm)).toHaveLength(2);
    expect(fields.endsWith("\r\n")).toBe(true);
    expect(results(await verify(fields + raw))).toEqual(["example.com/rsa2026:pass", "example.com/ed2026:pass"]);
  });
});

describe("keys and configuration", () => {
  it("publicKeyRecord matches node:crypto's view of the key", async () => {
    const rsaSpki = createPublicKey(rsaPem).export({ type: "spki", format: "der" }).toString("base64");
    expect(await publicKeyRecord(rsaPem)).toBe(`v=DKIM1; k=rsa; p=${rsaSpki}`);
    const edSpki = createPublicKey(edPem).export({ type: "spki", format: "der" });
    const edRaw = edSpki.subarray(edSpki.length - 32).toString("base64");
    expect(await publicKeyRecord(edPem)).toBe(`v=DKIM1; k=ed25519; p=${edRaw}`);
    expect(dkimAlgorithmOf(rsaPem)).toBe("rsa-sha256");
    expect(dkimAlgorithmOf(edPem)).toBe("ed25519-sha256");
  });

  it("accepts a PEM whose line breaks were pasted as literal \\n", async () => {
    const escaped = edPem.trim().replace(/\n/g, "\\n");
    const signed = await signDkim(message("hi\r\n"), [{ ...ed, privateKeyPem: escaped }]);
    expect(results(await verify(signed))).toEqual(["example.com/ed2026:pass"]);
  });

  it("rejects PKCS#1 keys with a hint, mismatched algorithms, bad domains, and messages without From", async () => {
    const pkcs1 = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    await expect(signDkim(message("x"), [{ ...rsa, privateKeyPem: pkcs1 }])).rejects.toThrow(/openssl pkcs8/);
    await expect(signDkim(message("x"), [{ ...rsa, algorithm: "ed25519-sha256" }])).rejects.toThrow(DkimSignError);
    await expect(signDkim(message("x"), [{ ...rsa, domain: "bad domain;x=1" }])).rejects.toThrow(/signing domain/);
    await expect(signDkim(message("x"), [{ ...rsa, selector: "s;h=x" }])).rejects.toThrow(/selector/);
    await expect(signDkim("To: a@example.org\r\n\r\nx", [rsa])).rejects.toThrow(/From/);
    await expect(signDkim(message("x"), [{ ...rsa, headers: ["subject"] }])).rejects.toThrow(/From/);
  });

  it("signs with no signers by returning the message in CRLF form", async () => {
    expect(await signDkim("From: a@example.com\n\nhi\n", [])).toBe("From: a@example.com\r\n\r\nhi\r\n");
  });
});

describe("verifyOwnHeaderSignature (returned originals in reports, issue 15)", () => {
  const headBlock = (signed: string) => signed.slice(0, signed.indexOf("\r\n\r\n") + 2);

  it("verifies the header hash of our own RSA and Ed25519 signatures without the body, after refolding", async () => {
    for (const signer of [rsa, ed]) {
      const signed = await signDkim(message(bodies.plain ?? ""), [signer]);
      // A bounce returns the headers only, often with different folding and line endings.
      const returned = headBlock(signed).replace(/\r\n(?=[ \t])/g, "\n").replace("Subject: Quarterly report", "Subject:  Quarterly   report");
      const v = await verifyOwnHeaderSignature(returned, [signer]);
      expect(v).toMatchObject({ domain: "example.com", selector: signer.selector });
      expect(v!.signedFields).toContainEqual({ name: "message-id", value: "<m1.abc123@example.com>" });
    }
  });

  it("finds nothing for altered headers, someone else's key or an unsigned copy", async () => {
    const signed = await signDkim(message(bodies.plain ?? ""), [rsa]);
    expect(await verifyOwnHeaderSignature(headBlock(signed).replace("m1.abc123", "m2.abc123"), [rsa])).toBeNull();
    expect(await verifyOwnHeaderSignature(headBlock(signed).replace("Subject:", "Sender: x@evil.example\r\nSubject:"), [rsa])).toBeNull();
    expect(await verifyOwnHeaderSignature(headBlock(signed), [{ ...rsa, privateKeyPem: otherRsaPem }])).toBeNull();
    expect(await verifyOwnHeaderSignature(headBlock(message("x")), [rsa])).toBeNull();
  });
});
