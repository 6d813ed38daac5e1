// Every relative link and #anchor in the README and docs/ resolves, the way GitHub renders them (issue 24).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { brokenLinks, documentationFiles, githubSlug, headingAnchors, markdownLinks } from "../support/docs-check";

const ROOT = resolve(__dirname, "../..");

describe("links in README.md and docs/", () => {
  it("all resolve: files exist and #anchors name a heading of the target page", () => {
    const files = documentationFiles(ROOT);
    expect(files.map((f) => f.slice(ROOT.length + 1))).toEqual(expect.arrayContaining(["README.md", "docs/configuration.md", "docs/architecture.md"]));
    expect(brokenLinks(ROOT, files)).toEqual([]);
  });

  it("the README stays short and keeps the quick-start commands CI runs", async () => {
    const { readFileSync, statSync } = await import("node:fs");
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    expect(statSync(join(ROOT, "README.md")).size).toBeLessThanOrEqual(10 * 1024);
    expect(readme).toContain("npm install && npm start");
    expect(readme).toMatch(/^npm test$/m);
  });

  it("every docs page starts with its task and ends with how to check it worked", async () => {
    const { readFileSync } = await import("node:fs");
    const pages = documentationFiles(ROOT).filter((f) => f.startsWith(join(ROOT, "docs") + "/"));
    expect(pages.length).toBeGreaterThanOrEqual(13);
    for (const page of pages) {
      const md = readFileSync(page, "utf8");
      expect(md, page).toMatch(/^# .+\n\n\S/);
      expect([...headingAnchors(md)].at(-1), page).toBe("how-to-check-it-worked");
    }
  });
});

describe("the link checker itself", () => {
  it("makes GitHub's heading anchors", () => {
    expect(githubSlug("Delivery: routes, DomainGates, retries and bounces")).toBe("delivery-routes-domaingates-retries-and-bounces");
    expect(githubSlug("Reliability: `npm run test:chaos`")).toBe("reliability-npm-run-testchaos");
    expect(githubSlug("Microsoft 365 (Exchange Online) connector")).toBe("microsoft-365-exchange-online-connector");
    expect(githubSlug("What the email() handler does")).toBe("what-the-email-handler-does");
    expect(githubSlug("`SMTP_*` and **bold** [link](x.md)")).toBe("smtp_-and-bold-link");
    expect(githubSlug("Größe & Ümlaut")).toBe("größe--ümlaut");
    expect([...headingAnchors("# A\n## Same\n```\n# not a heading\n```\n## Same\n### Same")]).toEqual(["a", "same", "same-1", "same-2"]);
  });

  it("finds links in prose and tables, not in code", () => {
    const md = [
      "See [a](a.md#x) and ![img](i.png \"title\") | [`code` text](b.md) |",
      "Not `[c](c.md)` here.",
      "```",
      "[d](d.md)",
      "```",
      "[ref]: e.md",
      '<img src="f.png">',
    ].join("\n");
    expect(markdownLinks(md).map((l) => l.target)).toEqual(["a.md#x", "i.png", "b.md", "e.md", "f.png"]);
  });

  const dir = mkdtempSync(join(tmpdir(), "docs-links-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reports a missing file, a missing anchor and a line anchor on a Markdown-less target", () => {
    mkdirSync(join(dir, "docs"));
    writeFileSync(join(dir, "docs", "page.md"), "# Page\n\n## Real section\n");
    writeFileSync(join(dir, "data.json"), "{}");
    writeFileSync(
      join(dir, "README.md"),
      [
        "[ok](docs/page.md#real-section) [ok2](#top) [web](https://example.com/x.md) [json](data.json#L3)",
        "# Top",
        "[gone](docs/missing.md) [bad anchor](docs/page.md#real-sections) [bad json anchor](data.json#key)",
        "[outside](../elsewhere.md)",
      ].join("\n"),
    );
    expect(brokenLinks(dir, documentationFiles(dir))).toEqual([
      "README.md:3: docs/missing.md (no such file)",
      "README.md:3: docs/page.md#real-sections (no heading with anchor #real-sections)",
      "README.md:3: data.json#key (only #L<line> anchors work in a non-Markdown file)",
      "README.md:4: ../elsewhere.md (points outside the repository)",
    ]);
  });
});
