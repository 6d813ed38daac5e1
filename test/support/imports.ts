/**
 * The import graph of src/, read as text (no TypeScript compiler): every static `import`/`export … from`, side-effect
 * import and `import("…")` with a literal relative specifier, resolved to a file under src/. Used by the layering test.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

export interface ImportEdge {
  /** Importing file, relative to src/ (`accept/send.ts`). */
  from: string;
  /** Imported file, relative to src/. */
  to: string;
  /** 1-based line of the import. */
  line: number;
}

/** Source files under `dir` (.ts, .mts, .js, .mjs), declaration files excepted, relative to `dir`. */
export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(m?ts|m?js)$/.test(name) && !name.endsWith(".d.ts")) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

// `import x from "…"`, `import { a,\n b } from "…"`, `export { x } from "…"`, `export * from "…"`, `import "…"`.
const STATIC_IMPORT = /^[ \t]*(?:import|export)\b(?:[^;"'`]|\n)*?\bfrom\s*["']([^"']+)["']|^[ \t]*import\s*["']([^"']+)["']/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The relative specifiers a source text imports, with their lines. */
export function importSpecifiers(text: string): { spec: string; line: number }[] {
  const out: { spec: string; line: number }[] = [];
  const lineAt = (index: number) => text.slice(0, index).split("\n").length;
  for (const m of text.matchAll(STATIC_IMPORT)) out.push({ spec: (m[1] ?? m[2])!, line: lineAt(m.index! + m[0].length) });
  for (const m of text.matchAll(DYNAMIC_IMPORT)) out.push({ spec: m[1]!, line: lineAt(m.index!) });
  return out.filter((s) => s.spec.startsWith("."));
}

/** The file a relative specifier names (with or without its extension, or a folder's index), relative to `root`. */
function resolveSpecifier(root: string, fromFile: string, spec: string): string | null {
  const base = resolve(root, dirname(fromFile), spec);
  const candidates = [base, ...[".ts", ".mts", ".js", ".mjs", ".d.ts"].map((e) => base + e), base.replace(/\.js$/, ".ts"), join(base, "index.ts")];
  for (const c of candidates) if (existsSync(c) && statSync(c).isFile()) return relative(root, c);
  return null;
}

/** Every import between files of `root`; throws on a relative import that names no file (the graph would be wrong). */
export function importGraph(root: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const file of sourceFiles(root)) {
    for (const { spec, line } of importSpecifiers(readFileSync(join(root, file), "utf8"))) {
      const to = resolveSpecifier(root, file, spec);
      if (to === null) throw new Error(`${file}:${line}: cannot resolve ${spec}`);
      // An import that leaves the tree (src/ importing a test helper, say) stays out of the graph.
      if (to.startsWith("..")) continue;
      edges.push({ from: file, to, line });
    }
  }
  return edges;
}
