/**
 * Checks that keep the documentation honest: relative links and #anchors that resolve (GitHub-style heading
 * slugs), and the configuration variables the code reads compared with the tables in docs/configuration.md.
 * Plain Node, no Markdown library: the rules below are the subset of GitHub's rendering the docs use.
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/** Lines outside fenced code blocks (``` or ~~~), with their 1-based line numbers. */
export function proseLines(markdown: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | null = null;
  markdown.split("\n").forEach((text, i) => {
    const m = /^\s{0,3}(`{3,}|~{3,})/.exec(text);
    if (m) {
      const marker = m[1]!;
      if (fence === null) fence = marker;
      else if (marker[0] === fence[0] && marker.length >= fence.length) fence = null;
      return;
    }
    if (fence === null) out.push({ line: i + 1, text });
  });
  return out;
}

/** Replaces inline code spans by their text, so `[x](y)` inside code is not a link but [`x`](y) still is. */
function withoutCodeSpans(text: string, keepText: boolean): string {
  return text.replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (_all, _ticks: string, body: string) => (keepText ? body.trim() : "code"));
}

/**
 * GitHub's anchor for a heading (the algorithm of github-slugger): the rendered text lower-cased, everything but
 * letters, marks, digits, connector punctuation (`_`), hyphens and spaces removed, each space made a hyphen.
 */
export function githubSlug(heading: string): string {
  const rendered = withoutCodeSpans(heading, true)
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: their text
    .replace(/<[^>]+>/g, "") // inline HTML tags
    .replace(/(\*{1,3})(\S[\s\S]*?)\1/g, "$2"); // *emphasis*, **strong**
  return rendered
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
    .replace(/ /g, "-");
}

/** Every heading's anchor in a Markdown document, duplicates numbered as GitHub does (`x`, `x-1`, `x-2`). */
export function headingAnchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text } of proseLines(markdown)) {
    const m = /^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(text);
    if (!m) continue;
    const base = githubSlug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Link targets in a Markdown document: inline links and images, reference definitions, HTML href/src. */
export function markdownLinks(markdown: string): { line: number; target: string }[] {
  const links: { line: number; target: string }[] = [];
  for (const { line, text } of proseLines(markdown)) {
    const prose = withoutCodeSpans(text, false);
    for (const m of prose.matchAll(/!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ line, target: m[1]! });
    const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(prose);
    if (def) links.push({ line, target: def[1]! });
    for (const m of prose.matchAll(/\b(?:href|src)\s*=\s*"([^"]+)"/g)) links.push({ line, target: m[1]! });
  }
  return links;
}

/** Markdown files to check: README.md and docs/ (without docs/pending/, notes waiting to be folded into pages). */
export function documentationFiles(root: string): string[] {
  const files = [join(root, "README.md")];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (relative(root, path) !== join("docs", "pending")) walk(path);
      } else if (name.endsWith(".md")) files.push(path);
    }
  };
  walk(join(root, "docs"));
  return files;
}

/** Every relative link in `files` that does not resolve, as "file:line: target (why)". */
export function brokenLinks(root: string, files: string[]): string[] {
  const anchorCache = new Map<string, Set<string>>();
  const anchorsOf = (path: string) => {
    let a = anchorCache.get(path);
    if (!a) anchorCache.set(path, (a = headingAnchors(readFileSync(path, "utf8"))));
    return a;
  };
  const problems: string[] = [];
  for (const file of files) {
    for (const { line, target } of markdownLinks(readFileSync(file, "utf8"))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) continue; // https:, mailto:, ...
      const where = `${relative(root, file)}:${line}: ${target}`;
      const hash = target.indexOf("#");
      const pathPart = decodeURIComponent(hash >= 0 ? target.slice(0, hash) : target);
      const anchor = hash >= 0 ? decodeURIComponent(target.slice(hash + 1)) : null;
      const resolved = pathPart === "" ? file : resolve(dirname(file), pathPart);
      if (relative(root, resolved).startsWith("..")) {
        problems.push(`${where} (points outside the repository)`);
        continue;
      }
      if (!existsSync(resolved)) {
        problems.push(`${where} (no such file)`);
        continue;
      }
      if (anchor === null || anchor === "") continue;
      if (resolved.endsWith(".md")) {
        if (!anchorsOf(resolved).has(anchor)) problems.push(`${where} (no heading with anchor #${anchor})`);
      } else if (!/^L\d+(?:-L\d+)?$/.test(anchor)) {
        problems.push(`${where} (only #L<line> anchors work in a non-Markdown file)`);
      }
    }
  }
  return problems;
}

// ---- configuration variables ----

const NAME = "[A-Z][A-Z0-9_]*";
/** An expression that holds the Worker's env or the bridge's environment: env, c.env, this.env, process.env, vars. */
const HOLDER = String.raw`\b\w*(?:[eE]nv|[vV]ars)`;

/** Names of settings a source file reads, found by the ways this codebase reads them. */
export function variablesReadIn(source: string): Set<string> {
  const names = new Set<string>();
  const patterns = [
    new RegExp(String.raw`${HOLDER}\??\.(${NAME})\b`, "g"), // env.NAME, c.env?.NAME
    new RegExp(String.raw`\(\s*${HOLDER}\s+as\s+[^()]*\)\??\.(${NAME})\b`, "g"), // (env as { NAME?: string }).NAME
    new RegExp(String.raw`${HOLDER}\??\.?\[\s*["'\`](${NAME})["'\`]\s*\]`, "g"), // env["NAME"]
    new RegExp(String.raw`\benv:\s*["'](${NAME})["']`, "g"), // { flag: ..., env: "NAME" } (the bridge's option table)
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) names.add(m[1]!);
  // const { A, B: b } = env
  for (const m of source.matchAll(new RegExp(String.raw`\{([^{}]*)\}\s*=\s*${HOLDER}\b`, "g"))) {
    for (const part of m[1]!.split(",")) {
      const key = /^\s*([A-Z][A-Z0-9_]*)\s*(?::|=|$)/.exec(part);
      if (key) names.add(key[1]!);
    }
  }
  // Families of secrets looked up by prefix, e.g. ROUTE_SECRET_PREFIX = "SMTP_" for ${SMTP_...} in route URLs.
  for (const m of source.matchAll(/\b\w*_PREFIX\s*=\s*["']([A-Z][A-Z0-9]*_)["']/g)) {
    if (/SECRET|ENV|VAR/.test(m[0])) names.add(`${m[1]}*`);
  }
  return names;
}

/** Settings declared in src/env.d.ts (secrets and vars wrangler types cannot see): `NAME?: string;` members. */
export function declaredSecrets(envDts: string): Set<string> {
  return new Set([...envDts.matchAll(/^\s+([A-Z][A-Z0-9_]*)\??\s*:/gm)].map((m) => m[1]!));
}

/** wrangler.toml: the [vars] table (name → value) and every binding name. */
export function parseWranglerToml(toml: string): { vars: Map<string, string>; bindings: Set<string> } {
  const vars = new Map<string, string>();
  const bindings = new Set<string>();
  let section = "";
  for (const raw of toml.split("\n")) {
    const line = raw.replace(/^\s+/, "");
    const header = /^\[\[?([^\]]+)\]\]?/.exec(line);
    if (header) {
      section = header[1]!.trim();
      continue;
    }
    const kv = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(line);
    if (!kv) continue;
    if (section === "vars") vars.set(kv[1]!, kv[2]!.replace(/\\(.)/g, "$1"));
    else if ((kv[1] === "binding" || (kv[1] === "name" && section !== "")) && /^[A-Z][A-Z0-9_]*$/.test(kv[2]!)) bindings.add(kv[2]!);
  }
  return { vars, bindings };
}

/** Source files under a directory (.ts, .js, .mjs), generated type declarations left out. */
export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(?:ts|js|mjs)$/.test(name) && name !== "worker-configuration.d.ts") out.push(path);
  }
  return out;
}

/** The rows of the Markdown tables under one `##` heading: first-column names (one per row) and the cells. */
export function tableUnderHeading(markdown: string, heading: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  let inSection = false;
  for (const { text } of proseLines(markdown)) {
    const h = /^(#{1,6})\s+(.*?)\s*$/.exec(text);
    if (h) {
      if (inSection && h[1]!.length <= 2) break;
      if (h[1]!.length === 2) inSection = h[2] === heading;
      continue;
    }
    if (!inSection || !/^\s*\|/.test(text) || /^\s*\|\s*:?-{3,}/.test(text)) continue;
    const cells = text.trim().replace(/^\||\|$/g, "").split(/(?<!\\)\|/).map((c) => c.trim());
    const names = [...cells[0]!.matchAll(/`([A-Z][A-Z0-9_]*\*?)`/g)].map((m) => m[1]!);
    if (names.length === 0) continue; // the header row
    if (names.length > 1) throw new Error(`${heading}: one variable per row, got ${names.join(", ")}`);
    rows.set(names[0]!, cells);
  }
  return rows;
}
