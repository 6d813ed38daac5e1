// `npm start`: the relay on the local Workers runtime with local D1/Queues/Durable Objects/R2,
// a catch-all SMTP server as its next hop, and a fresh API key printed with a ready-to-paste curl line.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { startLocalSink } from "./local-sink.mjs";

const PORT = Number(process.env.PORT ?? 8787);
const SINK_PORT = Number(process.env.SINK_PORT ?? 1025);
const MAIL_DIR = ".local/mail";
const base = `http://127.0.0.1:${PORT}`;

/** Reads a secret from .dev.vars (git-ignored, where wrangler looks for local secrets), creating it if missing. */
function localSecret(name, make) {
  const existing = existsSync(".dev.vars") ? readFileSync(".dev.vars", "utf8") : "";
  const m = new RegExp(`^${name}\\s*=\\s*"?([^"\\n]+)"?`, "m").exec(existing);
  if (m) return m[1];
  const value = make();
  writeFileSync(".dev.vars", `${existing}${existing && !existing.endsWith("\n") ? "\n" : ""}${name}="${value}"\n`);
  return value;
}

async function waitForHealth(child) {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error("wrangler dev exited; see its output above");
    try {
      const r = await fetch(`${base}/health`);
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the relay did not come up within 120 s");
}

async function admin(path, body, token) {
  const r = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

await startLocalSink(SINK_PORT, MAIL_DIR);
console.log(`[sink] catch-all SMTP server on 127.0.0.1:${SINK_PORT}; messages are saved in ${MAIL_DIR}/`);

const token = localSecret("ADMIN_TOKEN", () => `local-admin-${randomBytes(16).toString("hex")}`);
// Signs VERP return paths, unsubscribe and tracking links.
localSecret("SIGNING_SECRET", () => randomBytes(32).toString("hex"));
const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local"], { stdio: "inherit", env: { ...process.env, CI: "1" } });
if (migrate.status !== 0) process.exit(migrate.status ?? 1);

// Local switches (issue 15): the catch-all sink is on loopback, and the quick start sends from a domain nobody
// verified in DNS. A deployed relay keeps wrangler.toml's defaults (no private destinations, verified domains only).
const localVars = [`NEXT_HOP_URL:smtp://127.0.0.1:${SINK_PORT}`, "ALLOW_PRIVATE_DESTINATIONS:127.0.0.0/8,::1/128", "REQUIRE_VERIFIED_DOMAINS:false"];
const child = spawn("wrangler", ["dev", "--ip", "127.0.0.1", "--port", String(PORT), ...localVars.flatMap((v) => ["--var", v])], {
  stdio: ["ignore", "inherit", "inherit"],
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    child.kill("SIGTERM");
    process.exit(0);
  });
}
child.on("exit", (code) => process.exit(code ?? 0));

await waitForHealth(child);
const tenant = await admin("/admin/tenants", { id: "local", name: "Local development", domains: ["example.com"] }, token);
if (tenant.status !== 201 && tenant.status !== 409) throw new Error(`could not create the local tenant: ${JSON.stringify(tenant.body)}`);
const key = await admin("/admin/tenants/local/keys", { name: "npm start" }, token);
if (key.status !== 201) throw new Error(`could not create an API key: ${JSON.stringify(key.body)}`);

const payload = JSON.stringify({ from: "hello@example.com", to: ["someone@example.net"], subject: "Hello from Edge Relay", text: "It works." });
console.log(`
Edge Relay is running at ${base}
  API key (tenant "local", may send from example.com): ${key.body.key}
  Admin token (in .dev.vars): ${token}

Send a message:
  curl -s ${base}/v1/messages -H 'Authorization: Bearer ${key.body.key}' -H 'Content-Type: application/json' -d '${payload}'

Then see its state (use the id from the reply):
  curl -s ${base}/v1/messages/<id> -H 'Authorization: Bearer ${key.body.key}'
`);
