/** What the queue consumer reads and touches on message rows besides outcomes: final recipients, due times. */
import { parseRecipients } from "./messages";

/** D1 allows at most 100 bound parameters per statement (its documented limit); 90 ids plus the tenant. */
const IDS_PER_QUERY = 90;

/**
 * For messages of one tenant: the `message|idx` keys of recipients already final, and each message's due time
 * (keyed `tenant|message`).
 */
export async function finalStateOf(
  db: D1Database,
  tenantId: string,
  messageIds: readonly string[],
  done: Set<string>,
  dueAt: Map<string, number | null>,
): Promise<void> {
  for (let i = 0; i < messageIds.length; i += IDS_PER_QUERY) {
    const chunk = messageIds.slice(i, i + IDS_PER_QUERY);
    const { results } = await db
      .prepare(`SELECT id, rcpts, due_at FROM messages WHERE tenant_id = ? AND id IN (${chunk.map(() => "?").join(",")})`)
      .bind(tenantId, ...chunk)
      .all<{ id: string; rcpts: string; due_at: number | null }>();
    for (const r of results) {
      dueAt.set(`${tenantId}|${r.id}`, r.due_at);
      parseRecipients(r.rcpts).forEach((x, idx) => x.f !== undefined && x.f !== null && done.add(`${r.id}|${idx}`));
    }
  }
}

/** Moves the due time of open messages to at least `now` (one statement per message). */
export async function touchDueAt(db: D1Database, messages: readonly { tenantId: string; id: string }[], now: number): Promise<void> {
  if (!messages.length) return;
  await db.batch(
    messages.map((m) => db.prepare("UPDATE messages SET due_at = MAX(COALESCE(due_at, 0), ?) WHERE tenant_id = ? AND id = ? AND open > 0").bind(now, m.tenantId, m.id)),
  );
}

/** How many recipients a message has and how many are still open; null when there is no such message. */
export async function openRecipientCount(db: D1Database, tenantId: string, messageId: string): Promise<{ n: number; open: number } | null> {
  return db.prepare("SELECT json_array_length(rcpts) AS n, open FROM messages WHERE tenant_id = ? AND id = ?").bind(tenantId, messageId).first<{ n: number; open: number }>();
}
