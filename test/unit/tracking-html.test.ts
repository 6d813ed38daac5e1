import { describe, expect, it } from "vitest";
import { MAX_TRACKED_LINKS, planHtmlTracking, rewriteHtmlForRecipients, rewriteHtmlForTracking } from "../../src/tracking/html";
import { verifyTrackingToken } from "../../src/tracking/token";

const secret = "tracking-test-secret-0123456789";
const base = "https://track.example.net";
const opts = { messageId: "m1", recipientIdx: 3, trackClicks: true, trackOpens: true, baseUrl: base, secret };

async function clickTargets(html: string): Promise<string[]> {
  const out: string[] = [];
  for (const m of html.matchAll(/\/t\/c\/([A-Za-z0-9_.-]+)/g)) {
    const t = await verifyTrackingToken(m[1]!, secret, "click");
    if (t?.kind === "click") out.push(`${t.recipientIdx}:${t.url}`);
  }
  return out;
}

describe("rewriteHtmlForTracking", () => {
  it("rewrites http(s) links to signed tracking URLs carrying the exact original URL", async () => {
    const html = `<html><body><p><a href="https://shop.example/ä?x=1&amp;y=2#top">Shop</a> <A HREF='http://b.example/'>b</A> <a class=x href=https://c.example/q?z=%2F>c</a></p></body></html>`;
    const out = await rewriteHtmlForTracking(html, opts);
    expect(out).not.toContain("shop.example");
    expect(await clickTargets(out)).toEqual(["3:https://shop.example/ä?x=1&y=2#top", "3:http://b.example/", "3:https://c.example/q?z=%2F"]);
    expect(out).toContain(`<a class=x href=${base}/t/c/`);
    expect(out).toMatch(/<A HREF='https:\/\/track\.example\.net\/t\/c\/[^']+'>b<\/A>/);
  });

  it("leaves mailto, tel, anchors, relative links, data-no-track and the unsubscribe URL alone", async () => {
    const html = [
      `<a href="mailto:help@example.com">m</a>`,
      `<a href="tel:+4930123">t</a>`,
      `<a href="#section">s</a>`,
      `<a href="/relative">r</a>`,
      `<a href="https://keep.example/" data-no-track>k</a>`,
      `<a data-no-track="true" href="https://keep2.example/">k2</a>`,
      `<a href="https://relay.example/unsubscribe?token=abc">u</a>`,
      `<a href="https://header-unsub.example/u/1">h</a>`,
      `<a name="anchor-only">n</a>`,
      `<a href="https://tracked.example/">yes</a>`,
    ].join("\n");
    const out = await rewriteHtmlForTracking(html, { ...opts, trackOpens: false, unsubscribeUrl: "https://relay.example/unsubscribe?token=abc", excludeUrls: ["https://header-unsub.example/u/1"] });
    expect(out.replace(/href="https:\/\/track\.example\.net\/t\/c\/[^"]+"/, 'href="TRACKED"')).toBe(html.replace('href="https://tracked.example/"', 'href="TRACKED"'));
  });

  it("ignores links inside comments, scripts, styles and attribute values", async () => {
    const html = `<!-- <a href="https://c.example/"> --><script>var s = '<a href="https://s.example/">'</script><style>a[href="https://st.example/"]{}</style><div title='<a href="https://attr.example/">'></div><a href="https://real.example/">x</a>`;
    const out = await rewriteHtmlForTracking(html, { ...opts, trackOpens: false });
    expect(await clickTargets(out)).toEqual(["3:https://real.example/"]);
    expect(out).toContain('<a href="https://c.example/">');
    expect(out).toContain("https://s.example/");
  });

  it("puts the pixel before </body>, or at the end without one", async () => {
    const withBody = await rewriteHtmlForTracking("<html><body><p>Hi</p></BODY></html>", { ...opts, trackClicks: false });
    expect(withBody).toMatch(/^<html><body><p>Hi<\/p><img src="https:\/\/track\.example\.net\/t\/o\/[A-Za-z0-9_.-]+" width="1" height="1" alt="" [^>]*><\/BODY><\/html>$/);
    const token = /\/t\/o\/([A-Za-z0-9_.-]+)/.exec(withBody)![1]!;
    expect(await verifyTrackingToken(token, secret)).toEqual({ kind: "open", messageId: "m1", recipientIdx: 3 });
    const fragment = await rewriteHtmlForTracking("<p>Hi</p>", { ...opts, trackClicks: false });
    expect(fragment).toMatch(/^<p>Hi<\/p><img src="[^"]+\/t\/o\/[^"]+"[^>]*>$/);
    // A "</body>" inside a comment is not the end of the body.
    expect(await rewriteHtmlForTracking("<body>x<!-- </body> --></body>", { ...opts, trackClicks: false })).toMatch(/<!-- <\/body> --><img [^>]+><\/body>$/);
  });

  it("changes nothing when both settings are off, and keeps malformed HTML intact", async () => {
    const html = `<a href="https://a.example/">a</a>`;
    expect(await rewriteHtmlForTracking(html, { ...opts, trackClicks: false, trackOpens: false })).toBe(html);
    const broken = `<a href="https://a.example/">a</a><a href="https://b.example/`;
    const out = await rewriteHtmlForTracking(broken, { ...opts, trackOpens: false });
    expect(await clickTargets(out)).toEqual(["3:https://a.example/"]);
    expect(out.endsWith(`<a href="https://b.example/`)).toBe(true);
  });

  it("gives every recipient their own tokens from one scan", async () => {
    const html = `<body><a href="https://a.example/?r=1">a</a></body>`;
    const bodies = await rewriteHtmlForRecipients(html, 3, { messageId: "m2", trackClicks: true, trackOpens: true, baseUrl: base, secret });
    expect(bodies).toHaveLength(3);
    for (const [i, body] of bodies.entries()) expect(await clickTargets(body)).toEqual([`${i}:https://a.example/?r=1`]);
    expect(new Set(bodies).size).toBe(3);
  });

  it("tracks at most MAX_TRACKED_LINKS links and leaves the rest as they are", () => {
    const html = '<a href="https://a.example/">a</a>'.repeat(MAX_TRACKED_LINKS + 3);
    expect(planHtmlTracking(html, { trackClicks: true }).links).toHaveLength(MAX_TRACKED_LINKS);
  });

  it("plans link spans without touching the document", () => {
    const html = `<a href="https://a.example/">a</a>`;
    const plan = planHtmlTracking(html, { trackClicks: true });
    expect(plan.links).toEqual([{ start: 9, end: 27, url: "https://a.example/" }]);
    expect(html.slice(9, 27)).toBe("https://a.example/");
    expect(plan.pixelAt).toBe(html.length);
  });
});
