/**
 * Ledger figures for the bench (issue 16): D1 bytes per message (the local D1 database files in the relay's
 * persistence directory, measured after delivery, indexes and event rows included) with a capacity table, and
 * the queue consumer's time per batch split into D1, DomainGate, SMTP and the rest (from the metering counters).
 */
import { openSync, readSync, closeSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { round } from "./stats.mjs";

/** D1 holds 10 GB per database (Cloudflare's documented limit). */
export const D1_DATABASE_BYTES = 10e9;
/** The default MESSAGE_RETENTION_DAYS (src/config.ts). */
export const DEFAULT_RETENTION_DAYS = 30;

/** The local D1 database files (main SQLite files) under a persistence directory. */
function d1Files(persistDir) {
  const out = [];
  const walk = (dir, inD1) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p, inD1 || e.name.startsWith("d1"));
      else if (inD1 && e.name.endsWith(".sqlite")) out.push(p);
    }
  };
  walk(persistDir, false);
  return out;
}

/**
 * Bytes in use in the local D1 databases: pages minus free pages, from each SQLite file's header (offset 16: page
 * size, 28: pages, 36: free pages). Read after the runtime closed the database, so the write-ahead log is
 * checkpointed into the file. Free pages (bodies cleared once delivered) are reused by later messages, so they
 * do not count.
 */
export function d1UsedBytes(persistDir) {
  let total = 0;
  for (const f of d1Files(persistDir)) {
    const fd = openSync(f, "r");
    const h = Buffer.alloc(100);
    readSync(fd, h, 0, 100, 0);
    closeSync(fd);
    const pageSize = h.readUInt16BE(16) === 1 ? 65536 : h.readUInt16BE(16);
    total += (h.readUInt32BE(28) - h.readUInt32BE(36)) * pageSize;
  }
  return total;
}

/** Bytes of the local D1 database files (main file and write-ahead log) under a persistence directory. */
export function d1Bytes(persistDir) {
  let total = 0;
  for (const f of d1Files(persistDir)) {
    total += statSync(f).size;
    try {
      total += statSync(`${f}-wal`).size;
    } catch {
      // no write-ahead log
    }
  }
  return total;
}

/** Bytes per message between two measurements, and what one 10 GB database holds at that size. */
export function storageFigures(bytesBefore, bytesAfter, messages) {
  if (!messages || bytesAfter <= bytesBefore) return null;
  const perMessage = (bytesAfter - bytesBefore) / messages;
  const history = D1_DATABASE_BYTES / perMessage;
  return {
    method: "SQLite pages in use (page count minus free pages, indexes and event rows included) of the local D1 database after the run / messages relayed (warm-up included; the schema's own pages are counted too)",
    bytes_per_message: round(perMessage, 0),
    messages_per_10gb: Math.round(history),
    sustained_messages_per_day_at_default_retention: Math.round(history / DEFAULT_RETENTION_DAYS),
    retention_days: DEFAULT_RETENTION_DAYS,
  };
}

/** The consumer's time per batch by stage, from a phase's metering counters. */
export function consumerBreakdown(counters) {
  if (!counters) return null;
  let batches = 0;
  const t = { batch: 0, d1: 0, do: 0, smtp: 0, smtp_wall: 0 };
  for (const [k, v] of Object.entries(counters)) {
    const [path, metric] = k.split(/\.(?=[^.]*$)/);
    if (path.startsWith("queue:edge-relay-outbox")) {
      if (metric === "batches") batches += v;
      for (const s of ["batch", "d1", "do"]) if (metric === `time_ms:${s}`) t[s] += v;
    }
    if (path === "consumer" && metric === "time_ms:smtp") t.smtp += v;
    if (path === "consumer" && metric === "time_ms:smtp_wall") t.smtp_wall += v;
  }
  if (!batches) return null;
  const per = (x) => round(x / batches, 1);
  return {
    batches,
    wall_ms_per_batch: per(t.batch),
    d1_ms_per_batch: per(t.d1),
    domain_gate_ms_per_batch: per(t.do),
    smtp_ms_per_batch: per(t.smtp),
    // Time with at least one SMTP connection opening or transaction in flight: not multiplied by parallel lanes.
    smtp_wall_ms_per_batch: per(t.smtp_wall),
    other_ms_per_batch: per(Math.max(0, t.batch - t.d1 - t.do - (t.smtp_wall || t.smtp))),
    note: "time inside each stage summed over the batch's parallel lanes (SMTP wall: time with any SMTP work in flight); parts can add up to more than the wall time",
  };
}
