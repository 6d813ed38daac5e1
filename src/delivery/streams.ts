/**
 * Stream pausing and per-tenant stream limits at delivery (issue 12). A paused stream's jobs are parked in D1 by
 * the consumer and released, oldest first, on resume; a stream's rate and daily quota are a DomainGate of their
 * own (`tenant:<id>:<stream>`) whose send times each job waits for before its destination's.
 */
import { DEFAULT_GATE_POLICY, mergePolicy, type GatePolicy } from "../gate/policy";
import { getStreamSettings, parkJobStatements, takeParkedJobs, unparkFailedStatements, type StreamSettings } from "../store/streams";
import { enqueueJobs } from "./enqueue";
import type { DeliveryJob, Stream } from "./job";

/** Parked jobs released per round (one D1 statement, then sendBatch calls of 100). */
const RELEASE_CHUNK = 500;

/** Parks jobs of a paused stream; if the stream was resumed meanwhile, releases them (and any others) at once. */
export async function parkJobs(env: Env, jobs: readonly DeliveryJob[]): Promise<void> {
  if (!jobs.length) return;
  await env.DB.batch(parkJobStatements(env.DB, jobs));
  // A resume that ran between our read of the pause and the park above found nothing to release.
  const streams = new Map<string, { tenantId: string; stream: Stream }>();
  for (const j of jobs) streams.set(`${j.tenantId}|${j.stream ?? "transactional"}`, { tenantId: j.tenantId, stream: j.stream ?? "transactional" });
  for (const s of streams.values()) {
    if (!(await getStreamSettings(env.DB, s.tenantId, s.stream)).paused) await releaseParkedJobs(env, s.tenantId, s.stream);
  }
}

/** Releases a resumed stream's parked jobs to its queue, oldest first; stops if the stream is paused again. */
export async function releaseParkedJobs(env: Env, tenantId: string, stream: Stream): Promise<number> {
  let released = 0;
  for (;;) {
    if ((await getStreamSettings(env.DB, tenantId, stream)).paused) return released;
    const taken = await takeParkedJobs(env.DB, tenantId, stream, RELEASE_CHUNK);
    if (!taken.length) return released;
    try {
      await enqueueJobs(env, taken.map((t) => ({ body: t.job })));
    } catch (e) {
      await env.DB.batch(unparkFailedStatements(env.DB, taken));
      throw e;
    }
    released += taken.length;
    if (taken.length < RELEASE_CHUNK) return released;
  }
}

/** The gate key of a tenant's stream limits. */
export function streamGateKey(tenantId: string, stream: Stream): string {
  return `tenant:${tenantId}:${stream}`.toLowerCase();
}

/** The DomainGate policy of a tenant's stream limits; undefined when it has none. */
export function streamGatePolicy(s: StreamSettings | undefined): GatePolicy | undefined {
  if (!s || (s.ratePerSecond === null && s.quotaPerDay === null)) return undefined;
  const rate = s.ratePerSecond ?? 1_000_000;
  return mergePolicy(DEFAULT_GATE_POLICY, {
    ratePerSecond: rate,
    burst: 1,
    // Connections and messages per connection are the destinations' business, not this gate's.
    maxConnections: 10_000,
    maxMessagesPerConnection: 10_000,
    quotaPerDay: s.quotaPerDay ?? 0,
  });
}
