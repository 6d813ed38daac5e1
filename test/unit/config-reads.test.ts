/**
 * Configuration is read in one place (issue 19): no module of the Worker but src/config.ts reads an env variable.
 * Bindings (DB, BODIES, the queues, the Durable Objects, EMAIL) are not settings and may be read anywhere. The
 * bridge is a separate Node program with its own option table (src/bridge/options.js) and is left out.
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
