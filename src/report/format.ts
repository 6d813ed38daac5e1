/** Number, rate, duration and time formatting for the reporting page (plain text; escaping happens in html``). */

export function fmtCount(n: number | undefined): string {
  return (n ?? 0).toLocaleString("en-US");
}

/** A rate as a percentage with precision that suits its size (complaint rates live below 0.1%). */
export function fmtRate(r: number | null): string {
  if (r === null) return "—";
  const p = r * 100;
  if (p === 0 || p === 100) return `${p}%`;
  if (p < 1) return `${p.toFixed(2)}%`;
  return `${p.toFixed(1)}%`;
}

export function fmtDuration(ms: number | null): string {
  if (ms === null) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = s / 60;
  if (m < 60) return `${m.toFixed(m < 10 ? 1 : 0)} min`;
  const h = m / 60;
  if (h < 48) return `${h.toFixed(h < 10 ? 1 : 0)} h`;
  return `${(h / 24).toFixed(1)} d`;
}

/** UTC time, minute precision: "2026-11-28 06:12". */
export function fmtTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

export function fmtTimeSeconds(ms: number | string): string {
  const d = typeof ms === "string" ? new Date(ms) : new Date(ms);
  return d.toISOString().slice(0, 19).replace("T", " ");
}

/** "3 min ago", "2 h ago". */
export function fmtAgo(ms: number, now = Date.now()): string {
  return `${fmtDuration(Math.max(0, now - ms))} ago`;
}
