/**
 * The overview's time-series chart: stacked bars per time step as inline SVG, rendered on the server, readable
 * without JavaScript (each bar has a <title>; the chart has a text summary for screen readers).
 */
import { html } from "hono/html";
import type { SeriesPoint } from "../store/report";
import { fmtCount, fmtTime } from "./format";

export const CHART_SERIES = [
  { type: "delivered", label: "Delivered", className: "s-delivered" },
  { type: "deferred", label: "Deferred", className: "s-deferred" },
  { type: "bounced", label: "Bounced", className: "s-bounced" },
  { type: "complained", label: "Complained", className: "s-complained" },
] as const;

const W = 720;
const H = 220;
const PAD = { left: 44, right: 8, top: 10, bottom: 26 };

/** A "nice" axis maximum at or above v with four equal integer steps: 4 × (1, 2 or 5 times a power of ten). */
export function niceMax(v: number): number {
  const raw = Math.max(1, v / 4);
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((x) => x >= raw) ?? 10 * p;
  return Math.ceil(step) * 4;
}

export function seriesChart(points: SeriesPoint[], caption: string) {
  const totals = points.map((p) => CHART_SERIES.reduce((s, x) => s + (p.counts[x.type] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, points.length);
  const barW = Math.max(2, step * 0.72);
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = Math.round(max * f);
    return html`<line class="grid" x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"></line
      ><text class="axis" x="${PAD.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${fmtCount(v)}</text>`;
  });
  const labelEvery = Math.ceil(points.length / 6);
  const bars = points.map((p, i) => {
    const x = PAD.left + i * step + (step - barW) / 2;
    let acc = 0;
    const parts = CHART_SERIES.map((s) => {
      const n = p.counts[s.type] ?? 0;
      if (!n) return "";
      const top = y(acc + n);
      const h = y(acc) - top;
      acc += n;
      return html`<rect class="${s.className}" x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${barW.toFixed(1)}" height="${Math.max(h, 0.5).toFixed(1)}"></rect>`;
    });
    const tip = `${fmtTime(p.at)} UTC — ${CHART_SERIES.map((s) => `${s.label.toLowerCase()} ${fmtCount(p.counts[s.type])}`).join(", ")}`;
    const label =
      i % labelEvery === 0
        ? html`<text class="axis" x="${(x + barW / 2).toFixed(1)}" y="${H - 8}" text-anchor="middle">${fmtTime(p.at).slice(points.length > 24 ? 5 : 11, points.length > 24 ? 10 : 16)}</text>`
        : "";
    return html`<g><title>${tip}</title><rect class="hit" x="${(PAD.left + i * step).toFixed(1)}" y="${PAD.top}" width="${step.toFixed(1)}" height="${plotH}"></rect>${parts}</g>${label}`;
  });
  const sum = (t: string) => points.reduce((s, p) => s + (p.counts[t] ?? 0), 0);
  const summary = `${caption}: ${CHART_SERIES.map((s) => `${fmtCount(sum(s.type))} ${s.label.toLowerCase()}`).join(", ")}, in ${points.length} steps.`;
  return html`<figure class="chart">
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="chart-title chart-desc">
      <title id="chart-title">${caption}</title>
      <desc id="chart-desc">${summary}</desc>
      ${grid}${bars}
    </svg>
    <figcaption>
      <ul class="legend">
        ${CHART_SERIES.map((s) => html`<li><span class="swatch ${s.className}" aria-hidden="true"></span>${s.label} <strong>${fmtCount(sum(s.type))}</strong></li>`)}
      </ul>
    </figcaption>
  </figure>`;
}
