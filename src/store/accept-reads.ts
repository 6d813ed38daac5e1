/**
 * The reads of one accept, in one D1 round trip (issue 16: D1 runs one query at a time per database, so every round
 * trip of the accept path is throughput lost): does the tenant own and has it verified its sender domains, and
 * which recipients are suppressed. The domains live in the control plane (`DB`), suppressions in the tenant's
 * ledger; when both are the same database (one shard, or a tenant on `DB`) the reads are one `batch`, else two
 * concurrent ones.
 */
import { domainStatusOf, tenantDomainStatement } from "./keys";
import { suppressedAddresses, suppressedStatements } from "./suppressions";

export interface AcceptReads {
  /** Each asked domain (lowercase) and the tenant's hold on it. */
  domains: Map<string, { owned: boolean; verified: boolean }>;
  /** The suppressed recipients, lowercase. */
  suppressed: Set<string>;
}

export async function readForAccept(
  control: D1Database,
  ledger: D1Database,
  q: { tenantId: string; domains: string[]; recipients: readonly string[]; scope: "transactional" | "broadcast"; now?: number },
): Promise<AcceptReads> {
  const domains = [...new Set(q.domains.map((d) => d.toLowerCase()))];
  const domainStmts = domains.map((d) => tenantDomainStatement(control, q.tenantId, d));
  const suppressionStmts = suppressedStatements(ledger, q.tenantId, q.recipients, q.scope, q.now);
  let results: D1Result[];
  if (control === ledger) results = await control.batch([...domainStmts, ...suppressionStmts]);
  else {
    const [a, b] = await Promise.all([control.batch(domainStmts), suppressionStmts.length ? ledger.batch(suppressionStmts) : Promise.resolve([])]);
    results = [...a, ...b];
  }
  return {
    domains: new Map(domains.map((d, i) => [d, domainStatusOf(results[i]!)])),
    suppressed: suppressedAddresses(results.slice(domains.length)),
  };
}
