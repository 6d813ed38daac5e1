// `npm run create-key -- --tenant acme --domain example.com [--domain mail.example.com] [--name "Acme Ltd"]
//                        [--key-name first] [--shard DB] [--remote]`
// Creates the tenant (if it does not exist), gives it the sender domains, and creates an API key, straight in
// D1 through `wrangler d1 execute` (local database by default, --remote for the deployed one). Prints the key
// once; only its SHA-256 hash is stored. Use this for the first key; afterwards the admin API does the same.
// Every ledger shard (LEDGER_SHARDS in wrangler.toml) is migrated first; a new tenant's ledger goes on --shard
// (default DB; the admin API picks the least-loaded shard instead).
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { ledgerShardBindings } from "./ledger-shards.mjs";

const { values } = parseArgs({
  options: {
    tenant: { type: "string" },
    name: { type: "string" },
    domain: { type: "string", multiple: true, default: [] },
    "key-name": { type: "string", default: "cli" },
    shard: { type: "string", default: "DB" },
    remote: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

function usage(message) {
  if (message) console.error(`create-key: ${message}`);
  console.error('usage: npm run create-key -- --tenant <id> --domain <domain> [--domain ...] [--name "Tenant name"] [--key-name <label>] [--remote]');
  process.exit(message ? 2 : 0);
}
if (values.help) usage();

// Everything below goes into SQL text (wrangler d1 execute takes no bound parameters), so each value is checked
// against a strict pattern first and single quotes are doubled.
const TENANT = /^[a-z0-9][a-z0-9-]{0,62}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const LABEL = /^[^\x00-\x1f\x7f]{1,200}$/;
const tenant = values.tenant;
if (!tenant || !TENANT.test(tenant)) usage("--tenant must be 1-63 characters of a-z, 0-9 and -");
const domains = values.domain.map((d) => d.toLowerCase());
if (!domains.length) usage("give at least one --domain the tenant may send from");
for (const d of domains) if (!DOMAIN.test(d)) usage(`not a domain name: ${d}`);
const name = values.name ?? tenant;
if (!LABEL.test(name) || !LABEL.test(values["key-name"])) usage("--name and --key-name must be 1-200 printable characters");
const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const shards = ledgerShardBindings();
const shard = values.shard;
if (!shards.includes(shard)) usage(`--shard must be one of the ledger shards in wrangler.toml: ${shards.join(", ")}`);

const key = `er_${randomBytes(32).toString("hex")}`;
const hash = createHash("sha256").update(key).digest("hex");
const now = Date.now();
const keyId = now.toString(36).padStart(9, "0") + randomBytes(12).toString("hex").slice(0, 12);

const sql = [
  `INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (${q(tenant)}, ${q(name)}, ${now});`,
  // An existing tenant keeps its placement.
  `INSERT OR IGNORE INTO tenant_shards (tenant_id, shard, placed_at) VALUES (${q(tenant)}, ${q(shard)}, ${now});`,
  ...domains.map((d) => `INSERT INTO sender_domains (domain, tenant_id, created_at) SELECT ${q(d)}, ${q(tenant)}, ${now} WHERE NOT EXISTS (SELECT 1 FROM sender_domains WHERE domain = ${q(d)});`),
  `INSERT INTO api_keys (id, tenant_id, key_hash, prefix, name, created_at) VALUES (${q(keyId)}, ${q(tenant)}, ${q(hash)}, ${q(key.slice(0, 10))}, ${q(values["key-name"])}, ${now});`,
  `SELECT domain, tenant_id FROM sender_domains WHERE domain IN (${domains.map(q).join(", ")});`,
].join("\n");

const where = values.remote ? "--remote" : "--local";
const wrangler = (args) => spawnSync("npx", ["wrangler", ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });

for (const binding of shards) {
  const migrate = wrangler(["d1", "migrations", "apply", binding, where]);
  if (migrate.status !== 0) {
    console.error(migrate.stdout, migrate.stderr);
    process.exit(1);
  }
}
const run = wrangler(["d1", "execute", "DB", where, "--json", "--command", sql]);
if (run.status !== 0) {
  console.error(run.stdout, run.stderr);
  process.exit(1);
}
let owners = [];
try {
  const results = JSON.parse(run.stdout);
  owners = results[results.length - 1]?.results ?? [];
} catch {
  console.error("could not read wrangler's output:", run.stdout);
  process.exit(1);
}
// The tenant's id in its shard's own tenants table (lookups by message id seek once per tenant listed there).
const placed = wrangler(["d1", "execute", "DB", where, "--json", "--command", `SELECT shard FROM tenant_shards WHERE tenant_id = ${q(tenant)};`]);
const placedOn = placed.status === 0 ? (JSON.parse(placed.stdout)[0]?.results?.[0]?.shard ?? "DB") : null;
if (placedOn === null) {
  console.error(placed.stdout, placed.stderr);
  process.exit(1);
}
if (placedOn !== "DB") {
  const mirror = wrangler(["d1", "execute", placedOn, where, "--command", `INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (${q(tenant)}, ${q(name)}, ${now});`]);
  if (mirror.status !== 0) {
    console.error(mirror.stdout, mirror.stderr);
    process.exit(1);
  }
}
const foreign = owners.filter((r) => r.tenant_id !== tenant).map((r) => r.domain);
if (foreign.length) console.warn(`warning: already owned by another tenant, not added: ${foreign.join(", ")}`);

console.log(`tenant:  ${tenant} (ledger on ${placedOn})`);
console.log(`domains: ${owners.filter((r) => r.tenant_id === tenant).map((r) => r.domain).join(", ")}`);
console.log(`key id:  ${keyId}`);
console.log(`API key: ${key}`);
console.log("Store the key now: only its hash is kept.");
if (values.remote) {
  // A deployed relay sends only from verified domains (REQUIRE_VERIFIED_DOMAINS, issue 15); npm start does not ask.
  console.log("Before sending: publish the records from GET /v1/domains/<domain>/dns, then POST /v1/domains/<domain>/verify.");
}
