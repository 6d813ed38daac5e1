/**
 * Layers point one way (issue 19): a module imports only from its own folder or from a layer below its own. The
 * layers, bottom first, are the table in docs/architecture.md ("Layers"); a file not placed in a layer fails too,
 * so a new folder is placed on purpose.
 */
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { importGraph, sourceFiles, type ImportEdge } from "../support/imports";

interface Layer {
  name: string;
  /** Folders (`mime/`) or files (`config.ts`, `gate/policy.ts`) under src/; the longest match places a file. */
  members: string[];
  /** Whether different folders of this layer may import each other (only the bottom layer of pure modules). */
  peers?: boolean;
}

/** Bottom first. Keep in step with the table in docs/architecture.md. */
export const LAYERS: Layer[] = [
  {
    name: "pure",
    peers: true,
    members: [
      "mime/",
      "config.ts",
      "metering.ts",
      "queue/job.ts",
      "gate/policy.ts",
      "delivery/private-networks.ts",
      "reputation/dns-lists.ts",
      "reputation/dmarc-report.ts",
      "reputation/tls-report.ts",
      "reputation/decompress.ts",
      "reputation/xml-lite.ts",
      "inbound/reason.ts",
      "inbound/documented-phrases.ts",
    ],
  },
  { name: "store", members: ["store/"] },
  { name: "tracking", members: ["tracking/"] },
  { name: "transport", members: ["smtp/", "gate/"] },
  { name: "queue", members: ["queue/"] },
  { name: "send", members: ["delivery/", "webhooks/"] },
  { name: "accept", members: ["accept/"] },
  { name: "reputation", members: ["reputation/"] },
  { name: "handlers", members: ["inbound/", "report/"] },
  { name: "http", members: ["http/"] },
  { name: "entry", members: ["index.ts", "bridge/"] },
];

const SRC = resolve(import.meta.dirname, "../../src");

/** The layer index and member that place a file (longest member first), or null. */
function placeOf(file: string, layers: Layer[]): { layer: number; member: string } | null {
  let best: { layer: number; member: string } | null = null;
  layers.forEach((l, layer) => {
    for (const m of l.members) {
      const hit = m.endsWith("/") ? file.startsWith(m) : file === m;
      if (hit && (!best || m.length > best.member.length)) best = { layer, member: m };
    }
  });
  return best;
}

/** The top folder of a file under src/ (`accept`), or the file itself at the top (`config.ts`). */
function folderOf(file: string): string {
  return file.includes("/") ? file.slice(0, file.indexOf("/")) : file;
}

/** Each import that reaches up a layer, or across to another folder of a layer whose folders are not peers. */
export function layeringViolations(edges: ImportEdge[], layers: Layer[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    const a = placeOf(e.from, layers);
    const b = placeOf(e.to, layers);
    if (!a || !b) continue;
    const sameFolder = folderOf(e.from) === folderOf(e.to);
    if (b.layer < a.layer || (b.layer === a.layer && (sameFolder || layers[a.layer]!.peers))) continue;
    const how = b.layer > a.layer ? `up to layer "${layers[b.layer]!.name}"` : `across layer "${layers[a.layer]!.name}"`;
    out.push(`src/${e.from}:${e.line} (layer "${layers[a.layer]!.name}") imports src/${e.to}, ${how}`);
  }
  return out;
}

describe("layering of src/", () => {
  const edges = importGraph(SRC);

  it("reads the imports it checks", () => {
    // A parser that found nothing would pass every rule: these imports exist and must be seen.
    expect(edges).toContainEqual(expect.objectContaining({ from: "index.ts", to: "http/app.ts" }));
    expect(edges).toContainEqual(expect.objectContaining({ from: "accept/send.ts", to: "queue/spool.ts" }));
    expect(edges.length).toBeGreaterThan(300);
  });

  it("places every source file in a layer", () => {
    const unplaced = sourceFiles(SRC).filter((f) => !placeOf(f, LAYERS));
    expect(unplaced, "add these files' folder to LAYERS and to the table in docs/architecture.md").toEqual([]);
  });

  it("has no import from a higher layer or from a peer folder", () => {
    expect(layeringViolations(edges, LAYERS)).toEqual([]);
  });

  it("reports an upward import, a peer import and a pure module that imports its impure neighbour, and nothing else", () => {
    const e = (from: string, to: string): ImportEdge => ({ from, to, line: 1 });
    const found = layeringViolations(
      [
        e("accept/raw.ts", "http/errors.ts"),
        e("inbound/housekeeping.ts", "report/housekeeping.ts"),
        e("gate/policy.ts", "gate/domain-gate.ts"),
        e("tracking/record.ts", "webhooks/emit.ts"),
        e("http/app.ts", "accept/send.ts"),
        e("mime/dkim.ts", "config.ts"),
        e("delivery/lanes.ts", "delivery/work.ts"),
      ],
      LAYERS,
    );
    expect(found).toEqual([
      'src/accept/raw.ts:1 (layer "accept") imports src/http/errors.ts, up to layer "http"',
      'src/inbound/housekeeping.ts:1 (layer "handlers") imports src/report/housekeeping.ts, across layer "handlers"',
      'src/gate/policy.ts:1 (layer "pure") imports src/gate/domain-gate.ts, up to layer "transport"',
      'src/tracking/record.ts:1 (layer "tracking") imports src/webhooks/emit.ts, up to layer "send"',
    ]);
  });
});
