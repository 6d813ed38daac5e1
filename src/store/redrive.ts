/** SQL of the re-drive (see delivery/redrive.ts): overdue messages with pending recipients, and marking a re-drive. */
import { parseRecipients } from "./messages";
import { idFloor } from "./ids";

export interface OverdueMessage {
  tenantId: string;
  id: string;
  dueAt: number;
  pending: string | null;
  /** Indexes of the recipients not yet final. */
  openRecipients: number[];
  /** The most attempts any pending recipient has had. */
  attempts: number;
}

/**
 * Messages accepted after `createdAfter` with a pending recipient whose due time is before `dueBefore`, oldest
 * first; not those of a paused stream (their jobs wait, parked, for the resume). A primary-key range per tenant (ids are time-ordered): it reads the rows of the window, no index needed.
 */
export async function findOverdueMessages(db: D1Database, dueBefore: number, createdAfter: number, limit: number): Promise<OverdueMessage[]> {
  const { results } = await db
    .prepare(
      `SELECT tenant_id, id, due_at, pending, rcpts FROM messages
        WHERE tenant_id IN (SELECT id FROM tenants) AND id >= ? AND open > 0 AND due_at < ?
          AND NOT EXISTS (SELECT 1 FROM tenant_streams s WHERE s.tenant_id = messages.tenant_id AND s.stream = messages.stream AND s.paused_at IS NOT NULL)
        ORDER BY id LIMIT ?`,
    )
    .bind(idFloor(createdAfter), dueBefore, limit)
    .all<{ tenant_id: string; id: string; due_at: number; pending: string | null; rcpts: string }>();
  return results.map((r) => {
    const rcpts = parseRecipients(r.rcpts);
    const open = rcpts.flatMap((x, i) => (x.f === undefined || x.f === null ? [i] : []));
    return {
      tenantId: r.tenant_id,
      id: r.id,
      dueAt: r.due_at,
      pending: r.pending,
      openRecipients: open,
      attempts: Math.max(0, ...open.map((i) => rcpts[i]!.n ?? 0)),
    };
  });
}

/** Records a re-drive: a `redriven` event and log entry with the reason, and the next due time. */
export async function markRedriven(db: D1Database, m: OverdueMessage, reason: string, now: number, nextDue: number): Promise<void> {
  await db.batch([
    db
      .prepare("INSERT INTO events (message_id, tenant_id, type, at, text, data) VALUES (?, ?, 'redriven', ?, ?, ?)")
      .bind(m.id, m.tenantId, now, reason, JSON.stringify({ recipients: m.openRecipients })),
    db
      .prepare(
        `UPDATE messages SET due_at = ?, log = json_insert(COALESCE(log, '[]'), '$[#]', json(?))
          WHERE tenant_id = ? AND id = ? AND open > 0`,
      )
      .bind(nextDue, JSON.stringify({ y: "redriven", at: now, t: reason, d: { recipients: m.openRecipients } }), m.tenantId, m.id),
  ]);
}
