import { describe, expect, it } from "vitest";
import { MAX_TRACKED_URL_CHARS, signTrackingToken, verifyTrackingToken } from "../../src/tracking/token";
import { decodeAttributeValue, redirectLocation, trackableUrl } from "../../src/tracking/url";

const secret = "tracking-test-secret-0123456789";

describe("tracking tokens", () => {
  it("round-trips a click with the exact URL, non-ASCII, query and fragment included", async () => {
    const url = "https://exämple.com/pfad/straße?q=a+b&x=%20y&emoji=🎉#frag/ment?x";
    const token = await signTrackingToken({ kind: "click", messageId: "0mwzzvm8mjg8lf0v1mtql", recipientIdx: 7, url }, secret);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(await verifyTrackingToken(token, secret)).toEqual({ kind: "click", messageId: "0mwzzvm8mjg8lf0v1mtql", recipientIdx: 7, url });
  });

  it("round-trips an open", async () => {
    const token = await signTrackingToken({ kind: "open", messageId: "abc123", recipientIdx: 0 }, secret);
    expect(await verifyTrackingToken(token, secret, "open")).toEqual({ kind: "open", messageId: "abc123", recipientIdx: 0 });
  });

  it("refuses tampered payloads, tampered macs, other secrets and the wrong kind", async () => {
    const token = await signTrackingToken({ kind: "click", messageId: "abc123", recipientIdx: 1, url: "https://example.com/a" }, secret);
    const [payload, mac] = token.split(".") as [string, string];
    const evil = btoa("c\nabc123\n1\nhttps://evil.example/").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    expect(await verifyTrackingToken(`${evil}.${mac}`, secret)).toBeNull();
    const flipped = mac[0] === "A" ? `B${mac.slice(1)}` : `A${mac.slice(1)}`;
    expect(await verifyTrackingToken(`${payload}.${flipped}`, secret)).toBeNull();
    expect(await verifyTrackingToken(`${payload}.${mac.slice(0, -1)}`, secret)).toBeNull();
    expect(await verifyTrackingToken(token, "another-secret-0123456789")).toBeNull();
    expect(await verifyTrackingToken(token, secret, "open")).toBeNull();
    for (const junk of ["", ".", "abc", "a.b", `${payload}`, "%%%.%%%", "x".repeat(20_000)]) {
      expect(await verifyTrackingToken(junk, secret)).toBeNull();
    }
  });

  it("refuses to sign ids, indexes or URLs outside the documented shape", async () => {
    await expect(signTrackingToken({ kind: "open", messageId: "ABC", recipientIdx: 0 }, secret)).rejects.toThrow(RangeError);
    await expect(signTrackingToken({ kind: "open", messageId: "abc", recipientIdx: -1 }, secret)).rejects.toThrow(RangeError);
    await expect(signTrackingToken({ kind: "click", messageId: "abc", recipientIdx: 0, url: "https://a.example/\nx" }, secret)).rejects.toThrow(RangeError);
  });

  it("verifies a token for the longest trackable URL", async () => {
    const url = `https://example.com/?q=${"ü".repeat(MAX_TRACKED_URL_CHARS - 30)}`;
    const token = await signTrackingToken({ kind: "click", messageId: "abc", recipientIdx: 49, url }, secret);
    expect((await verifyTrackingToken(token, secret))?.kind).toBe("click");
  });
});

describe("link URLs", () => {
  it("decodes character references as a browser does in attribute values", () => {
    expect(decodeAttributeValue("https://a.example/?x=1&amp;y=2&#38;z=3&#x26;w=4")).toBe("https://a.example/?x=1&y=2&z=3&w=4");
    // A bare "&name=" in a query string is literal text.
    expect(decodeAttributeValue("https://a.example/?x=1&y=2")).toBe("https://a.example/?x=1&y=2");
    // A legacy name followed by "=", a letter or a digit stays literal in attributes (HTML Living Standard).
    expect(decodeAttributeValue("https://a.example/?a=1&copy=2&notify=1&times=3")).toBe("https://a.example/?a=1&copy=2&notify=1&times=3");
    expect(decodeAttributeValue("https://a.example/?a=1&amp")).toBe("https://a.example/?a=1&");
    // A legacy name a browser would decode to something we do not know, or an unknown named reference: left alone.
    expect(decodeAttributeValue("https://a.example/?a=1&copy-x")).toBeNull();
    expect(decodeAttributeValue("https://a.example/?a=1&notarealentity;")).toBeNull();
  });

  it("tracks only absolute http(s) URLs", () => {
    expect(trackableUrl("  https://a.example/x \n")).toBe("https://a.example/x");
    expect(trackableUrl("HTTP://A.example/X")).toBe("HTTP://A.example/X");
    for (const href of ["mailto:a@b.example", "tel:+4930123", "#top", "/relative", "javascript:alert(1)", "https://", "ftp://a.example/", "{{url}}"]) {
      expect(trackableUrl(href)).toBeNull();
    }
  });

  it("writes Location headers that keep the URL and encode only what a header cannot carry", () => {
    expect(redirectLocation("https://a.example/p?q=1&r=%41#frag")).toBe("https://a.example/p?q=1&r=%41#frag");
    expect(redirectLocation("https://a.example/straße?q=ü#ä")).toBe("https://a.example/stra%C3%9Fe?q=%C3%BC#%C3%A4");
    expect(redirectLocation("https://bücher.example/x?y=ü")).toBe("https://xn--bcher-kva.example/x?y=%C3%BC");
    const loc = redirectLocation("https://bücher.example/stra ße?q=ü#ä");
    expect(new URL(loc).href).toBe(new URL("https://bücher.example/stra ße?q=ü#ä").href);
  });
});
