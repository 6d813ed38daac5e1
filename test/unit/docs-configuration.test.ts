// docs/configuration.md lists exactly the settings the code reads, found by reading the code (issue 24), so the
// table cannot drift: a new env.NAME without a row fails, and so does a row for a setting no code reads.
import { readFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { declaredSecrets, parseWranglerToml, sourceFiles, tableUnderHeading, variablesReadIn } from "../support/docs-check";

const ROOT = resolve(__dirname, "../..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const sorted = (names: Iterable<string>) => [...new Set(names)].sort();

const toml = parseWranglerToml(read("wrangler.toml"));
const doc = read("docs/configuration.md");
const workerTable = tableUnderHeading(doc, "Variables and secrets");
const bindingTable = tableUnderHeading(doc, "Bindings");
const bridgeTable = tableUnderHeading(doc, "SMTP bridge options");

/** What the code reads, split into the Worker's settings and the bridge's environment variables. */
function readByCode() {
  const worker = new Set<string>();
  const bridge = new Set<string>();
  const where = new Map<string, string>();
  for (const file of sourceFiles(join(ROOT, "src"))) {
    const isBridge = relative(ROOT, file).startsWith(`src${sep}bridge${sep}`);
    for (const name of variablesReadIn(readFileSync(file, "utf8"))) {
      (isBridge ? bridge : worker).add(name);
      if (!where.has(name)) where.set(name, relative(ROOT, file));
    }
  }
  for (const name of declaredSecrets(read("src/env.d.ts"))) worker.add(name);
  for (const name of toml.vars.keys()) worker.add(name);
  for (const binding of toml.bindings) worker.delete(binding);
  return { worker, bridge, where };
}

const code = readByCode();

describe("docs/configuration.md against the code", () => {

  it("lists every Worker variable and secret the code reads, and nothing else", () => {
    const missing = sorted(code.worker).filter((n) => !workerTable.has(n)).map((n) => `${n} (read in ${code.where.get(n) ?? "wrangler.toml/env.d.ts"})`);
    const stale = sorted(workerTable.keys()).filter((n) => !code.worker.has(n));
    expect({ missing, stale }).toEqual({ missing: [], stale: [] });
  });

  it("gives each wrangler.toml [vars] entry the default wrangler.toml sets", () => {
    const wrong: string[] = [];
    for (const [name, value] of toml.vars) {
      const row = workerTable.get(name);
      if (row && !row[2]?.includes(`\`${value}\``)) wrong.push(`${name}: wrangler.toml has "${value}", the table says ${row[2]}`);
    }
    expect(wrong).toEqual([]);
  });

  it("lists every binding of wrangler.toml, and only bindings the code names", () => {
    const src = sourceFiles(join(ROOT, "src")).map((f) => readFileSync(f, "utf8")).join("\n");
    expect(sorted([...toml.bindings].filter((b) => !bindingTable.has(b)))).toEqual([]);
    expect(sorted([...bindingTable.keys()].filter((b) => !toml.bindings.has(b) && !src.includes(`"${b}"`)))).toEqual([]);
  });

  it("lists every environment variable of the SMTP bridge, and nothing else", () => {
    expect(code.bridge.size).toBeGreaterThan(10);
    const missing = sorted(code.bridge).filter((n) => !bridgeTable.has(n));
    const stale = sorted(bridgeTable.keys()).filter((n) => !code.bridge.has(n));
    expect({ missing, stale }).toEqual({ missing: [], stale: [] });
  });
});

describe("finding the settings in code", () => {
  it("sees each way the code reads a setting", () => {
    const source = `
      const a = env.PLAIN_VAR; const b = c.env.FROM_CONTEXT; const d = this.env?.OPTIONAL;
      const e = (env as { CAST_VAR?: string }).CAST_VAR; const f = (env as { M?: unknown } | null)?.CAST_NULL;
      const g = env["BRACKETED"]; const { DESTRUCTURED, RENAMED: r } = env; const h = vars.ACCESS_LIKE;
      const spec = { name: "x", env: "BRIDGE_STYLE" }; export const ROUTE_SECRET_PREFIX = "FAMILY_";
      const notEnv = other.NOT_A_SETTING; const lower = env.db;`;
    expect(sorted(variablesReadIn(source))).toEqual(
      sorted(["PLAIN_VAR", "FROM_CONTEXT", "OPTIONAL", "CAST_VAR", "CAST_NULL", "BRACKETED", "DESTRUCTURED", "RENAMED", "ACCESS_LIKE", "BRIDGE_STYLE", "FAMILY_*"]),
    );
  });

  it("reads wrangler.toml's [vars] and bindings", () => {
    const t = parseWranglerToml(`name = "w"\n[vars]\nA_VAR = "1,2"\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "x"\n[[durable_objects.bindings]]\nname = "GATE"\nclass_name = "G"\n`);
    expect([...t.vars]).toEqual([["A_VAR", "1,2"]]);
    expect(sorted(t.bindings)).toEqual(["DB", "GATE"]);
  });

  it("finds today's settings in the source, including those read in unusual ways", () => {
    for (const name of ["RELAY_HOSTNAME", "MAX_RECIPIENTS", "METERING", "ACCESS_TEAM_DOMAIN", "ACCESS_AUD", "SMTP_*", "SIGNING_SECRET"]) {
      expect(code.worker.has(name), name).toBe(true);
    }
    expect(code.worker.has("DB")).toBe(false);
    expect(code.bridge.has("EDGE_RELAY_URL")).toBe(true);
    expect(code.bridge.has("EDGE_RELAY_BRIDGE_TRUSTED_KEY")).toBe(true);
  });
});
