/**
 * Scores the bounce parser against the labelled corpus in test/fixtures/bounces (see its README):
 * status code and hard/soft right for at least 95% of failure entries, reason right for at least 90%,
 * ARF feedback type right for all complaints. Prints each accuracy and lists the misses.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseBounce, type BounceReport } from "../../src/inbound/bounce";
import { bounceFixturesDir } from "../support/fixtures";

interface Label {
  file: string;
  index: number;
  status: string | null;
  replycode: string | null;
  reason: string;
  hardbounce: boolean;
  feedbacktype: string | null;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fixturesDir = bounceFixturesDir();

function statusMatches(label: string | null, got: string): boolean {
  if (label === null) return true;
  if (/^[45]\.0\.9\d\d$/.test(label)) return got.charAt(0) === label.charAt(0);
  return got === label;
}

describe("parseBounce on the labelled corpus", () => {
  const dir = fixturesDir;
  const labels = (JSON.parse(readFileSync(path.join(dir, "labels.json"), "utf8")) as Label[]);
  const cache = new Map<string, BounceReport>();
  const parse = (file: string): BounceReport => {
    let r = cache.get(file);
    if (!r) {
      r = parseBounce(readFileSync(path.join(dir, file)));
      cache.set(file, r);
    }
    return r;
  };

  it("meets the accuracy targets", () => {
    const failures = labels.filter((l) => !["delivered", "vacation", "feedback"].includes(l.reason));
    const misses: string[] = [];
    let statusOk = 0;
    let hardOk = 0;
    let reasonOk = 0;
    for (const l of failures) {
      const report = parse(l.file);
      const got = report.kind === "bounce" || report.kind === "delayed" ? report.recipients[l.index] : undefined;
      const sOk = got !== undefined && statusMatches(l.status, got.status);
      const hOk = got !== undefined && got.hard === l.hardbounce;
      const rOk = got !== undefined && got.reason === l.reason;
      if (sOk) statusOk++;
      if (hOk) hardOk++;
      if (rOk) reasonOk++;
      if (!sOk || !hOk || !rOk) {
        misses.push(
          `${l.file}#${l.index}: want ${l.status} ${l.reason} hard=${l.hardbounce}; got ` +
            (got ? `${got.status} ${got.reason} hard=${got.hard} <${got.address}> [${(got.diagnosticCode ?? "").slice(0, 160)}]` : `kind=${report.kind} n=${report.recipients.length}`),
        );
      }
    }
    const pct = (n: number): number => Math.round((1000 * n) / failures.length) / 10;
    console.log(
      `bounce corpus: ${failures.length} failure entries; status ${pct(statusOk)}%, hard/soft ${pct(hardOk)}%, reason ${pct(reasonOk)}%\n` +
        `misses (${misses.length}):\n  ${misses.join("\n  ")}`,
    );
    expect(statusOk / failures.length).toBeGreaterThanOrEqual(0.95);
    expect(hardOk / failures.length).toBeGreaterThanOrEqual(0.95);
    expect(reasonOk / failures.length).toBeGreaterThanOrEqual(0.9);
  });

  it("reads every ARF feedback type and recognises non-failures", () => {
    const misses: string[] = [];
    for (const l of labels) {
      const report = parse(l.file);
      if (l.reason === "feedback") {
        // Some reports redact every recipient ("Undisclosed Recipients"); the type must still be right.
        const ok = report.kind === "complaint" && report.feedbackType === l.feedbacktype;
        if (!ok) misses.push(`${l.file}#${l.index}: want complaint ${l.feedbacktype}; got ${report.kind} ${report.feedbackType ?? ""}`);
        else if (report.recipients[l.index] === undefined) console.log(`note: ${l.file}#${l.index}: complaint names no recipient`);
      } else if (l.reason === "vacation") {
        if (report.kind !== "auto-reply") misses.push(`${l.file}: want auto-reply; got ${report.kind}`);
      } else if (l.reason === "delivered") {
        if (report.kind !== "delivered") misses.push(`${l.file}: want delivered; got ${report.kind}`);
      }
    }
    console.log(`complaints/auto-replies/deliveries misses (${misses.length}):\n  ${misses.join("\n  ")}`);
    expect(misses).toEqual([]);
  });
});
