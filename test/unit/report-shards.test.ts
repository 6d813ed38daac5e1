// The reporting page across ledger shards (issue 17): what each shard answers is added up here, so a view across
// tenants reads the same as one database holding all of them would.
import { describe, expect, it } from "vitest";
import { mergeDestinations, mergeFreshness, mergeQueueHealth, newestFirst, sumCounts, sumHistograms, sumSeries } from "../../src/report/shards";
import { deliveryRates, quantile, type DestinationRow, type LatencyHistogram, type SeriesPoint } from "../../src/store/report";

function row(key: string, counts: Record<string, number>, volume: number, latency: LatencyHistogram | null): DestinationRow {
  return { key, counts, volume, rates: deliveryRates(counts), medianLatencyMs: latency ? quantile(latency, 0.5) : null, latency };
}

describe("adding shards up", () => {
  it("sums counts, series step by step and histograms by bound", () => {
    expect(sumCounts([{ delivered: 2, bounced: 1 }, { delivered: 3 }, {}])).toEqual({ delivered: 5, bounced: 1 });
    const a: SeriesPoint[] = [{ at: 0, counts: { delivered: 1 } }, { at: 60, counts: {} }];
    const b: SeriesPoint[] = [{ at: 0, counts: { delivered: 2, deferred: 1 } }, { at: 60, counts: { bounced: 4 } }];
    expect(sumSeries([a, b])).toEqual([{ at: 0, counts: { delivered: 3, deferred: 1 } }, { at: 60, counts: { bounced: 4 } }]);
    expect(sumHistograms([{ buckets: [[100, 1], [1000, 2]], total: 3 }, { buckets: [[1000, 5], [10, 1]], total: 6 }])).toEqual({ buckets: [[10, 1], [100, 1], [1000, 7]], total: 9 });
  });

  it("merges destinations per key, recomputing rates and the median from the summed histogram", () => {
    const fast: LatencyHistogram = { buckets: [[100, 9]], total: 9 };
    const slow: LatencyHistogram = { buckets: [[10_000, 1]], total: 1 };
    const merged = mergeDestinations(
      [
        [row("gmail.com", { delivered: 9, queued: 9 }, 9, fast), row("a.example", { delivered: 1, queued: 1 }, 1, null)],
        [row("gmail.com", { delivered: 1, bounced: 1, queued: 2 }, 2, slow)],
      ],
      10,
    );
    expect(merged.map((r) => [r.key, r.volume])).toEqual([["gmail.com", 11], ["a.example", 1]]);
    expect(merged[0]!.counts).toEqual({ delivered: 10, queued: 11, bounced: 1 });
    expect(merged[0]!.rates).toEqual(deliveryRates({ delivered: 10, queued: 11, bounced: 1 }));
    expect(merged[0]!.medianLatencyMs).toBe(quantile({ buckets: [[100, 9], [10_000, 1]], total: 10 }, 0.5));
    expect(mergeDestinations([[row("x", {}, 3, null), row("y", {}, 2, null)]], 1).map((r) => r.key)).toEqual(["x"]);
  });

  it("keeps the oldest pending recipient, the busiest deferred domains, and the least current freshness", () => {
    const pending = (messageId: string, acceptedAt: number) => ({ messageId, address: "a@b", status: "queued", attempts: 0, lastText: null, acceptedAt, nextAttemptAt: null });
    const q = mergeQueueHealth([
      { queued: 1, deferred: 2, oldestPending: pending("m2", 200), deferredByDomain: [{ domain: "b.example", n: 2 }] },
      { queued: 3, deferred: 4, oldestPending: pending("m1", 100), deferredByDomain: [{ domain: "b.example", n: 1 }, { domain: "c.example", n: 3 }] },
      { queued: 0, deferred: 0, oldestPending: null, deferredByDomain: [] },
    ]);
    expect(q).toMatchObject({ queued: 4, deferred: 6, oldestPending: { messageId: "m1" }, deferredByDomain: [{ domain: "b.example", n: 3 }, { domain: "c.example", n: 3 }] });
    expect(mergeFreshness([{ asOf: 500, pendingEvents: 2 }, { asOf: 300, pendingEvents: 1 }], 1000)).toEqual({ asOf: 300, pendingEvents: 3 });
    expect(mergeFreshness([], 1000)).toEqual({ asOf: 1000, pendingEvents: 0 });
    expect(newestFirst([[{ id: "b" }, { id: "d" }], [{ id: "c" }, { id: "a" }]], (m) => m.id, 3).map((m) => m.id)).toEqual(["d", "c", "b"]);
  });
});
