/**
 * Configuration is read in one place (issue 19): no module of the Worker but src/config.ts reads an env variable.
 * Bindings (DB, BODIES, the queues, the Durable Objects, EMAIL) are not settings and may be read anywhere. The
 * bridge is a separate Node program with its own option table (src/bridge/options.js) and is left out.
 * The settings are parsed once per invocation at the entry points and passed down: only they call loadConfig.
 */
import { readFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { parseWranglerToml, sourceFiles, variablesReadIn } from "../support/docs-check";

const ROOT = resolve(import.meta.dirname, "../..");
const CONFIG = join("src", "config.ts");
const { bindings } = parseWranglerToml(readFileSync(join(ROOT, "wrangler.toml"), "utf8"));

/** The settings (not bindings) a source text reads. */
function settingsRead(source: string): string[] {
  return [...variablesReadIn(source)].filter((name) => !bindings.has(name)).sort();
}

describe("env variables are read only in src/config.ts", () => {
  it("finds no setting read outside config.ts", () => {
    const outside: string[] = [];
    for (const file of sourceFiles(join(ROOT, "src"))) {
      const path = relative(ROOT, file);
      if (path === CONFIG || path.startsWith(`src${sep}bridge${sep}`)) continue;
      const names = settingsRead(readFileSync(file, "utf8"));
      if (names.length) outside.push(`${path}: ${names.join(", ")}`);
    }
    expect(outside, "read these through a function of src/config.ts").toEqual([]);
  });

  it("sees the reads it must refuse, and lets bindings through", () => {
    // The scan that found nothing above must find these, or it proves nothing.
    expect(settingsRead("const secret = env.SIGNING_SECRET || c.env.ADMIN_TOKEN;")).toEqual(["ADMIN_TOKEN", "SIGNING_SECRET"]);
    expect(settingsRead('const v = (env as { BODY_ENCRYPTION_KEYS?: string }).BODY_ENCRYPTION_KEYS; env["DKIM_KEYS"];')).toEqual(["BODY_ENCRYPTION_KEYS", "DKIM_KEYS"]);
    expect(settingsRead("await env.DB.prepare(sql); await env.BODIES.get(key); env.OUTBOX.send(job);")).toEqual([]);
    // config.ts itself reads them all.
    expect(settingsRead(readFileSync(join(ROOT, CONFIG), "utf8"))).toEqual(expect.arrayContaining(["ADMIN_TOKEN", "DKIM_KEYS", "NEXT_HOP_URL", "RELAY_HOSTNAME", "SIGNING_SECRET"]));
  });
});

/** The entry points: the Worker's handlers (src/index.ts) and the Hono app's first middleware (src/http/app.ts). */
const ENTRY_POINTS = [join("src", "index.ts"), join("src", "http", "app.ts")];

/** Calls of loadConfig in a source text (not its declaration, imports or comments). */
function loadConfigCalls(source: string): number {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  return [...code.matchAll(/(?<![\w.])loadConfig\s*\(/g)].filter((m) => !/function\s+$/.test(code.slice(0, m.index))).length;
}

describe("settings are parsed at the entry points and passed down (issue 19)", () => {
  it("finds loadConfig called only in the entry points", () => {
    const outside: string[] = [];
    for (const file of sourceFiles(join(ROOT, "src"))) {
      const path = relative(ROOT, file);
      if (path === CONFIG || ENTRY_POINTS.includes(path)) continue;
      const calls = loadConfigCalls(readFileSync(file, "utf8"));
      if (calls) outside.push(`${path}: ${calls}`);
    }
    expect(outside, "take a RelayConfig parameter (routes: c.var.config()) instead").toEqual([]);
  });

  it("sees the calls it must refuse", () => {
    expect(loadConfigCalls("const config = loadConfig(env);\nfoo(loadConfig (c.env).dohUrl);")).toBe(2);
    expect(loadConfigCalls("export function loadConfig(env: Env): RelayConfig {\n// loadConfig(env) in a comment\nimport { loadConfig } from './config';")).toBe(0);
    for (const entry of ENTRY_POINTS) expect(loadConfigCalls(readFileSync(join(ROOT, entry), "utf8")), entry).toBeGreaterThan(0);
  });
});
