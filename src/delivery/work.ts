/**
 * The one work type of the delivery pipeline (issue 16): a queue message's job, the recipients still pending,
 * its routes, what each attempt learnt, and what the outcome stage decided. Every stage (targets, lanes and send
 * times, SMTP sending, the send_email route, outcomes) reads and fills this value; the consumer orchestrates.
 */
import type { DsnRecipient } from "./dsn";
import type { DeliveryJob } from "../queue/job";
import type { RouteCandidate } from "./routes";

/** What happened to one recipient on this attempt. */
export interface Attempted {
  status: "delivered" | "deferred" | "bounced";
  code?: number;
  enhanced?: string;
  text: string;
  host?: string;
  tls?: boolean;
  latencyMs?: number;
  seq?: number;
  command?: string;
  hintSeconds?: number;
}

export interface Work {
  msg: Message<unknown>;
  job: DeliveryJob;
  /** Recipients still pending (not in a final state in D1). */
  pending: { idx: number; address: string }[];
  /** The body when it travels inline in the job; bodies in R2 are streamed per attempt, never held for the batch. */
  raw?: string;
  routes: RouteCandidate[];
  results: Map<number, Attempted>;
  /** Recipients not tried in this invocation (no permit, connection budget): re-queued without an attempt. */
  notAttempted: { idx: number; address: string }[];
  notAttemptedAfterMs: number;
  notAttemptedWhy: string;
  /** Epoch ms before which the job must not be sent: its tenant stream's rate limit (issue 12). */
  notBefore?: number;
  /** The TLS policy that applied to this attempt (REQUIRETLS, MTA-STS), for the delivery event (issue 21). */
  tlsNote?: string;
  /** Filled by the outcome stage: recipient indexes whose outcome is recorded (in D1 or the journal). */
  recorded: Set<number>;
  /** Recipients deferred by this attempt, and the longest delay any of them asked for. */
  deferred: { idx: number; address: string }[];
  delaySeconds: number;
  /** Lines of the delivery status notification to send the sender (bounced and expired recipients). */
  dsn: DsnRecipient[];
  expiredAny: boolean;
}

/** A fresh work value for a job. */
export function newWork(msg: Message<unknown>, job: DeliveryJob): Work {
  return {
    msg,
    job,
    pending: job.recipients,
    routes: [],
    results: new Map(),
    notAttempted: [],
    notAttemptedAfterMs: 0,
    notAttemptedWhy: "",
    recorded: new Set(),
    deferred: [],
    delaySeconds: 0,
    dsn: [],
    expiredAny: false,
  };
}

/** Marks work not tried in this invocation; it is re-queued without counting an attempt. */
export function postpone(items: Work[], afterMs: number, why: string): void {
  for (const w of items) {
    w.notAttempted = w.pending.filter((r) => !w.results.has(r.idx));
    w.notAttemptedAfterMs = Math.max(w.notAttemptedAfterMs, afterMs);
    w.notAttemptedWhy = why;
  }
}

/** Gives every recipient without a result this one. */
export function failAll(items: Work[], a: Attempted): void {
  for (const w of items) for (const r of w.pending) if (!w.results.has(r.idx)) w.results.set(r.idx, a);
}

export function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
