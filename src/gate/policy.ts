/**
 * DomainGate policies: how fast, how many connections and how many messages per connection a destination
 * gets, and how the gate backs off. Built from config defaults, presets for large mailbox providers (grouped
 * by MX host, so every domain hosted at Google shares one gate), and per-destination / per-route overrides.
 * Pure: no Workers imports.
 */

export interface GatePolicy {
  /** Messages per second (token bucket refill rate). */
  ratePerSecond: number;
  /** Messages that may leave back to back after a quiet period (bucket size). */
  burst: number;
  /** Simultaneous connections to the destination, across all consumer invocations. */
  maxConnections: number;
  /** Messages carried by one connection before it is closed. */
  maxMessagesPerConnection: number;
  /** Pause after a throttling reply (421, 4.7.x) when the reply names no delay. */
  backoffPauseSeconds: number;
  /** Consecutive connection failures that open the circuit. */
  circuitFailures: number;
  /** How long an open circuit refuses permits before one trial connection is let through. */
  circuitOpenSeconds: number;
  /** Messages per UTC day through this destination (upstream quota); 0 = unlimited. */
  quotaPerDay: number;
}

/**
 * Defaults for an unknown destination: modest, like Postfix's default_destination_concurrency_limit (20) scaled
 * down for a Worker invocation's 6 sockets, and KumoMTA's example shaping for unknown sites.
 */
export const DEFAULT_GATE_POLICY: GatePolicy = {
  ratePerSecond: 10,
  burst: 10,
  maxConnections: 3,
  maxMessagesPerConnection: 50,
  backoffPauseSeconds: 60,
  circuitFailures: 5,
  circuitOpenSeconds: 300,
  quotaPerDay: 0,
};

export interface ProviderPreset {
  /** Gate key suffix: the destination key becomes `provider:<name>`. */
  name: string;
  /** MX host suffixes (lowercase, no trailing dot) that identify the provider. */
  mxSuffixes: string[];
  policy: Partial<GatePolicy>;
}

/**
 * Large providers, recognised by their MX hosts. Numbers follow the shaping that KumoMTA's community
 * `shaping.toml` ships for these sites (connection limits and per-connection message caps); they are starting
 * points, overridable per destination.
 */
export const PROVIDER_PRESETS: readonly ProviderPreset[] = [
  { name: "google", mxSuffixes: ["google.com", "googlemail.com"], policy: { ratePerSecond: 20, burst: 20, maxConnections: 5, maxMessagesPerConnection: 50 } },
  {
    name: "microsoft",
    mxSuffixes: ["protection.outlook.com", "outlook.com", "hotmail.com"],
    policy: { ratePerSecond: 10, burst: 10, maxConnections: 4, maxMessagesPerConnection: 20 },
  },
  { name: "yahoo", mxSuffixes: ["yahoodns.net", "yahoo.com"], policy: { ratePerSecond: 5, burst: 5, maxConnections: 3, maxMessagesPerConnection: 20 } },
  { name: "apple", mxSuffixes: ["icloud.com", "mail.icloud.com", "me.com"], policy: { ratePerSecond: 5, burst: 5, maxConnections: 2, maxMessagesPerConnection: 20 } },
  { name: "comcast", mxSuffixes: ["comcast.net"], policy: { ratePerSecond: 3, burst: 3, maxConnections: 2, maxMessagesPerConnection: 10 } },
  { name: "gmx-webde", mxSuffixes: ["gmx.net", "web.de", "1and1.com", "ionos.com"], policy: { ratePerSecond: 5, burst: 5, maxConnections: 2, maxMessagesPerConnection: 20 } },
  { name: "yandex", mxSuffixes: ["yandex.net", "yandex.ru"], policy: { ratePerSecond: 5, burst: 5, maxConnections: 2, maxMessagesPerConnection: 20 } },
  { name: "mailru", mxSuffixes: ["mail.ru"], policy: { ratePerSecond: 5, burst: 5, maxConnections: 2, maxMessagesPerConnection: 20 } },
];

function hasSuffix(host: string, suffix: string): boolean {
  return host === suffix || host.endsWith(`.${suffix}`);
}

/** The preset whose MX suffix matches the most preferred MX host, if any. */
export function presetForMxHosts(mxHosts: string[]): ProviderPreset | undefined {
  const first = mxHosts[0]?.toLowerCase().replace(/\.$/, "");
  if (!first) return undefined;
  return PROVIDER_PRESETS.find((p) => p.mxSuffixes.some((s) => hasSuffix(first, s)));
}

const POLICY_KEYS: readonly (keyof GatePolicy)[] = [
  "ratePerSecond",
  "burst",
  "maxConnections",
  "maxMessagesPerConnection",
  "backoffPauseSeconds",
  "circuitFailures",
  "circuitOpenSeconds",
  "quotaPerDay",
];

/** Validates a partial policy from JSON (config var, route column, admin request); returns the problem or the policy. */
export function parsePartialPolicy(value: unknown): { ok: true; policy: Partial<GatePolicy> } | { ok: false; error: string } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, error: "policy must be a JSON object" };
  const out: Partial<GatePolicy> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!(POLICY_KEYS as readonly string[]).includes(k)) return { ok: false, error: `unknown policy field ${k} (known: ${POLICY_KEYS.join(", ")})` };
    const zeroOk = k === "quotaPerDay";
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (!zeroOk && v === 0)) return { ok: false, error: `policy.${k} must be a positive number` };
    if (k !== "ratePerSecond" && !Number.isInteger(v)) return { ok: false, error: `policy.${k} must be an integer` };
    out[k as keyof GatePolicy] = v;
  }
  return { ok: true, policy: out };
}

/** Layers partial policies over a full one, later layers winning. */
export function mergePolicy(base: GatePolicy, ...layers: (Partial<GatePolicy> | undefined)[]): GatePolicy {
  const out = { ...base };
  for (const l of layers) if (l) Object.assign(out, l);
  out.burst = Math.max(1, out.burst);
  out.maxConnections = Math.max(1, out.maxConnections);
  out.maxMessagesPerConnection = Math.max(1, out.maxMessagesPerConnection);
  return out;
}
