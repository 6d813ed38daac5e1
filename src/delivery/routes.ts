/**
 * Routes: which next hops serve a message, chosen by tenant, sender domain and recipient domain, each with
 * failover. A route's `next_hop_url` says its kind:
 * - `smtp://`, `smtp+starttls://`, `smtp+opportunistic://`, `smtps://` — an upstream relay. Credentials may be
 *   written inline or as `${SMTP_...}` placeholders filled from Worker secrets at delivery time;
 * - `mx:` — direct delivery to the recipient domain's MX hosts, `mx:?port=2525&tls=opportunistic|required|off`;
 * - `cloudflare:` — Cloudflare Email Service through a `send_email` binding (`cloudflare:BINDING`, default EMAIL).
 * Several rows matching the same rule form a failover list: lowest priority first, weighted random among equals.
 */
import { ConfigError, parseNextHop, ROUTE_SECRET_PREFIX, routeSecret, type NextHop } from "../config";
import { parsePartialPolicy, type GatePolicy } from "../gate/policy";
import type { RouteRow } from "../store/routes";

export type RouteTarget =
  | { kind: "smtp"; hop: NextHop; url: string }
  | { kind: "mx"; port: number | null; tls: "off" | "starttls-opportunistic" | "starttls-required" }
  | { kind: "cloudflare"; binding: string };

export interface RouteCandidate {
  id: string;
  /** Name of the hop: upstreams are gated per name. */
  name: string;
  target: RouteTarget;
  policy: Partial<GatePolicy> | undefined;
  retryScheduleSeconds: number[] | undefined;
  maxMessageAgeSeconds: number | undefined;
}

const PLACEHOLDER = /\$\{([A-Z][A-Z0-9_]*)\}/g;

/** Thrown when a route is unusable right now (a secret is missing): deliveries are deferred, not bounced. */
export class RouteError extends Error {
  override name = "RouteError";
}

/** Parses and checks a next-hop URL (without filling placeholders). Throws ConfigError with the reason. */
export function parseRouteTarget(url: string): RouteTarget {
  if (/^mx:/i.test(url)) {
    const q = new URLSearchParams(url.slice(url.indexOf("?") >= 0 ? url.indexOf("?") + 1 : url.length));
    const port = q.get("port");
    if (port !== null && !/^\d{1,5}$/.test(port)) throw new ConfigError(`mx: port must be a number, got ${port}`);
    const tlsParam = q.get("tls") ?? "opportunistic";
    const tlsModes = { off: "off", opportunistic: "starttls-opportunistic", required: "starttls-required" } as const;
    const tls = tlsModes[tlsParam as keyof typeof tlsModes];
    if (!tls) throw new ConfigError(`mx: tls must be off, opportunistic or required, got ${tlsParam}`);
    return { kind: "mx", port: port === null ? null : Number(port), tls };
  }
  if (/^cloudflare:/i.test(url)) {
    const binding = url.slice("cloudflare:".length) || "EMAIL";
    if (!/^[A-Z_][A-Z0-9_]*$/i.test(binding)) throw new ConfigError(`cloudflare: binding name is not valid: ${binding}`);
    return { kind: "cloudflare", binding };
  }
  for (const m of url.matchAll(PLACEHOLDER)) {
    if (!m[1]!.startsWith(ROUTE_SECRET_PREFIX)) throw new ConfigError(`only secrets named ${ROUTE_SECRET_PREFIX}* may be referenced, got \${${m[1]}}`);
  }
  // Placeholders are checked for shape here and filled at delivery (secrets are not readable by the admin API).
  return { kind: "smtp", hop: parseNextHop(url.replace(PLACEHOLDER, "x")), url };
}

/** Fills `${SMTP_...}` placeholders from the Worker's secrets and parses the hop. */
export function resolveSmtpHop(url: string, env: Env): NextHop {
  const filled = url.replace(PLACEHOLDER, (_m, name: string) => {
    const v = routeSecret(env, name);
    if (v === undefined) throw new RouteError(`route secret ${name} is not set`);
    return encodeURIComponent(v);
  });
  return parseNextHop(filled);
}

function parseSchedule(value: string | null): number[] | undefined {
  if (!value) return undefined;
  const parts = value.split(",").map((p) => Number(p.trim()));
  return parts.length && parts.every((n) => Number.isFinite(n) && n >= 0) ? parts : undefined;
}

function toCandidate(row: RouteRow): RouteCandidate {
  let policy: Partial<GatePolicy> | undefined;
  if (row.policy) {
    const parsed = parsePartialPolicy(JSON.parse(row.policy) as unknown);
    if (parsed.ok) policy = parsed.policy;
  }
  return {
    id: row.id,
    name: row.name ?? row.id,
    target: parseRouteTarget(row.next_hop_url),
    policy,
    retryScheduleSeconds: parseSchedule(row.retry_schedule_seconds),
    maxMessageAgeSeconds: row.max_message_age_seconds ?? undefined,
  };
}

/**
 * The failover list for a message from the rows `findRoutes` returned (most specific first): the rows of the
 * most specific rule, by priority, weighted random among equal priorities. Empty rows: the default next hop.
 */
export function selectRouteSet(rows: RouteRow[], defaultUrl: string, random: () => number = Math.random): RouteCandidate[] {
  if (!rows.length) {
    return [{ id: "default", name: "default", target: parseRouteTarget(defaultUrl), policy: undefined, retryScheduleSeconds: undefined, maxMessageAgeSeconds: undefined }];
  }
  const top = rows[0]!;
  const same = rows.filter(
    (r) => r.match_recipient_domain === top.match_recipient_domain && r.match_sender_domain === top.match_sender_domain && r.tenant_id === top.tenant_id,
  );
  const byPriority = new Map<number, RouteRow[]>();
  for (const r of same) byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r]);
  const ordered: RouteRow[] = [];
  for (const p of [...byPriority.keys()].sort((a, b) => a - b)) {
    // Weighted order without replacement: each pick is proportional to the remaining weights.
    const pool = [...byPriority.get(p)!];
    while (pool.length) {
      const total = pool.reduce((s, r) => s + Math.max(0, r.weight), 0);
      let x = random() * total;
      let i = pool.findIndex((r) => (x -= Math.max(0, r.weight)) < 0);
      if (i < 0) i = 0;
      ordered.push(pool.splice(i, 1)[0]!);
    }
  }
  const out: RouteCandidate[] = [];
  for (const r of ordered) {
    try {
      out.push(toCandidate(r));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      console.error(`route ${r.id} is invalid and skipped: ${e.message}`);
    }
  }
  return out;
}
