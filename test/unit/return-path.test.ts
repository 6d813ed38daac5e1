import { describe, expect, it } from "vitest";
import {
  RETURN_PATH_SIGNATURE_LENGTH,
  bounceDomainFor,
  decodeReturnPath,
  encodeReturnPath,
  isReturnPathAddress,
} from "../../src/mime/return-path";

const secret = "return-path-test-secret";

describe("encodeReturnPath / decodeReturnPath", () => {
  it("round-trips message id and recipient index", async () => {
    const address = await encodeReturnPath({ messageId: "m01hx7k2q9", recipientIndex: 3 }, secret, "bounces.example.com");
    expect(address).toMatch(new RegExp(`^bounce\\+m01hx7k2q9-3-[a-z2-7]{${RETURN_PATH_SIGNATURE_LENGTH}}@bounces\\.example\\.com$`));
    expect(await decodeReturnPath(address, secret)).toEqual({ messageId: "m01hx7k2q9", recipientIndex: 3 });
  });

  it("keeps the longest local part within 64 octets", async () => {
    const address = await encodeReturnPath({ messageId: "z".repeat(32), recipientIndex: 999_999 }, secret, "bounces.example.com");
    const local = address.slice(0, address.lastIndexOf("@"));
    expect(local.length).toBeLessThanOrEqual(64);
    expect(await decodeReturnPath(address, secret)).toEqual({ messageId: "z".repeat(32), recipientIndex: 999_999 });
  });

  it("is deterministic and differs per recipient", async () => {
    const a = await encodeReturnPath({ messageId: "abc", recipientIndex: 0 }, secret, "bounces.example.com");
    const b = await encodeReturnPath({ messageId: "abc", recipientIndex: 0 }, secret, "bounces.example.com");
    const c = await encodeReturnPath({ messageId: "abc", recipientIndex: 1 }, secret, "bounces.example.com");
    expect(a).toBe(b);
    expect(a.split("-").pop()).not.toBe(c.split("-").pop());
  });

  it("decodes angle brackets, upper case and a bytes secret", async () => {
    const bytes = new TextEncoder().encode(secret);
    const address = await encodeReturnPath({ messageId: "q1", recipientIndex: 12 }, bytes, "Bounces.Example.COM.");
    expect(address.endsWith("@bounces.example.com")).toBe(true);
    expect(await decodeReturnPath(`<${address.toUpperCase()}>`, secret)).toEqual({ messageId: "q1", recipientIndex: 12 });
  });

  it("rejects forged, altered and foreign addresses", async () => {
    const address = await encodeReturnPath({ messageId: "abc", recipientIndex: 0 }, secret, "bounces.example.com");
    const sig = address.slice(address.lastIndexOf("-") + 1, address.indexOf("@"));
    expect(await decodeReturnPath(address, "another-secret")).toBeNull();
    expect(await decodeReturnPath(address.replace("abc-0-", "abc-1-"), secret)).toBeNull();
    expect(await decodeReturnPath(address.replace("abc-0-", "abd-0-"), secret)).toBeNull();
    const flipped = sig.slice(0, -1) + (sig.endsWith("a") ? "b" : "a");
    expect(await decodeReturnPath(address.replace(sig, flipped), secret)).toBeNull();
    expect(await decodeReturnPath(address.replace("abc-0-", "abc-00-"), secret)).toBeNull();
    expect(await decodeReturnPath("postmaster@bounces.example.com", secret)).toBeNull();
    expect(await decodeReturnPath("bounce+abc-0@bounces.example.com", secret)).toBeNull();
    expect(await decodeReturnPath("not an address", secret)).toBeNull();
    expect(isReturnPathAddress(address)).toBe(true);
    expect(isReturnPathAddress("alice@example.com")).toBe(false);
  });

  it("refuses ids, indexes and domains outside the agreed shape", async () => {
    await expect(encodeReturnPath({ messageId: "ABC", recipientIndex: 0 }, secret, "bounces.example.com")).rejects.toThrow(RangeError);
    await expect(encodeReturnPath({ messageId: "a".repeat(33), recipientIndex: 0 }, secret, "bounces.example.com")).rejects.toThrow(RangeError);
    await expect(encodeReturnPath({ messageId: "abc", recipientIndex: -1 }, secret, "bounces.example.com")).rejects.toThrow(RangeError);
    await expect(encodeReturnPath({ messageId: "abc", recipientIndex: 1.5 }, secret, "bounces.example.com")).rejects.toThrow(RangeError);
    await expect(encodeReturnPath({ messageId: "abc", recipientIndex: 0 }, secret, "bad domain")).rejects.toThrow(RangeError);
    await expect(encodeReturnPath({ messageId: "abc", recipientIndex: 0 }, "", "bounces.example.com")).rejects.toThrow(RangeError);
  });
});

describe("bounceDomainFor", () => {
  it("puts the bounce label under the From domain", () => {
    expect(bounceDomainFor("Example.COM")).toBe("bounces.example.com");
    expect(bounceDomainFor("mail.example.co.uk.", "rp")).toBe("rp.mail.example.co.uk");
    expect(() => bounceDomainFor("example")).toThrow(RangeError);
    expect(() => bounceDomainFor("example.com", "bad.label")).toThrow(RangeError);
  });
});
