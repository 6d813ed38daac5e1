/** Job bundles (issue 16): several delivery jobs per Queue message, packed by count, bytes and delay. */
import { describe, expect, it } from "vitest";
import { BUNDLE_BYTES, bundleJobs, isJobBundle, jobsOf, JOBS_PER_BUNDLE } from "../../src/queue/enqueue";
import type { DeliveryJob } from "../../src/queue/job";

function job(i: number, body = "hello"): DeliveryJob {
  return { v: 1, messageId: `m${i}`, tenantId: "t", mailFrom: "a@x.example", recipients: [{ idx: 0, address: `u${i}@d.example` }], destination: "d.example", body, sizeBytes: body.length, smtputf8: false, eightBit: false, acceptedAt: 1, attempt: 0 };
}

describe("bundleJobs", () => {
  it("packs up to JOBS_PER_BUNDLE jobs per message in order, and a lone job travels as itself", () => {
    const out = bundleJobs(Array.from({ length: 2 * JOBS_PER_BUNDLE + 1 }, (_, i) => ({ body: job(i) })));
    expect(out.map((o) => (isJobBundle(o.body) ? o.body.bundle.length : 1))).toEqual([JOBS_PER_BUNDLE, JOBS_PER_BUNDLE, 1]);
    expect(isJobBundle(out[2]!.body)).toBe(false);
    expect(out.flatMap((o) => jobsOf(o.body)).map((j) => j.messageId)).toEqual(Array.from({ length: 2 * JOBS_PER_BUNDLE + 1 }, (_, i) => `m${i}`));
  });

  it("keeps each bundle within BUNDLE_BYTES and never mixes delays", () => {
    const big = "x".repeat(Math.floor(BUNDLE_BYTES / 3));
    const out = bundleJobs([0, 1, 2, 3].map((i) => ({ body: job(i, big) })));
    for (const o of out) expect(JSON.stringify(o.body).length).toBeLessThanOrEqual(BUNDLE_BYTES + 100);
    expect(out.length).toBe(2);
    const delayed = bundleJobs([{ body: job(1) }, { body: job(2), delaySeconds: 30 }, { body: job(3), delaySeconds: 30 }]);
    expect(delayed.map((o) => [jobsOf(o.body).length, o.delaySeconds])).toEqual([[1, 0], [2, 30]]);
  });

  it("leaves malformed jobs of a bundle out and reads nothing from other bodies", () => {
    expect(jobsOf({ v: 1, bundle: [job(1), { v: 1 }, "x"] }).map((j) => j.messageId)).toEqual(["m1"]);
    expect(jobsOf({ v: 2, bundle: [job(1)] })).toEqual([]);
    expect(jobsOf(null)).toEqual([]);
  });
});
