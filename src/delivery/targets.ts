/**
 * The targets stage of the delivery pipeline: where a destination's mail goes. Resolves each route's next hops
 * (relay upstreams in failover order, MX hosts over DNS-over-HTTPS, or a send_email binding), each with the
 * DomainGate key and policy that limit it.
 */
import type { NextHop, RelayConfig } from "../config";
import type { DomainGate } from "../gate/domain-gate";
import { mergePolicy, presetForMxHosts, type GatePolicy } from "../gate/policy";
import type { TlsMode } from "../smtp/client";
import { DnsFailure, DohResolver } from "./mx";
import { destinationAllowed } from "./private-networks";
import { resolveSmtpHop, type RouteCandidate } from "./routes";
import { d1PolicyCache, fetchPolicyText, MtaStsResolver } from "./mta-sts";
import { mxPolicy, needsTls, strictTls, type TlsPolicy } from "./tls-policy";

export type Gate = DurableObjectStub<DomainGate>;

const resolvers = new Map<string, DohResolver>();
function resolverFor(dohUrl: string): DohResolver {
  let r = resolvers.get(dohUrl);
  if (!r) resolvers.set(dohUrl, (r = new DohResolver(dohUrl)));
  return r;
}
/** MTA-STS policies remembered per isolate (in front of the D1 cache). */
const stsResolver = new MtaStsResolver();

/** What the sender asked of TLS for a lane's jobs (all jobs of a lane ask the same). */
export interface TlsWishes {
  requireTls: boolean;
  tlsOptional: boolean;
}

/** An MTA-STS policy in enforce mode leaves no MX host to try: the mail waits (4.7.5) and expires in the end. */
export class StsRefusal extends Error {
  override name = "StsRefusal";
}

/** One way to reach a destination: its gate key, policy, and either SMTP endpoints or a send_email binding. */
export interface Target {
  gateKey: string;
  policy: GatePolicy;
  label: string;
  endpoints: { host: string; address: string; port: number; tls: TlsMode; auth?: NonNullable<NextHop["auth"]> }[];
  binding?: string;
  /** REQUIRETLS / MTA-STS for this target's connections (issue 21). */
  tlsPolicy?: TlsPolicy;
}

export function senderDomain(mailFrom: string): string {
  return mailFrom.includes("@") ? mailFrom.slice(mailFrom.lastIndexOf("@") + 1).toLowerCase() : "";
}

export function gateFor(env: Env, key: string): Gate {
  return env.DOMAIN_GATE.get(env.DOMAIN_GATE.idFromName(key));
}

export function policyFor(config: RelayConfig, key: string, route: RouteCandidate, preset?: Partial<GatePolicy>): GatePolicy {
  return mergePolicy(config.gateDefaults, preset, route.policy, config.gatePolicies[key]);
}

/** Resolves the next hops of one route for a destination. DnsFailure and RouteError propagate. */
export async function targetsFor(env: Env, config: RelayConfig, route: RouteCandidate, destination: string, wishes: TlsWishes): Promise<Target[]> {
  const t = route.target;
  if (t.kind === "cloudflare") {
    // The send_email binding gives no say over TLS towards the recipient: no route for REQUIRETLS mail.
    if (wishes.requireTls) return [];
    const key = `cloudflare:${t.binding}`.toLowerCase();
    return [{ gateKey: key, policy: policyFor(config, key, route), label: key, endpoints: [], binding: t.binding }];
  }
  if (t.kind === "smtp") {
    const hop = resolveSmtpHop(t.url, env);
    const key = `upstream:${route.name}`.toLowerCase();
    return [
      {
        gateKey: key,
        policy: policyFor(config, key, route),
        label: `${hop.host}:${hop.port}`,
        endpoints: [{ host: hop.host, address: hop.host, port: hop.port, tls: wishes.requireTls ? strictTls(hop.tls) : hop.tls, ...(hop.auth ? { auth: hop.auth } : {}) }],
        ...(wishes.requireTls ? { tlsPolicy: { requireTls: true, stsEnforce: false, stsTesting: false, note: "REQUIRETLS" } } : {}),
      },
    ];
  }
  const resolver = resolverFor(config.dohUrl);
  const allMx = await resolver.mxHosts(destination);
  // MTA-STS (RFC 8461) applies to MX delivery only; `TLS-Required: No` mail does not even look it up.
  const sts = wishes.tlsOptional
    ? null
    : await stsResolver.lookup(destination, { txt: (n) => resolver.txt(n), fetchPolicy: (d) => fetchPolicyText(config.mtaStsPolicyUrl, d), ...d1PolicyCache(env.DB), now: Date.now });
  const { hosts: mx, policy: tlsPolicy, refusal } = mxPolicy(allMx, sts, wishes);
  if (refusal) throw new StsRefusal(refusal);
  const port = t.port ?? config.mxPort;
  const endpoints: Target["endpoints"] = [];
  let lastDns: DnsFailure | undefined;
  for (const h of mx) {
    try {
      for (const address of await resolver.addresses(h.host)) endpoints.push({ host: h.host, address, port, tls: needsTls(tlsPolicy) ? strictTls(t.tls) : t.tls });
    } catch (e) {
      if (!(e instanceof DnsFailure)) throw e;
      lastDns = e;
    }
  }
  if (!endpoints.length) throw lastDns ?? new DnsFailure(`no MX host of ${destination} has an address`, false, "4.4.4");
  // A domain can publish loopback, private or metadata addresses as its mail hosts: never connect there.
  const allowed = endpoints.filter((ep) => destinationAllowed(ep.address, config.allowPrivateDestinations));
  if (!allowed.length) {
    throw new DnsFailure(`every address of the mail hosts of ${destination} is non-public (${endpoints.map((ep) => ep.address).join(", ")}); refused (ALLOW_PRIVATE_DESTINATIONS)`, true, "5.4.4");
  }
  endpoints.splice(0, endpoints.length, ...allowed);
  const preset = presetForMxHosts(mx.map((h) => h.host));
  const key = preset ? `provider:${preset.name}` : destination;
  return [{ gateKey: key, policy: policyFor(config, key, route, preset?.policy), label: mx.map((h) => h.host).join(","), endpoints, ...(tlsPolicy ? { tlsPolicy } : {}) }];
}
