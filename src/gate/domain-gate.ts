/**
 * DomainGate: one Durable Object per destination. Grants delivery permits under a token-bucket message rate.
 * The delivery engine issue extends this with concurrency, FIFO sequencing and adaptive backoff.
 */
import { DurableObject } from "cloudflare:workers";

export interface GatePolicy {
  /** Messages per second allowed to this destination. */
  ratePerSecond: number;
  /** Bucket size: how many messages may leave at once after a quiet period. */
  burst: number;
}

export const DEFAULT_GATE_POLICY: GatePolicy = { ratePerSecond: 20, burst: 20 };

export class DomainGate extends DurableObject<Env> {
  private tokens = DEFAULT_GATE_POLICY.burst;
  private updatedAt = Date.now();
  private policy = DEFAULT_GATE_POLICY;

  /** Asks for up to `wanted` permits; returns how many were granted and, if fewer, when to come back. */
  async acquire(wanted: number): Promise<{ granted: number; retryAfterMs: number }> {
    const now = Date.now();
    this.tokens = Math.min(this.policy.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.policy.ratePerSecond);
    this.updatedAt = now;
    const granted = Math.min(wanted, Math.floor(this.tokens));
    this.tokens -= granted;
    const missing = wanted - granted;
    return { granted, retryAfterMs: missing > 0 ? Math.ceil((missing / this.policy.ratePerSecond) * 1000) : 0 };
  }
}
