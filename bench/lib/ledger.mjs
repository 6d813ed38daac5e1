/**
 * Ledger figures for the bench (issue 16): D1 bytes per message (the local D1 database files in the relay's
 * persistence directory, measured after delivery, indexes and event rows included) with a capacity table, and
 * the queue consumer's time per batch split into D1, DomainGate, SMTP and the rest (from the metering counters).
 */
import { openSync, readSync, closeSync, readdirSync, readFileSync, statSync } from "node:fs";
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
 * The newest committed image of page 1 (the database header) in a write-ahead log, or null. SQLite's WAL format: a
 * 32-byte header (magic, version, page size, checkpoint sequence, two salts, two checksums), then frames of a 24-byte
 * header (page number, database size in pages on a commit frame else 0, the salts, the cumulative checksums) and one
 * page. Frames count only up to the last commit whose salts and checksums match, as SQLite reads them.
 */
function walHeaderPage(walFile) {
  let wal;
  try {
    wal = readFileSync(walFile);
  } catch {
    return null;
  }
  if (wal.length < 32) return null;
  const magic = wal.readUInt32BE(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) return null;
  const word = magic === 0x377f0683 ? (b, o) => b.readUInt32BE(o) : (b, o) => b.readUInt32LE(o);
  const pageSize = wal.readUInt32BE(8) === 1 ? 65536 : wal.readUInt32BE(8);
  let [s0, s1] = [0, 0];
  const sum = (from, to) => {
    for (let o = from; o < to; o += 8) {
      s0 = (s0 + word(wal, o) + s1) >>> 0;
      s1 = (s1 + word(wal, o + 4) + s0) >>> 0;
    }
  };
  sum(0, 24);
  if (s0 !== wal.readUInt32BE(24) || s1 !== wal.readUInt32BE(28)) return null;
  let pending = null;
  let committed = null;
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    if (wal.readUInt32BE(at + 8) !== wal.readUInt32BE(16) || wal.readUInt32BE(at + 12) !== wal.readUInt32BE(20)) break;
    sum(at, at + 8);
    sum(at + 24, at + 24 + pageSize);
    if (s0 !== wal.readUInt32BE(at + 16) || s1 !== wal.readUInt32BE(at + 20)) break;
    if (wal.readUInt32BE(at) === 1) pending = wal.subarray(at + 24, at + 124);
    if (wal.readUInt32BE(at + 4) !== 0 && pending) committed = pending;
  }
  return committed;
}

/**
 * Bytes in use in the local D1 databases: pages minus free pages, from each SQLite file's header (offset 16: page
 * size, 28: pages, 36: free pages), or from the newest committed header in its write-ahead log when the runtime
 * left one behind (the main file's header is then stale: it counted pages freed since as in use). Free pages
 * (bodies cleared once delivered) are reused by later messages, so they do not count.
 */
export function d1UsedBytes(persistDir) {
  let total = 0;
  for (const f of d1Files(persistDir)) {
    const fd = openSync(f, "r");
    let h = Buffer.alloc(100);
    readSync(fd, h, 0, 100, 0);
    closeSync(fd);
    h = walHeaderPage(`${f}-wal`) ?? h;
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

/**
 * Bytes per message between two measurements (the freshly migrated database with its tenant, and the database after
 * the run), and what one 10 GB database holds at that size; `with_schema_bytes_per_message` also counts the empty
 * schema's pages (one page per table and index at least), which do not grow with mail.
 */
export function storageFigures(bytesBefore, bytesAfter, messages) {
  if (!messages || bytesAfter <= bytesBefore) return null;
  const perMessage = (bytesAfter - bytesBefore) / messages;
  const history = D1_DATABASE_BYTES / perMessage;
  return {
    method: "SQLite pages in use (page count minus free pages, from the newest committed header: the write-ahead log's when there is one; indexes and event rows included) of the local D1 databases after the run, minus the same before the first message (schema and tenant), / messages relayed (warm-up included)",
    bytes_per_message: round(perMessage, 0),
    with_schema_bytes_per_message: round(bytesAfter / messages, 0),
    schema_bytes: bytesBefore,
    messages_per_10gb: Math.round(history),
    sustained_messages_per_day_at_default_retention: Math.round(history / DEFAULT_RETENTION_DAYS),
    retention_days: DEFAULT_RETENTION_DAYS,
  };
}

/** The consumer's time per batch by stage, from a phase's metering counters. */
export function consumerBreakdown(counters) {
  if (!counters) return null;
  let batches = 0;
  const t = { batch: 0, d1: 0, do: 0, smtp: 0 };
  for (const [k, v] of Object.entries(counters)) {
    const [path, metric] = k.split(/\.(?=[^.]*$)/);
    if (path.startsWith("queue:edge-relay-outbox")) {
      if (metric === "batches") batches += v;
      for (const s of ["batch", "d1", "do"]) if (metric === `time_ms:${s}`) t[s] += v;
    }
    if (path === "consumer" && metric === "time_ms:smtp") t.smtp += v;
  }
  if (!batches) return null;
  const per = (x) => round(x / batches, 1);
  return {
    batches,
    wall_ms_per_batch: per(t.batch),
    d1_ms_per_batch: per(t.d1),
    domain_gate_ms_per_batch: per(t.do),
    smtp_ms_per_batch: per(t.smtp),
    other_ms_per_batch: per(Math.max(0, t.batch - t.d1 - t.do - t.smtp)),
    note: "time inside each stage summed over the batch's parallel lanes; parts can add up to more than the wall time",
  };
}
