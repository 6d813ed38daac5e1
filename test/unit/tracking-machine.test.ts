/**
 * Machine-hit rules against user agents as mail providers, gateways and browsers send them (from ESP audits
 * and provider documentation: Apple MPP's bare token, Gmail's and Yahoo's image proxies, Outlook's ms-office
 * image fetch, Barracuda Sentinel, and current desktop and mobile browsers).
 */
import { describe, expect, it } from "vitest";
import { MACHINE_WINDOW_MS, classifyTrackingHit, type TrackingHit } from "../../src/tracking/machine";

const delivered = 1_800_000_000_000;
const later = delivered + 3_600_000;

function hit(userAgent: string | null, over: Partial<TrackingHit> = {}): TrackingHit {
  return { kind: "open", userAgent, method: "GET", at: later, deliveredAt: delivered, pending: false, ...over };
}

const BROWSERS = {
  chromeWindows: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  safariIphone: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  firefoxLinux: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
  edge: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
  samsung: "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
  appleMailMac: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
  iphoneMail: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
  outlookDesktopImages: "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
};

describe("classifyTrackingHit", () => {
  it("counts real browsers and mail clients an hour after delivery as people", () => {
    for (const [name, ua] of Object.entries(BROWSERS)) {
      expect(classifyTrackingHit(hit(ua)), name).toEqual({ machine: false, reason: null, proxy: null });
      if (name !== "outlookDesktopImages") expect(classifyTrackingHit(hit(ua, { kind: "click" })).machine, name).toBe(false);
    }
  });

  it("flags Apple Mail Privacy Protection's proxy", () => {
    expect(classifyTrackingHit(hit("Mozilla/5.0"))).toEqual({ machine: true, reason: "apple_mpp", proxy: null });
  });

  it("counts Gmail and Yahoo image proxy opens as human, marked with the proxy", () => {
    expect(classifyTrackingHit(hit("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"))).toEqual({ machine: false, reason: null, proxy: "google" });
    expect(classifyTrackingHit(hit("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"))).toEqual({ machine: false, reason: null, proxy: "yahoo" });
    // ... unless they arrive within seconds of delivery (prefetch).
    expect(classifyTrackingHit(hit("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", { at: delivered + 1_000 }))).toMatchObject({ machine: true, reason: "soon_after_delivery", proxy: "google" });
  });

  it("flags security gateways by user agent", () => {
    for (const ua of [
      "Barracuda Sentinel (EE)",
      "Mozilla/5.0 (compatible; Mimecast URL Protect)",
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Proofpoint URL Defense",
      "Cisco IronPort Web Security",
      "Mozilla/5.0 (compatible; TrendMicro TMES)",
    ]) {
      expect(classifyTrackingHit(hit(ua, { kind: "click" })), ua).toMatchObject({ machine: true, reason: "security_scanner" });
    }
  });

  it("flags Office link pre-checks (Safe Links time-of-click and ms-office existence discovery) on clicks", () => {
    expect(classifyTrackingHit(hit("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)", { kind: "click" }))).toMatchObject({ machine: true, reason: "office_link_check" });
    expect(classifyTrackingHit(hit(BROWSERS.outlookDesktopImages, { kind: "click" }))).toMatchObject({ machine: true, reason: "office_link_check" });
  });

  it("flags a browser-like scanner by timing: before delivery was recorded or within the window", () => {
    const sandbox = BROWSERS.chromeWindows; // Defender's detonation sandbox sends an ordinary Chrome user agent
    expect(classifyTrackingHit(hit(sandbox, { kind: "click", pending: true, deliveredAt: null }))).toMatchObject({ machine: true, reason: "before_delivery" });
    expect(classifyTrackingHit(hit(sandbox, { kind: "click", at: delivered + 2_000 }))).toMatchObject({ machine: true, reason: "soon_after_delivery" });
    expect(classifyTrackingHit(hit(sandbox, { kind: "click", at: delivered + MACHINE_WINDOW_MS }))).toMatchObject({ machine: false });
  });

  it("flags crawlers, HTTP libraries, headless browsers, HEAD requests and missing user agents", () => {
    for (const ua of [
      "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
      "curl/8.5.0",
      "python-requests/2.32.3",
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
      "Go-http-client/2.0",
    ]) {
      expect(classifyTrackingHit(hit(ua)), ua).toMatchObject({ machine: true, reason: "bot_user_agent" });
    }
    expect(classifyTrackingHit(hit(BROWSERS.chromeWindows, { method: "HEAD" }))).toMatchObject({ machine: true, reason: "head_request" });
    expect(classifyTrackingHit(hit(null))).toMatchObject({ machine: true, reason: "no_user_agent" });
    expect(classifyTrackingHit(hit("  "))).toMatchObject({ machine: true, reason: "no_user_agent" });
  });
});
