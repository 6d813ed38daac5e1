/**
 * Vitest global setup of the bridge and browser projects: applies the D1 migrations once, with
 * `wrangler d1 migrations apply DB --local`, to a template state directory. Every relay those tests start
 * (test/bridge/support/relay.ts) begins on a copy of it instead of running the wrangler CLI again (a Miniflare
 * start of its own, several seconds of CPU per relay).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { applyMigrationsWithWrangler } from "../bridge/support/relay";

declare module "vitest" {
  export interface ProvidedContext {
    /** A local state directory with the D1 migrations applied, for relays to copy. */
    relayStateTemplate: string;
  }
}

export default function setup(project: TestProject) {
  const template = mkdtempSync(join(tmpdir(), "edge-relay-state-template-"));
  applyMigrationsWithWrangler(template);
  project.provide("relayStateTemplate", template);
  return () => rmSync(template, { recursive: true, force: true });
}
