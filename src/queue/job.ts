/** The Queue message that carries one (message, destination) delivery job, and the copy the ledger keeps of it. */

/** A message's stream: time-sensitive mail (receipts, password resets) or bulk mail (newsletters, campaigns). */
export type Stream = "transactional" | "broadcast";

export interface DeliveryJob {
  v: 1;
  messageId: string;
  tenantId: string;
  /** The message's stream; absent on jobs queued before streams existed (treated as transactional). */
  stream?: Stream;
  mailFrom: string;
  /**
   * Where delivery status notifications go when `mailFrom` is the relay's own VERP return path: the sender the
   * client gave (MAIL FROM of the bridge, or the From address). Absent: reports go to `mailFrom`.
   */
  notifyAddress?: string;
  /** Recipients of this message that share the destination. */
  recipients: { idx: number; address: string }[];
  /** Destination key: the recipients' domain (lowercase). */
  destination: string;
  /** Body inline when small; otherwise the R2 key in BODIES. */
  body?: string;
  bodyKey?: string;
  sizeBytes: number;
  smtputf8: boolean;
  eightBit: boolean;
  /** Epoch ms when the message was accepted; retries expire relative to it. */
  acceptedAt: number;
  /** Delivery attempts already made (0 on the first run). */
  attempt: number;
  /**
   * Epoch ms before which the job must not be tried. Set when a retry waits longer than a Queue delay allows
   * (12 h): the consumer re-enqueues the job until it is due.
   */
  dueAt?: number;
  /** RFC 8689 REQUIRETLS: only over TLS with a verified certificate, else bounced with 5.7.10 (issue 21). */
  requireTls?: true;
  /** `TLS-Required: No` (RFC 8689 section 5): the recipient domain's MTA-STS policy is not enforced. */
  tlsOptional?: true;
  /** Set on jobs the cron re-drove from the ledger (their first copy was lost): the outcome journal is consulted. */
  redrive?: boolean;
  /** The wait last announced with a `waiting` event (see waits.ts): `reason|scope` and its announced end. */
  waiting?: { key: string; until: number | null };
}

export function isDeliveryJob(x: unknown): x is DeliveryJob {
  const j = x as DeliveryJob;
  return typeof j === "object" && j !== null && j.v === 1 && typeof j.messageId === "string" && Array.isArray(j.recipients);
}

/** What `messages.pending` holds: the jobs (inline bodies equal to the message's own stored once, in `b`). */
export interface PendingWork {
  j: DeliveryJob[];
  b?: string;
}

/** The `pending` column for a message's jobs: the shared inline body once, per-recipient bodies in their jobs. */
export function pendingWork(jobs: DeliveryJob[], raw: string): string | null {
  if (!jobs.length) return null;
  let shared = false;
  const j = jobs.map((job) => {
    if (job.body !== raw) return job;
    shared = true;
    const { body: _body, ...rest } = job;
    return rest as DeliveryJob;
  });
  return JSON.stringify(shared ? { j, b: raw } : { j });
}
