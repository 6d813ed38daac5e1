// The ledger shards (issue 17) a local or deployed relay uses: the LEDGER_SHARDS var of wrangler.toml (binding
// names, comma-separated; default "DB"), with DB first and always included, since it holds the control plane.
// npm start and `npm run create-key` migrate each of them: the same migrations on every database.
import { readFileSync } from "node:fs";

/** Binding names from wrangler.toml's [vars] LEDGER_SHARDS (or the given text of it), DB first. */
export function ledgerShardBindings(toml = readFileSync(new URL("../wrangler.toml", import.meta.url), "utf8")) {
  const m = /^LEDGER_SHARDS\s*=\s*"([^"]*)"/m.exec(toml);
  const names = (m?.[1] ?? "DB").split(",").map((s) => s.trim()).filter(Boolean);
  return [...new Set(["DB", ...names])];
}
