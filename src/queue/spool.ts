/**
 * The one path every message takes in: check the sender, spool the body (R2 when large), record the message
 * and its recipients in D1, and enqueue one delivery job per destination. Shared by the HTTP API, Email
 * Routing forwarding and the SMTP bridge (through the raw endpoint), and by the queue consumer for its own
 * reports (RFC 3464 DSNs): it sits below both accept/ and delivery/ so neither reaches up for it.
 */
import { MAX_INLINE_BODY_BYTES, MAX_QUEUE_DELAY_SECONDS } from "../config";
import { enqueueJobs } from "./enqueue";
import type { DeliveryJob } from "./job";
import { bounceDomainFor, encodeReturnPath } from "../mime/return-path";
import { newId } from "../store/ids";
import { insertMessage, recordOutcome, type RecipientStatus } from "../store/messages";
import { checkBodyKeys, inlineBodyLimit, putStoredBody, sealInlineBody } from "../store/body-crypto";
import { pendingWork } from "./job";

/** The message was recorded but its delivery jobs could not be queued; its recipients are marked failed. */
export class EnqueueError extends Error {
  override name = "EnqueueError";
  constructor(
    readonly messageId: string,
    cause: unknown,
  ) {
    super(`message ${messageId} could not be queued`, { cause });
  }
}

export interface AcceptInput {
  tenantId: string;
  mailFrom: string;
  headerFrom: string;
  subject: string | null;
  messageIdHeader: string;
  /** The complete RFC 5322 message, CRLF line endings. */
  raw: string;
  recipients: string[];
  stream?: "transactional" | "broadcast";
  tags?: string[];
  metadata?: Record<string, string>;
  smtputf8?: boolean;
  eightBit?: boolean;
  /** Recipients (lowercase addresses) that must not be mailed; they get a `suppressed` final state. */
  suppressed?: Set<string>;
  id?: string;
  /**
   * VERP: when set, each recipient gets its own envelope sender `bounce+<id>-<idx>-<sig>@bounces.<fromDomain>`
   * (and so its own delivery job), so a bounce names the message and recipient it belongs to.
   */
  verp?: { secret: string; fromDomain: string };
  /** Scheduled delivery time (epoch ms); jobs further ahead than a Queue delay allows wait in D1 for the cron. */
  sendAt?: number;
  /**
   * One complete message per recipient, in `recipients` order (open/click tracking, issue 11): each recipient
   * gets a delivery job and body of its own. `raw` must be recipient 0's.
   */
  rawPerRecipient?: readonly string[];
  /** RFC 8689 (issue 21): deliver over verified TLS only / ignore MTA-STS (`TLS-Required: No`). */
  requireTls?: boolean;
  tlsOptional?: boolean;
}

export interface AcceptResult {
  id: string;
  recipients: { address: string; status: RecipientStatus }[];
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}

/** Records and enqueues a composed message; returns its id and the initial state of each recipient. */
export async function acceptMessage(env: Env, input: AcceptInput): Promise<AcceptResult> {
  const id = input.id ?? newId();
  const now = Date.now();
  // A malformed key secret fails here, before anything is recorded, rather than leave recorded mail unqueued.
  await checkBodyKeys(env);
  // A null sender (RFC 5321 section 4.5.5: a bounce or other report) stays null: no VERP, and no report about it.
  const bounceDomain = input.verp && input.mailFrom !== "" ? bounceDomainFor(input.verp.fromDomain) : null;
  const returnPath = (idx: number): Promise<string> =>
    input.verp && bounceDomain !== null ? encodeReturnPath({ messageId: id, recipientIndex: idx }, input.verp.secret, bounceDomain) : Promise.resolve(input.mailFrom);
  const bytes = new TextEncoder().encode(input.raw);
  const inline = bytes.byteLength <= inlineBodyLimit(env, MAX_INLINE_BODY_BYTES);
  const bodyKey = inline ? null : `bodies/${id}`;
  if (bodyKey) await putStoredBody(env, bodyKey, bytes);

  const recipients = input.recipients.map((address, idx) => ({
    idx,
    address,
    domain: domainOf(address),
    status: (input.suppressed?.has(address.toLowerCase()) ? "suppressed" : "queued") as RecipientStatus,
  }));

  // One job per destination, or per recipient under VERP (each recipient has its own envelope sender).
  const groups = new Map<string, { destination: string; mailFrom: string; rcpts: { idx: number; address: string }[] }>();
  for (const r of recipients) {
    if (r.status !== "queued") continue;
    const key = input.verp || input.rawPerRecipient ? `${r.idx}` : r.domain;
    const group = groups.get(key) ?? { destination: r.domain, mailFrom: await returnPath(r.idx), rcpts: [] };
    group.rcpts.push({ idx: r.idx, address: r.address });
    groups.set(key, group);
  }
  const jobs: DeliveryJob[] = [...groups.values()].map(({ destination, mailFrom, rcpts }) => ({
    v: 1,
    messageId: id,
    tenantId: input.tenantId,
    stream: input.stream ?? "transactional",
    mailFrom,
    ...(bounceDomain !== null ? { notifyAddress: input.mailFrom } : {}),
    recipients: rcpts,
    destination,
    ...(inline ? { body: input.raw } : { bodyKey: bodyKey! }),
    sizeBytes: bytes.byteLength,
    smtputf8: input.smtputf8 ?? false,
    eightBit: input.eightBit ?? false,
    // A scheduled message's age (for expiry) counts from its send time.
    acceptedAt: input.sendAt !== undefined && input.sendAt > now ? input.sendAt : now,
    // The consumer re-queues a job that arrives before this (a scheduled send released early by the cron).
    ...(input.sendAt !== undefined && input.sendAt > now ? { dueAt: input.sendAt } : {}),
    attempt: 0,
    ...(input.requireTls ? { requireTls: true as const } : {}),
    ...(input.tlsOptional ? { tlsOptional: true as const } : {}),
  }));
  if (input.rawPerRecipient) await attachOwnBodies(env, id, jobs, input.rawPerRecipient);
  // Encryption at rest (issue 21): inline bodies travel sealed through the queue, the D1 job tables and the
  // message row's pending work (the re-drive's copy); the shared body is sealed once so the row keeps one copy.
  const sealedRaw = inline ? await sealInlineBody(env, input.raw, id) : undefined;
  for (const job of jobs) {
    if (job.body !== undefined) job.body = job.body === input.raw && sealedRaw !== undefined ? sealedRaw : await sealInlineBody(env, job.body, id);
  }
  await env.DB.batch(
    insertMessage(env.DB, {
      id,
      tenantId: input.tenantId,
      // The envelope sender actually used: recipient 0's return path under VERP (the others differ only in index).
      mailFrom: await returnPath(0),
      headerFrom: input.headerFrom,
      subject: input.subject,
      messageIdHeader: input.messageIdHeader,
      stream: input.stream ?? "transactional",
      sizeBytes: bytes.byteLength,
      bodyKey,
      tags: input.tags ?? [],
      metadata: input.metadata ?? {},
      createdAt: now,
      sendAt: input.sendAt ?? null,
      recipients,
      pending: pendingWork(jobs, sealedRaw ?? input.raw),
    }),
  );

  const delaySeconds = input.sendAt !== undefined ? Math.ceil((input.sendAt - now) / 1000) : 0;
  if (jobs.length) {
    try {
      if (delaySeconds > MAX_QUEUE_DELAY_SECONDS) {
        await env.DB.batch(
          jobs.map((j) => env.DB.prepare("INSERT INTO scheduled_jobs (message_id, release_at, job) VALUES (?, ?, ?)").bind(id, input.sendAt!, JSON.stringify(j))),
        );
      } else {
        // Transactional jobs go to their own queue (issue 12).
        await enqueueJobs(env, jobs.map((body) => ({ body, delaySeconds })));
      }
    } catch (e) {
      // The message is recorded but could not be queued: end its recipients as failed so none is left
      // pending forever, and let the caller report the failure (the client may retry with its idempotency key).
      const failedAt = Date.now();
      await env.DB.batch(
        jobs.flatMap((j) =>
          j.recipients.flatMap((r) =>
            recordOutcome(env.DB, { messageId: id, tenantId: input.tenantId, idx: r.idx, address: r.address, status: "failed", at: failedAt, attempt: 0, text: `could not enqueue: ${String(e)}` }),
          ),
        ),
      );
      throw new EnqueueError(id, e);
    }
  }
  return { id, recipients: recipients.map((r) => ({ address: r.address, status: r.status })) };
}

/** Gives each job of a message composed per recipient its recipient's own body, inline or in R2 (`bodies/<id>/<idx>`). */
async function attachOwnBodies(env: Env, id: string, jobs: DeliveryJob[], raws: readonly string[]): Promise<void> {
  for (const job of jobs) {
    const idx = job.recipients[0]!.idx;
    // Recipient 0's body is `raw`, already spooled above.
    if (idx === 0) continue;
    const raw = raws[idx];
    if (raw === undefined) throw new RangeError(`rawPerRecipient has no message for recipient ${idx}`);
    const bytes = new TextEncoder().encode(raw);
    delete job.body;
    delete job.bodyKey;
    if (bytes.byteLength <= inlineBodyLimit(env, MAX_INLINE_BODY_BYTES)) {
      job.body = raw;
    } else {
      job.bodyKey = `bodies/${id}/${idx}`;
      await putStoredBody(env, job.bodyKey, bytes);
    }
    job.sizeBytes = bytes.byteLength;
  }
}
