/**
 * Sender domain API: GET /v1/domains, GET /v1/domains/:domain/dns (the records to publish: DKIM per selector,
 * SPF and MX for the bounce domain, DMARC, MTA-STS and TLS-RPT suggestions) and POST /v1/domains/:domain/verify
 * (looks them up over DNS-over-HTTPS and reports what is missing or wrong).
 */
import { Hono, type Context } from "hono";
import { keysForDomain, parseDkimKeys } from "../accept/dkim-keys";
import { dkimKeysSecret, spfIncludes } from "../config";
import { publicKeyRecord } from "../mime/dkim";
import { checkDnsRecords, requiredDnsRecords, type DnsRecord } from "../mime/dns-records";
import { bounceDomainFor } from "../mime/return-path";
import { dohResolver } from "../store/domains-dns";
import { getSenderDomain, listSenderDomains, recordDomainCheck } from "../store/keys";
import { requireApiKey, type AppEnv } from "./auth";
import { ApiError } from "./errors";
import { isDomainName } from "../mime/domain-name";


async function ownedDomain(c: Context<AppEnv>): Promise<string> {
  const domain = c.req.param("domain")?.toLowerCase() ?? "";
  if (!isDomainName(domain) || !(await getSenderDomain(c.env.DB, c.get("tenant").id, domain))) {
    throw new ApiError(404, "not_found", "this account has no such sender domain", "domain");
  }
  return domain;
}

async function recordsFor(env: Env, domain: string): Promise<DnsRecord[]> {
  const keys = keysForDomain(parseDkimKeys(dkimKeysSecret(env)), domain);
  const selectors = await Promise.all(keys.map(async (k) => ({ selector: k.selector, publicKeyTxt: await publicKeyRecord(k.privateKeyPem) })));
  // DKIM keys of a parent domain sign with d=<parent>: publish them there.
  const records = requiredDnsRecords({ domain, selectors, bounceDomain: bounceDomainFor(domain), ...(spfIncludes(env) ? { spfInclude: spfIncludes(env)! } : {}) });
  const signing = keys[0]?.domain;
  if (signing && signing !== domain) {
    const suffix = `._domainkey.${domain}`;
    return records.map((r) =>
      r.purpose === "dkim" && r.name.endsWith(suffix)
        ? { ...r, name: r.name.slice(0, -suffix.length) + `._domainkey.${signing}`, note: r.note.replace(`d=${domain}`, `d=${signing}`) }
        : r,
    );
  }
  return records;
}

export const domains = new Hono<AppEnv>();

domains.get("/v1/domains", requireApiKey, async (c) => {
  const rows = await listSenderDomains(c.env.DB, c.get("tenant").id);
  return c.json({
    data: rows.map((r) => ({
      domain: r.domain,
      verified: r.verified_at !== null,
      verified_at: r.verified_at === null ? null : new Date(r.verified_at).toISOString(),
      last_check_at: r.last_check_at === null ? null : new Date(r.last_check_at).toISOString(),
      dkim_selectors: keysForDomain(parseDkimKeys(dkimKeysSecret(c.env)), r.domain).map((k) => k.selector),
    })),
  });
});

domains.get("/v1/domains/:domain/dns", requireApiKey, async (c) => {
  const domain = await ownedDomain(c);
  const records = await recordsFor(c.env, domain);
  return c.json({ domain, bounce_domain: bounceDomainFor(domain), records });
});

domains.post("/v1/domains/:domain/verify", requireApiKey, async (c) => {
  const domain = await ownedDomain(c);
  const records = await recordsFor(c.env, domain);
  const report = await checkDnsRecords(records, dohResolver(c.var.config().dohUrl));
  await recordDomainCheck(c.env.DB, domain, report.ok, report.results.map((r) => ({ name: r.record.name, purpose: r.record.purpose, status: r.status })));
  return c.json({ domain, verified: report.ok, results: report.results });
});
