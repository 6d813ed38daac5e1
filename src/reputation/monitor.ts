/**
 * The blocklist watch, run by the cron trigger: every watched IP and domain against every list of its kind, over
 * DNS-over-HTTPS (DOH_URL), at most REPUTATION_QUERIES_PER_RUN lookups a run, oldest check first, so the cost of a
 * run is bounded whatever the number of subjects and a full round spreads over several runs. A change
 * clear → listed or listed → clear is a `reputation.listed` / `reputation.delisted` event, sent to webhooks.
 *
 * Watched: REPUTATION_IPS (the operator's sending IPs per upstream/route), IPs added with POST
 * /admin/reputation/subjects, single ip4: addresses learned from the sender domains' SPF records, the tenants'
 * sender domains and REPUTATION_DOMAINS (link/tracking domains).
 */
import { ConfigError, loadReputationConfig, type RelayConfig, type ReputationConfig } from "../config";
import { interpretAnswer, isIpv4, queryName, type DnsList, type ListVerdict } from "./dns-lists";
import {
  listChecks,
  listSubjects,
  markReputationEventsNotified,
  pendingReputationEvents,
  pruneReports,
  putSubject,
  recordCheck,
  senderDomains,
  type CheckRow,
  type ReputationEventRow,
} from "../store/reputation";
import { allEnabledWebhooks, parseEventTypes } from "../store/webhooks";
import type { WebhookJob } from "../webhooks/emit";
import type { WebhookPayload } from "../webhooks/events";

/** The pseudo-list under which the SPF learning of a sender domain is scheduled like any check. */
export const SPF_LEARN_LIST = "spf-learn";
const DOH_TIMEOUT_MS = 5000;
/** Lookups in flight at once (a Worker invocation may hold 6 connections). */
const CONCURRENCY = 4;
/** Learned addresses per sender domain (an SPF record with hundreds of ip4: terms is a provider's, not ours). */
const MAX_SPF_IPS = 10;

export interface WatchedSubject {
  subject: string;
  kind: "ip" | "domain";
  tenantId: string | null;
  label: string | null;
}

type Lookup = { ok: true; answers: string[] } | { ok: false; why: string };

/** One DoH JSON query (RFC 8484-style JSON API); NXDOMAIN and NODATA are `answers: []`. */
export async function dohLookup(dohUrl: string, name: string, type: "A" | "TXT", fetcher: typeof fetch = fetch): Promise<Lookup> {
  const url = new URL(dohUrl);
  url.searchParams.set("name", name);
  url.searchParams.set("type", type);
  try {
    const res = await fetcher(url.toString(), { headers: { accept: "application/dns-json" }, signal: AbortSignal.timeout(DOH_TIMEOUT_MS) });
    if (!res.ok) {
      await res.body?.cancel();
      return { ok: false, why: `resolver answered HTTP ${res.status}` };
    }
    const body = (await res.json()) as { Status?: unknown; Answer?: { type?: unknown; data?: unknown }[] };
    if (body.Status === 3) return { ok: true, answers: [] };
    if (body.Status !== 0) return { ok: false, why: `DNS status ${String(body.Status)}` };
    const want = type === "A" ? 1 : 16;
    const answers = (Array.isArray(body.Answer) ? body.Answer : []).filter((a) => a.type === want && typeof a.data === "string").map((a) => a.data as string);
    return { ok: true, answers: answers.slice(0, 50) };
  } catch (e) {
    return { ok: false, why: `lookup failed: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** The single addresses (ip4:a.b.c.d or /32) an SPF record names directly; includes and ranges are not followed. */
export function spfAddresses(txt: readonly string[]): string[] {
  const record = txt.map((t) => t.replace(/^"|"$/g, "").replace(/"\s*"/g, "")).find((t) => /^v=spf1(\s|$)/i.test(t));
  if (!record) return [];
  const out = new Set<string>();
  for (const term of record.split(/\s+/)) {
    const m = /^[+]?ip4:([\d.]+)(?:\/32)?$/i.exec(term);
    if (m && isIpv4(m[1]!)) out.add(m[1]!);
  }
  return [...out].slice(0, MAX_SPF_IPS);
}

/** Everything watched, deduplicated (an operator entry wins over a learned one). */
export async function watchedSubjects(db: D1Database, cfg: ReputationConfig): Promise<WatchedSubject[]> {
  const [stored, domains] = await Promise.all([listSubjects(db), senderDomains(db)]);
  const out = new Map<string, WatchedSubject>();
  const add = (s: WatchedSubject) => {
    if (!out.has(s.subject)) out.set(s.subject, s);
  };
  for (const x of cfg.ips) add({ subject: x.ip, kind: "ip", tenantId: null, label: x.label });
  for (const s of stored) add({ subject: s.subject, kind: s.kind, tenantId: s.tenant_id, label: s.label });
  for (const d of domains) add({ subject: d.domain, kind: "domain", tenantId: d.tenant_id, label: "sender domain" });
  for (const d of cfg.domains) add({ subject: d, kind: "domain", tenantId: null, label: "REPUTATION_DOMAINS" });
  return [...out.values()];
}

interface Pair {
  subject: WatchedSubject;
  list: DnsList | typeof SPF_LEARN_LIST;
}

function listName(p: Pair): string {
  return typeof p.list === "string" ? p.list : p.list.name;
}

/** The pairs due for a check, oldest first, at most `budget`. */
export function duePairs(subjects: WatchedSubject[], cfg: ReputationConfig, checks: Map<string, CheckRow>, now: number, budget: number, spfDomains: Set<string>): Pair[] {
  const pairs: Pair[] = [];
  for (const s of subjects) {
    for (const l of cfg.lists) if (l.kind === s.kind && queryName(l, s.subject)) pairs.push({ subject: s, list: l });
    if (cfg.learnSpf && spfDomains.has(s.subject)) pairs.push({ subject: s, list: SPF_LEARN_LIST });
  }
  const staleBefore = now - cfg.checkIntervalSeconds * 1000;
  return pairs
    .map((p) => ({ p, at: checks.get(`${p.subject.subject}|${listName(p)}`)?.checked_at ?? 0 }))
    .filter((x) => x.at <= staleBefore)
    .sort((a, b) => a.at - b.at)
    .slice(0, budget)
    .map((x) => x.p);
}

export interface WatchRunResult {
  checked: number;
  listed: number;
  errors: number;
  learned: number;
  events: number;
  webhooks: number;
}

/** One run of the watch: the due checks, their state changes, and webhooks for new events. */
export async function runReputationWatch(env: Env, config: RelayConfig, now = Date.now(), fetcher: typeof fetch = fetch): Promise<WatchRunResult> {
  const cfg = loadReputationConfig(env);
  const dohUrl = config.dohUrl;
  const db = env.DB;
  const [subjects, checkRows, domains] = await Promise.all([watchedSubjects(db, cfg), listChecks(db), senderDomains(db)]);
  const checks = new Map(checkRows.map((c) => [`${c.subject}|${c.list}`, c]));
  const due = duePairs(subjects, cfg, checks, now, cfg.queriesPerRun, new Set(domains.map((d) => d.domain)));
  const result: WatchRunResult = { checked: 0, listed: 0, errors: 0, learned: 0, events: 0, webhooks: 0 };
  // One group per lookup, never split across batches (the event insert must see the state before the upsert).
  const writes: D1PreparedStatement[][] = [];
  const events = new Set<D1PreparedStatement>();
  let next = 0;
  const worker = async () => {
    while (next < due.length) {
      const pair = due[next++]!;
      if (pair.list === SPF_LEARN_LIST) {
        const r = await dohLookup(dohUrl, pair.subject.subject, "TXT", fetcher);
        const ips = r.ok ? spfAddresses(r.answers) : [];
        for (const ip of ips) await putSubject(db, { subject: ip, kind: "ip", source: "spf", label: `SPF of ${pair.subject.subject}`, tenant_id: pair.subject.tenantId }, now);
        result.learned += ips.length;
        writes.push(recordCheck(db, { subject: pair.subject.subject, list: SPF_LEARN_LIST, tenantId: pair.subject.tenantId, ...(r.ok ? { state: "clear", codes: [], meaning: "" } : { state: "error", codes: [], meaning: r.why }) }, now).statements);
        continue;
      }
      const verdict = await checkOne(dohUrl, pair.list, pair.subject.subject, fetcher);
      result.checked++;
      if (verdict.state === "listed") result.listed++;
      if (verdict.state === "error") result.errors++;
      const r = recordCheck(db, { subject: pair.subject.subject, list: pair.list.name, tenantId: pair.subject.tenantId, ...(verdict.state === "clear" ? { state: "clear", codes: [], meaning: "" } : verdict) }, now);
      if (r.event) events.add(r.event);
      writes.push(r.statements);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, due.length) }, worker));
  for (let i = 0; i < writes.length; i += 25) {
    const chunk = writes.slice(i, i + 25).flat();
    const done = await db.batch(chunk);
    chunk.forEach((stmt, j) => {
      if (events.has(stmt)) result.events += done[j]?.meta.changes ?? 0;
    });
  }
  result.webhooks = await emitReputationWebhooks(env, now);
  return result;
}

async function checkOne(dohUrl: string, list: DnsList, subject: string, fetcher: typeof fetch): Promise<ListVerdict> {
  const name = queryName(list, subject)!;
  const r = await dohLookup(dohUrl, name, "A", fetcher);
  if (!r.ok) return { state: "error", codes: [], meaning: `error: ${r.why}` };
  return interpretAnswer(list, r.answers);
}

function payloadFor(hookId: string, tenantId: string, e: ReputationEventRow): WebhookPayload {
  return {
    id: `${hookId}-rep${e.id}`,
    event_id: e.id,
    type: e.type,
    created_at: new Date(e.at).toISOString(),
    tenant_id: tenantId,
    message_id: "",
    recipient: null,
    data: {
      attempt: null,
      code: null,
      enhanced: null,
      text: e.meaning,
      host: null,
      tls: null,
      latency_ms: null,
      extra: { subject: e.subject, list: e.list, codes: e.codes ? e.codes.split(",") : [], relay_wide: e.tenant_id === null },
    },
  };
}

/**
 * Sends webhooks for reputation events not sent yet: a tenant's subject to that tenant's endpoints, a relay-wide
 * one (an operator IP) to every tenant's endpoints subscribed to the type (or "*"). Rows are marked only after
 * the queue took the jobs, so a failure sends them again next run (at least once; the id is stable).
 */
export async function emitReputationWebhooks(env: Env, now = Date.now()): Promise<number> {
  const events = await pendingReputationEvents(env.DB);
  if (!events.length) return 0;
  const hooks = await allEnabledWebhooks(env.DB);
  const jobs: WebhookJob[] = [];
  for (const e of events) {
    for (const h of hooks) {
      if (e.tenant_id !== null && e.tenant_id !== h.tenant_id) continue;
      const types = parseEventTypes(h.event_types);
      if (!types.includes("*") && !types.includes(e.type)) continue;
      jobs.push({ v: 1, webhookId: h.id, payload: payloadFor(h.id, h.tenant_id, e) });
    }
  }
  for (let i = 0; i < jobs.length; i += 100) await env.WEBHOOKS.sendBatch(jobs.slice(i, i + 100).map((body) => ({ body, contentType: "json" as const })));
  await markReputationEventsNotified(env.DB, events.map((e) => e.id), now);
  return jobs.length;
}

/** For the cron: runs the watch and logs (never throws). */
export async function runReputationWatchLogged(env: Env, config: RelayConfig): Promise<void> {
  try {
    const r = await runReputationWatch(env, config);
    const pruned = await pruneReports(env.DB, Date.now() - loadReputationConfig(env).reportRetentionDays * 86400_000);
    if (r.checked || r.events || pruned) console.log("reputation watch", JSON.stringify({ ...r, prunedReports: pruned }));
  } catch (e) {
    console.error(e instanceof ConfigError ? `reputation watch: ${e.message}` : e);
  }
}
