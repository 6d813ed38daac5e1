// Issue 19: SQL lives in src/store/ only. Every other module calls a named store function, so a query has one
// home and the places that touch a table are the imports of one module. The one exception is src/metering.ts,
// the counting wrapper around D1 for the benchmark: it forwards `prepare`/`batch` without writing any SQL itself
// (it only reads a statement's table name out of the text it was given).
import { readFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { sourceFiles } from "../support/docs-check";

const ROOT = resolve(__dirname, "../..");
const EXEMPT = new Set([`src${sep}metering.ts`]);

/** A call that runs SQL text: D1's `prepare(`/`exec(` or a Durable Object's `sql.exec(`. */
const SQL_CALL = /\.(?:prepare|exec)\s*\(\s*[`"']/;
/** A string literal that reads as a statement. */
const SQL_TEXT = /[`"']\s*(?:SELECT\s+[\w*(]|INSERT\s+(?:OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|CREATE\s+(?:TABLE|INDEX)\s)/i;

/** Lines outside src/store/ that hold SQL, as "path:line: text". */
export function sqlOutsideStore(files: readonly string[], read: (f: string) => string): string[] {
  const found: string[] = [];
  for (const file of files) {
    const rel = relative(ROOT, file);
    if (rel.startsWith(`src${sep}store${sep}`) || EXEMPT.has(rel)) continue;
    read(file)
      .split("\n")
      .forEach((line, i) => {
        if (SQL_CALL.test(line) || SQL_TEXT.test(line) || /\.prepare\s*\(\s*$/.test(line)) found.push(`${rel}:${i + 1}: ${line.trim()}`);
      });
  }
  return found;
}

describe("SQL only in src/store/", () => {
  it("no module outside src/store/ (but the metering wrapper) prepares or holds SQL", () => {
    expect(sqlOutsideStore(sourceFiles(join(ROOT, "src")), (f) => readFileSync(f, "utf8"))).toEqual([]);
  });

  it("the check catches a query outside store/ in each of its forms", () => {
    const samples: Record<string, string> = {
      [join(ROOT, "src/http/a.ts")]: 'await c.env.DB.prepare("SELECT 1 AS ok FROM tenants WHERE id = ?").bind(id).first();',
      [join(ROOT, "src/http/b.ts")]: "const r = await db\n  .prepare(\n    `UPDATE messages SET open = 0`,\n  )",
      [join(ROOT, "src/gate/c.ts")]: 'this.ctx.storage.sql.exec("DELETE FROM outcome_journal WHERE k = ?", k);',
      [join(ROOT, "src/store/d.ts")]: 'db.prepare("SELECT 1")',
      [join(ROOT, "src/metering.ts")]: "if (prop === \"prepare\") return (query: string) => meterStatement(target.prepare(query), path, query);",
      [join(ROOT, "src/mime/e.ts")]: "const m = /^From:(.*)$/im.exec(head); // a regular expression, not SQL",
    };
    const found = sqlOutsideStore(Object.keys(samples), (f) => samples[f]!);
    expect(found.map((f) => f.split(":")[0])).toEqual([`src${sep}http${sep}a.ts`, `src${sep}http${sep}b.ts`, `src${sep}http${sep}b.ts`, `src${sep}gate${sep}c.ts`]);
  });
});
