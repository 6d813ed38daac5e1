/** Where the labelled bounce corpus is: test/fixtures/bounces in this repository, nowhere else. */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The bounce corpus directory (test/fixtures/bounces). */
export const BOUNCE_FIXTURES_DIR = path.join(repoRoot, "test/fixtures/bounces");

/** The bounce corpus directory; throws when it or its labels are missing, so the corpus tests fail instead of skipping. */
export function bounceFixturesDir(): string {
  if (!existsSync(path.join(BOUNCE_FIXTURES_DIR, "labels.json"))) {
    throw new Error(`the labelled bounce corpus is missing: expected ${BOUNCE_FIXTURES_DIR}/labels.json (see test/fixtures/bounces/README.md)`);
  }
  return BOUNCE_FIXTURES_DIR;
}
