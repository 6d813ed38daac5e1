/**
 * The DomainGate Durable Object's own SQLite (not D1): its state as one JSON row in `gate_state`, and the outcome
 * journal (`outcome_journal`) of delivery outcomes waiting for D1.
 */

/** Creates the state table and reads the saved state, if any. */
export function loadGateState(sql: SqlStorage): string | null {
  sql.exec("CREATE TABLE IF NOT EXISTS gate_state (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
  return sql.exec<{ v: string }>("SELECT v FROM gate_state WHERE k = 'state'").toArray()[0]?.v ?? null;
}

/**
 * Saves the state, updated in place: one row written. INSERT OR REPLACE deletes and reinserts the row and its
 * key's index entry, four billed rows per call (issue 16).
 */
export function saveGateState(sql: SqlStorage, v: string): void {
  const updated = sql.exec("UPDATE gate_state SET v = ? WHERE k = 'state'", v).rowsWritten;
  if (!updated) sql.exec("INSERT INTO gate_state (k, v) VALUES ('state', ?)", v);
}

function ensureJournal(sql: SqlStorage): void {
  sql.exec("CREATE TABLE IF NOT EXISTS outcome_journal (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
}

export function putJournalEntries(sql: SqlStorage, entries: readonly { key: string; value: string }[]): void {
  ensureJournal(sql);
  for (const e of entries) sql.exec("INSERT OR REPLACE INTO outcome_journal (k, v) VALUES (?, ?)", e.key, e.value);
}

/** Journal entries, oldest key first, at most `limit`. */
export function listJournalEntries(sql: SqlStorage, limit: number): { key: string; value: string }[] {
  ensureJournal(sql);
  return sql.exec<{ k: string; v: string }>("SELECT k, v FROM outcome_journal ORDER BY k LIMIT ?", limit).toArray().map((r) => ({ key: r.k, value: r.v }));
}

export function deleteJournalEntries(sql: SqlStorage, keys: readonly string[]): void {
  ensureJournal(sql);
  for (const k of keys) sql.exec("DELETE FROM outcome_journal WHERE k = ?", k);
}
