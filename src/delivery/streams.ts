/**
 * Stream pausing and per-tenant stream limits at delivery (issue 12). A paused stream's jobs are parked in D1 by
 * the consumer and released, oldest first, on resume; a stream's rate and daily quota are a DomainGate of their
 * own (`tenant:<id>:<stream>`) whose send times each job waits for before its destination's.
 */
import { DEFAULT_GATE_POLICY, mergePolicy, type GatePolicy } from "../gate/policy";
import { getStreamSettings, parkJobStatements, takeParkedJobs, unparkFailedStatements, type StreamSettings } from "../store/streams";
import { enqueueJobs } from "../queue/enqueue";
import type { DeliveryJob, Stream } from "../queue/job";

/** Parked jobs released per round (one D1 statement, then sendBatch calls of 100). */
const RELEASE_CHUNK = 500;
/**
 * Parked jobs one invocation releases (a request or a queue batch has a bounded number of subrequests); the rest
 * follows through a release request on the queue, which the consumer continues with.
 */
export const RELEASE_PER_INVOCATION = 5000;

/** A queue message asking the consumer to go on releasing a resumed stream's parked jobs. */
export interface ReleaseRequest {
  v: 1;
  release: { tenantId: string; stream: Stream };
}

export function isReleaseRequest(x: unknown): x is ReleaseRequest {
  const r = x as ReleaseRequest;
  return typeof r === "object" && r !== null && r.v === 1 && typeof r.release === "object" && r.release !== null && typeof r.release.tenantId === "string" && (r.release.stream === "transactional" || r.release.stream === "broadcast");
}

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

/**
 * Releases a resumed stream's parked jobs to its queue, oldest first; stops if the stream is paused again. After
 * RELEASE_PER_INVOCATION jobs it leaves a release request on the queue for the consumer to continue from.
 */
export async function releaseParkedJobs(env: Env, tenantId: string, stream: Stream): Promise<number> {
  let released = 0;
  for (;;) {
    if ((await getStreamSettings(env.DB, tenantId, stream)).paused) return released;
    if (released >= RELEASE_PER_INVOCATION) {
      // Behind the jobs just released on the transactional queue or before them on the broadcast one: either
      // way the next chunk is queued after this one, so the order holds.
      await env.OUTBOX_PRIORITY.send({ v: 1, release: { tenantId, stream } } satisfies ReleaseRequest, { contentType: "json" });
      return released;
    }
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
