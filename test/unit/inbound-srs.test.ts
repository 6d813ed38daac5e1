/** SRS (Shevek's scheme as in Mail::SRS / libsrs2) and forwarding loop detection: pure, in plain Node. */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { checkForwardingLoop, headerSectionOf, MAX_RECEIVED_HOPS } from "../../src/inbound/loop";
import { isSrsAddress, SRS_MAX_AGE_DAYS, srsForward, srsReverse } from "../../src/mime/srs";

const secret = "srs-test-secret-0123456789";
const DAY = 86_400_000;
const now = Date.UTC(2026, 10, 28, 6, 0, 0);

describe("SRS", () => {
  it("rewrites to SRS0=HHHH=TT=domain=local with a 50-bit HMAC-SHA256 hash and the day stamp, and reverses it", async () => {
    const srs = await srsForward("Alice.Smith@Sender.example", "fw.example", secret, now);
    const m = /^SRS0=([A-Z2-7]{10})=([A-Z2-7]{2})=Sender\.example=Alice\.Smith@fw\.example$/.exec(srs);
    expect(m).not.toBeNull();
    // The hash is the first 10 base32 characters of HMAC-SHA256 over timestamp, domain and local part, lower-cased
    // (issue 15: as strong as the VERP signature; libsrs2's 4 base64 characters are ~19 bits without case).
    const mac = createHmac("sha256", secret).update(`srs2:${m![2]!.toLowerCase()}\0sender.example\0alice.smith`).digest();
    const bits = [...mac].map((b) => b.toString(2).padStart(8, "0")).join("");
    const expected = Array.from({ length: 10 }, (_, i) => "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[parseInt(bits.slice(i * 5, i * 5 + 5), 2)]).join("");
    expect(m![1]).toBe(expected);
    const day = Math.floor(now / DAY) % 1024;
    expect(m![2]).toBe("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[day >> 5]! + "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[day & 31]!);
    expect(await srsReverse(srs, secret, now)).toEqual({ ok: true, address: "Alice.Smith@Sender.example" });
    // MTAs that fold the case of local parts do not break it.
    expect(await srsReverse(srs.toLowerCase(), secret, now)).toEqual({ ok: true, address: "alice.smith@sender.example" });
    expect(isSrsAddress(srs)).toBe(true);
    expect(isSrsAddress("alice@sender.example")).toBe(false);
  });

  it("refuses a wrong hash, another secret, and addresses older than the maximum age", async () => {
    const srs = await srsForward("bob@sender.example", "fw.example", secret, now);
    // The old 4-character form (and any prefix of the real hash) is refused.
    const [, h = "", rest = ""] = /^SRS0=([^=]+)=(.*)$/.exec(srs)!;
    expect(await srsReverse(`SRS0=${h.slice(0, 4)}=${rest}`, secret, now)).toMatchObject({ ok: false });
    expect(await srsReverse(`SRS0=${h.slice(0, 9)}=${rest}`, secret, now)).toMatchObject({ ok: false });
    const tampered = srs.replace("=bob@", "=eve@");
    expect(await srsReverse(tampered, secret, now)).toMatchObject({ ok: false });
    expect(await srsReverse(srs, "another-secret-0123456789", now)).toMatchObject({ ok: false });
    expect(await srsReverse(srs, secret, now + SRS_MAX_AGE_DAYS * DAY)).toMatchObject({ ok: true });
    expect(await srsReverse(srs, secret, now + (SRS_MAX_AGE_DAYS + 1) * DAY)).toEqual({ ok: false, error: `the SRS address is older than ${SRS_MAX_AGE_DAYS} days` });
    expect(await srsReverse("plain@fw.example", secret, now)).toEqual({ ok: false, error: "not an SRS address" });
  });

  it("turns another forwarder's SRS0 address into SRS1 and back into that SRS0 address", async () => {
    const first = await srsForward("carol@origin.example", "first.example", "first-forwarder-secret", now);
    const second = await srsForward(first, "fw.example", secret, now);
    expect(second).toMatch(/^SRS1=[A-Z2-7]{10}=first\.example==[A-Z2-7]{10}=[A-Z2-7]{2}=origin\.example=carol@fw\.example$/);
    expect(await srsReverse(second, secret, now)).toEqual({ ok: true, address: first });
    // Re-forwarding an SRS1 address keeps the first forwarder.
    const third = await srsForward(second, "third.example", secret, now);
    expect(third).toMatch(/^SRS1=[A-Z2-7]{10}=first\.example==.*@third\.example$/);
    expect(await srsReverse(third, secret, now)).toEqual({ ok: true, address: first });
  });

  it("keeps the null sender and our own addresses", async () => {
    expect(await srsForward("", "fw.example", secret, now)).toBe("");
    expect(await srsForward("<>", "fw.example", secret, now)).toBe("");
    expect(await srsForward("owner@fw.example", "fw.example", secret, now)).toBe("owner@fw.example");
  });
});

describe("forwarding loop detection", () => {
  const hops = (n: number, by = "mx.example") => Array.from({ length: n }, (_, i) => `Received: from h${i}.example\r\n\tby ${by} with ESMTP; Sat, 28 Nov 2026 06:00:00 +0000`).join("\r\n");

  it("passes ordinary mail and counts its hops", () => {
    expect(checkForwardingLoop(`${hops(3)}\r\nFrom: a@b.example`, "team@fw.example", "relay.edge-relay.local")).toEqual({ loop: false, receivedHops: 3 });
  });

  it("stops more Received fields than the RFC 5321 section 6.3 threshold", () => {
    expect(checkForwardingLoop(hops(MAX_RECEIVED_HOPS), "t@fw.example", "relay.example").loop).toBe(false);
    expect(checkForwardingLoop(hops(MAX_RECEIVED_HOPS + 1), "t@fw.example", "relay.example")).toMatchObject({ loop: true });
  });

  it("stops our own loop marker for the same alias (any case, folded), not for another alias", () => {
    const head = `X-Edge-Relay-Loop:\r\n TEAM@fw.example\r\n${hops(1)}`;
    expect(checkForwardingLoop(head, "team@fw.example", "relay.example")).toMatchObject({ loop: true });
    expect(checkForwardingLoop(head, "sales@fw.example", "relay.example").loop).toBe(false);
  });

  it("stops a message that passed through this relay too often", () => {
    expect(checkForwardingLoop(hops(11, "relay.edge-relay.local"), "t@fw.example", "relay.edge-relay.local")).toMatchObject({ loop: true });
    expect(checkForwardingLoop(hops(11, "relay.edge-relay.local.other.example"), "t@fw.example", "relay.edge-relay.local").loop).toBe(false);
  });

  it("reads only the header section of raw bytes", () => {
    const raw = new TextEncoder().encode("Subject: x\r\nReceived: a\r\n\r\nReceived: in the body\r\n");
    expect(headerSectionOf(raw)).toBe("Subject: x\r\nReceived: a");
  });
});
