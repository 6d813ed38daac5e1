/**
 * Per-tenant data minimisation by the cron (issue 21): redaction of subjects and addresses after a tenant's
 * `redact_after_days` (messages rows, the event feed, inbound records) and its shorter-than-default retention of
 * the event feed and inbound records. Every walk is bounded per run and remembers where it stopped in
 * `ledger_cursors` (names end with the tenant id, so erasing a tenant deletes them too).
 *
 * - Messages are walked by primary key (tenant_id, id) from the cursor up to the tenant's cut-off; a message still
 *   pending (`open > 0`) is never touched (delivery needs its addresses) and holds the cursor until it is final.
 *   Each update is a compare-and-set on the row's recipients and log, so a report appended meanwhile is not lost
 *   (the row is redacted on a later run).
 * - The event feed has no index by tenant: each redacting tenant walks row ids from its cursor, at most
 *   `scanRows` rows per run, and only up to what the rollups and webhooks have already read (so counts per
 *   recipient domain and webhook payloads are made from the original rows; events written later about a redacted
 *   message carry its redacted addresses, because their writers read them from the row).
 */
import { idFloor } from "./ids";
import { isRedactedMessage, redactEventFields, redactMessageFields, redactText, redactAddress, type MessagePersonalFields, type Redactor } from "./redaction";

/** D1 statements per batch call. */
const BATCH = 100;

async function readCursor(db: D1Database, name: string): Promise<number> {
  const row = await db.prepare("SELECT value FROM ledger_cursors WHERE name = ?").bind(name).first<{ value: number }>();
  return row?.value ?? 0;
}

function writeCursor(db: D1Database, name: string, value: number, now: number): D1PreparedStatement {
  return db
    .prepare("INSERT INTO ledger_cursors (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")
    .bind(name, value, now);
}

/** Cursor names of one tenant's walks. */
export function minimisationCursors(tenantId: string): string[] {
  return [`redact:messages:${tenantId}`, `redact:events:${tenantId}`, `redact:inbound:${tenantId}`, `prune:events:${tenantId}`];
}

/** Starts a tenant's redaction walks again from the beginning (its setting changed: older rows are now due). */
export async function restartRedaction(db: D1Database, tenantId: string): Promise<void> {
  await db.prepare("DELETE FROM ledger_cursors WHERE name IN (?, ?, ?, ?)").bind(...minimisationCursors(tenantId)).run();
}

async function inBatches(db: D1Database, stmts: D1PreparedStatement[]): Promise<D1Result[]> {
  const out: D1Result[] = [];
  for (let i = 0; i < stmts.length; i += BATCH) out.push(...(await db.batch(stmts.slice(i, i + BATCH))));
  return out;
}

/**
 * Redacts up to `limit` final messages of the tenant accepted before `cutoffMs`. Returns how many rows it changed.
 */
export async function redactMessages(db: D1Database, r: Redactor, cutoffMs: number, limit: number, now = Date.now()): Promise<number> {
  const name = `redact:messages:${r.tenantId}`;
  const from = await readCursor(db, name);
  const { results } = await db
    .prepare(
      `SELECT id, created_at, open, mail_from, header_from, subject, rcpts, log FROM messages
        WHERE tenant_id = ?1 AND id >= ?2 AND id < ?3 AND (open > 0 OR json_extract(rcpts, '$[0].a') NOT LIKE '[%')
        ORDER BY id LIMIT ?4`,
    )
    .bind(r.tenantId, idFloor(from), idFloor(cutoffMs), limit)
    .all<MessagePersonalFields & { id: string; created_at: number; open: number }>();
  const stmts: D1PreparedStatement[] = [];
  let hold: number | null = null;
  for (const m of results) {
    if (m.open > 0) {
      hold ??= m.created_at;
      continue;
    }
    if (isRedactedMessage(m)) continue;
    const f = await redactMessageFields(r, m);
    stmts.push(
      db
        .prepare(
          `UPDATE messages SET mail_from = ?, header_from = ?, subject = ?, rcpts = ?, log = ?
            WHERE tenant_id = ? AND id = ? AND open = 0 AND rcpts = ? AND log IS ?`,
        )
        .bind(f.mail_from, f.header_from, f.subject, f.rcpts, f.log, r.tenantId, m.id, m.rcpts, m.log),
    );
  }
  const done = await inBatches(db, stmts);
  const changed = done.reduce((n, x) => n + (x.meta.changes ?? 0), 0);
  // A row that changed under us is taken again next run: hold the cursor at the oldest such row, or an open one.
  if (changed < stmts.length) hold = Math.min(hold ?? Infinity, results[0]?.created_at ?? from);
  const next = hold ?? (results.length < limit ? cutoffMs : results[results.length - 1]!.created_at);
  // Ids come from the accepting isolate's clock: step back a second so a row made in the same millisecond is kept in range.
  const cursor = Math.max(from, next - 1000);
  if (cursor !== from) await writeCursor(db, name, cursor, now).run();
  return changed;
}

/** The highest event id both the rollups and the webhook emission have read (events past it are not touched). */
async function readUpTo(db: D1Database): Promise<number> {
  const row = await db
    .prepare("SELECT MIN(last_event_id) AS upto FROM report_watermarks WHERE name IN ('rollup', 'webhooks')")
    .first<{ upto: number | null }>();
  return row?.upto ?? 0;
}

interface EventScan {
  rows: { id: number; at: number; recipient: string | null; text: string | null; data: string | null }[];
  lastScanned: number | null;
}

/** The tenant's event rows among the next `scanRows` rows of the feed after `from`, up to `upto`. */
async function scanEvents(db: D1Database, tenantId: string, from: number, upto: number, scanRows: number): Promise<EventScan> {
  const window = "SELECT id, tenant_id, at, recipient, text, data FROM events WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3";
  const [rows, last] = await db.batch([
    db.prepare(`SELECT id, at, recipient, text, data FROM (${window}) WHERE tenant_id = ?4 ORDER BY id`).bind(from, upto, scanRows, tenantId),
    db.prepare(`SELECT MAX(id) AS last FROM (${window})`).bind(from, upto, scanRows),
  ]);
  return { rows: (rows!.results ?? []) as EventScan["rows"], lastScanned: ((last!.results?.[0] ?? {}) as { last: number | null }).last ?? null };
}

/** Where a walk of the feed stops: before the first row not yet due, else after the last row scanned. */
function nextEventCursor(scan: EventScan, from: number, cutoffMs: number): { cursor: number; due: EventScan["rows"] } {
  const firstNotDue = scan.rows.findIndex((e) => e.at >= cutoffMs);
  if (firstNotDue >= 0) return { cursor: scan.rows[firstNotDue]!.id - 1, due: scan.rows.slice(0, firstNotDue) };
  return { cursor: scan.lastScanned ?? from, due: scan.rows };
}

/** Redacts the tenant's feed events written before `cutoffMs`, scanning at most `scanRows` rows. */
export async function redactEvents(db: D1Database, r: Redactor, cutoffMs: number, scanRows: number, now = Date.now()): Promise<number> {
  const name = `redact:events:${r.tenantId}`;
  const from = await readCursor(db, name);
  const scan = await scanEvents(db, r.tenantId, from, await readUpTo(db), scanRows);
  const { cursor, due } = nextEventCursor(scan, from, cutoffMs);
  const stmts: D1PreparedStatement[] = [];
  for (const e of due) {
    const f = await redactEventFields(r, e);
    if (f.recipient === e.recipient && f.text === e.text && f.data === e.data) continue;
    stmts.push(db.prepare("UPDATE events SET recipient = ?, text = ?, data = ? WHERE id = ?").bind(f.recipient, f.text, f.data, e.id));
  }
  await inBatches(db, [...stmts, ...(cursor !== from ? [writeCursor(db, name, cursor, now)] : [])]);
  return stmts.length;
}

/**
 * Deletes the tenant's feed events written before `cutoffMs` (a retention shorter than EVENT_RETENTION_DAYS),
 * scanning at most `scanRows` rows. The newest row of the feed is never deleted, so ids never go back.
 */
export async function pruneTenantEvents(db: D1Database, tenantId: string, cutoffMs: number, scanRows: number, now = Date.now()): Promise<number> {
  const name = `prune:events:${tenantId}`;
  const from = await readCursor(db, name);
  const scan = await scanEvents(db, tenantId, from, await readUpTo(db), scanRows);
  const { cursor, due } = nextEventCursor(scan, from, cutoffMs);
  const stmts: D1PreparedStatement[] = [];
  for (let i = 0; i < due.length; i += 90) {
    const ids = due.slice(i, i + 90).map((e) => e.id);
    stmts.push(db.prepare(`DELETE FROM events WHERE id IN (${ids.map(() => "?").join(",")}) AND id < (SELECT MAX(id) FROM events)`).bind(...ids));
  }
  const results = await inBatches(db, [...stmts, ...(cursor !== from ? [writeCursor(db, name, cursor, now)] : [])]);
  return results.slice(0, stmts.length).reduce((n, x) => n + (x.meta.changes ?? 0), 0);
}

/** Redacts the tenant's inbound records received before `cutoffMs`: the envelope sender and the detail text. */
export async function redactInbound(db: D1Database, r: Redactor, cutoffMs: number, limit: number, now = Date.now()): Promise<number> {
  const name = `redact:inbound:${r.tenantId}`;
  const from = await readCursor(db, name);
  const { results } = await db
    .prepare("SELECT id, at, envelope_from, detail FROM inbound_messages WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?")
    .bind(r.tenantId, from, limit)
    .all<{ id: number; at: number; envelope_from: string | null; detail: string | null }>();
  const firstNotDue = results.findIndex((x) => x.at >= cutoffMs);
  const due = firstNotDue >= 0 ? results.slice(0, firstNotDue) : results;
  const cursor = firstNotDue >= 0 ? results[firstNotDue]!.id - 1 : (results[results.length - 1]?.id ?? from);
  const stmts: D1PreparedStatement[] = [];
  for (const x of due) {
    const envelopeFrom = x.envelope_from ? await redactAddress(r, x.envelope_from) : x.envelope_from;
    const detail = await redactText(r, x.detail);
    if (envelopeFrom === x.envelope_from && detail === x.detail) continue;
    stmts.push(db.prepare("UPDATE inbound_messages SET envelope_from = ?, detail = ? WHERE id = ?").bind(envelopeFrom, detail, x.id));
  }
  await inBatches(db, [...stmts, ...(cursor !== from ? [writeCursor(db, name, cursor, now)] : [])]);
  return stmts.length;
}

/** Deletes up to `limit` of the tenant's inbound records received before `cutoffMs` (by its index (tenant_id, id)). */
export async function pruneTenantInbound(db: D1Database, tenantId: string, cutoffMs: number, limit: number): Promise<number> {
  const r = await db
    .prepare("DELETE FROM inbound_messages WHERE id IN (SELECT id FROM inbound_messages WHERE tenant_id = ? AND at < ? ORDER BY id LIMIT ?)")
    .bind(tenantId, cutoffMs, limit)
    .run();
  return r.meta.changes ?? 0;
}
