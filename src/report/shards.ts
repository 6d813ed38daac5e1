/**
 * The reporting page over ledger shards (issue 17): a view of one tenant reads that tenant's shard; a view across
 * tenants asks every shard in parallel (one round trip's time, not one per shard) and adds the answers up here.
 * A shard that fails drops out of the sums and the page says so, rather than the page failing for every tenant.
 */
import type { RollupFreshness } from "../store/rollup-freshness";
import { ALL_TENANTS, deliveryRates, quantile, type Counts, type DestinationRow, type LatencyHistogram, type QueueHealth, type SeriesPoint, type TenantScope } from "../store/report";
import { ledgerShards, shardDb, shardNameOf, type LedgerShard } from "../store/shards";

/** What every shard of a view answered, and the names of shards that failed. */
export interface Across<T> {
  values: T[];
  failed: string[];
}

/** The shards a view reads: the tenant's own, or all of them. */
export async function shardsOf(env: Env, tenant: TenantScope): Promise<LedgerShard[]> {
  if (tenant === ALL_TENANTS) return ledgerShards(env);
  const name = await shardNameOf(env, tenant);
  return [{ name, db: shardDb(env, name) }];
}

/** Runs `fn` on each shard in parallel; failures are logged and listed, not thrown. */
export async function across<T>(shards: readonly LedgerShard[], fn: (db: D1Database) => Promise<T>): Promise<Across<T>> {
  const settled = await Promise.allSettled(shards.map((s) => fn(s.db)));
  const out: Across<T> = { values: [], failed: [] };
  settled.forEach((r, i) => {
    if (r.status === "fulfilled") out.values.push(r.value);
    else {
      console.error(`reporting page: ledger shard ${shards[i]!.name} failed`, r.reason);
      out.failed.push(shards[i]!.name);
    }
  });
  return out;
}

export function sumCounts(list: readonly Counts[]): Counts {
  const out: Counts = {};
  for (const c of list) for (const [k, n] of Object.entries(c)) out[k] = (out[k] ?? 0) + n;
  return out;
}

/** Series of the same window have the same steps: counts are added step by step. */
export function sumSeries(list: readonly SeriesPoint[][]): SeriesPoint[] {
  const [first, ...rest] = list;
  if (!first) return [];
  return first.map((p, i) => ({ at: p.at, counts: sumCounts([p.counts, ...rest.map((s) => s[i]?.counts ?? {})]) }));
}

export function sumHistograms(list: readonly LatencyHistogram[]): LatencyHistogram {
  const byBound = new Map<number, number>();
  for (const h of list) for (const [le, n] of h.buckets) byBound.set(le, (byBound.get(le) ?? 0) + n);
  const buckets = [...byBound].sort((a, b) => a[0] - b[0]);
  return { buckets, total: buckets.reduce((s, [, n]) => s + n, 0) };
}

/** Destinations of several shards: counts and histograms added per key, rates and medians computed again. */
export function mergeDestinations(list: readonly DestinationRow[][], limit: number): DestinationRow[] {
  if (list.length === 1) return list[0]!.slice(0, limit);
  const byKey = new Map<string, DestinationRow[]>();
  for (const rows of list) for (const r of rows) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
  const rows = [...byKey].map(([key, parts]): DestinationRow => {
    const counts = sumCounts(parts.map((p) => p.counts));
    const hists = parts.flatMap((p) => (p.latency ? [p.latency] : []));
    const latency = hists.length ? sumHistograms(hists) : null;
    return { key, counts, volume: parts.reduce((s, p) => s + p.volume, 0), rates: deliveryRates(counts), medianLatencyMs: latency ? quantile(latency, 0.5) : null, latency };
  });
  rows.sort((a, b) => b.volume - a.volume || a.key.localeCompare(b.key));
  return rows.slice(0, limit);
}

export function mergeQueueHealth(list: readonly QueueHealth[]): QueueHealth {
  const domains = new Map<string, number>();
  for (const q of list) for (const d of q.deferredByDomain) domains.set(d.domain, (domains.get(d.domain) ?? 0) + d.n);
  const oldest = list
    .flatMap((q) => (q.oldestPending ? [q.oldestPending] : []))
    .sort((a, b) => a.acceptedAt - b.acceptedAt || a.messageId.localeCompare(b.messageId))[0];
  return {
    queued: list.reduce((s, q) => s + q.queued, 0),
    deferred: list.reduce((s, q) => s + q.deferred, 0),
    oldestPending: oldest ?? null,
    // Each shard answers its ten busiest; the sum keeps the page's ten.
    deferredByDomain: [...domains].map(([domain, n]) => ({ domain, n })).sort((a, b) => b.n - a.n || a.domain.localeCompare(b.domain)).slice(0, 10),
  };
}

/** The counts are as current as the least current shard; pending events add up. */
export function mergeFreshness(list: readonly RollupFreshness[], now = Date.now()): RollupFreshness {
  return { asOf: list.reduce((m, f) => Math.min(m, f.asOf), now), pendingEvents: list.reduce((s, f) => s + f.pendingEvents, 0) };
}

/** Newest first by a time-ordered key, at most `limit`. */
export function newestFirst<T>(list: readonly T[][], key: (t: T) => string | number, limit: number): T[] {
  return list
    .flat()
    .sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0))
    .slice(0, limit);
}
