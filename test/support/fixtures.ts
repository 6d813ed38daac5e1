/** Where the shared labelled fixtures are: BOUNCE_FIXTURES, ../shared beside the repo, or the workspace path. */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The bounce corpus directory, or undefined (with a printed reason) when it is not on this machine. */
export function bounceFixturesDir(): string | undefined {
  const dir = [process.env["BOUNCE_FIXTURES"] ?? "", path.resolve(repoRoot, "../shared/fixtures/bounces"), "/work/shared/fixtures/bounces"].find(
    (d) => d !== "" && existsSync(path.join(d, "labels.json")),
  );
  if (dir === undefined) console.warn("bounce corpus not found (set BOUNCE_FIXTURES to shared/fixtures/bounces): corpus tests skipped");
  return dir;
}
