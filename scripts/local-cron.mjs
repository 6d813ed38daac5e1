// The cron trigger for `npm start`: `wrangler dev` never runs a Worker's scheduled handler by itself, so this
// calls wrangler's local trigger endpoint (Miniflare's /cdn-cgi/local/scheduled, always on under `wrangler dev`
// 4.x) for every cron of wrangler.toml, once at start and then on an interval. The housekeeping that production
// runs every 5 minutes (scheduled sends, rollups, retention, expiry, webhook emission) thereby happens locally too.

/** Wrangler's local trigger for scheduled handlers; `?format=json` answers `{ outcome }` (500 unless "ok"). */
export const LOCAL_SCHEDULED_PATH = "/cdn-cgi/local/scheduled";

/** The interval of the local cron: every minute, so pending work resumes soon after a restart. */
export const LOCAL_CRON_DEFAULT_SECONDS = 60;

/**
 * The cron expressions of wrangler.toml's `[triggers] crons = [...]` (the first `crons` array in the file).
 * @param {string} toml
 * @returns {string[]}
 */
export function readCrons(toml) {
  const m = /^\s*crons\s*=\s*\[([^\]]*)\]/m.exec(toml);
  if (!m) return [];
  return [...m[1].matchAll(/"([^"]*)"|'([^']*)'/g)].map((x) => x[1] ?? x[2]).filter((c) => c.trim() !== "");
}

/**
 * The local cron's interval in milliseconds from LOCAL_CRON_SECONDS (0 turns the loop off).
 * @param {string | undefined} raw
 * @returns {number}
 */
export function localCronIntervalMs(raw) {
  if (raw === undefined || raw.trim() === "") return LOCAL_CRON_DEFAULT_SECONDS * 1000;
  const s = Number(raw);
  if (!Number.isFinite(s) || s < 0) throw new Error(`LOCAL_CRON_SECONDS must be a number of seconds (0 turns the local cron off), got ${JSON.stringify(raw)}`);
  return s * 1000;
}

/**
 * @typedef {{ cron: string, ok: boolean, outcome: string, ms: number }} CronResult
 * @typedef {{ base: string | URL, crons: string[], intervalMs: number, onRun?: (results: CronResult[]) => void, fetchImpl?: typeof fetch }} LocalCronOptions
 */

/**
 * @param {URL} url
 * @param {typeof fetch} fetchImpl
 * @returns {Promise<string>} the handler's outcome ("ok", "exception", ...) or why there was none
 */
async function triggerOnce(url, fetchImpl) {
  try {
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(120_000) });
    const text = await res.text();
    try {
      return String(JSON.parse(text).outcome ?? `HTTP ${res.status}`);
    } catch {
      return `HTTP ${res.status}: ${text.slice(0, 200)}`;
    }
  } catch (e) {
    // fetch() names the network error in its cause ("fetch failed" alone says nothing).
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : "";
    return `unreachable (${e instanceof Error ? e.message : String(e)}${cause})`;
  }
}

/**
 * Triggers the scheduled handler once per cron expression (in order, one at a time).
 * @param {string | URL} base
 * @param {string[]} crons
 * @param {typeof fetch} [fetchImpl]
 * @returns {Promise<CronResult[]>}
 */
export async function triggerScheduled(base, crons, fetchImpl = fetch) {
  const results = [];
  for (const cron of crons) {
    const url = new URL(LOCAL_SCHEDULED_PATH, base);
    url.searchParams.set("cron", cron);
    url.searchParams.set("time", String(Date.now()));
    url.searchParams.set("format", "json");
    const started = Date.now();
    // One retry after a network error: a kept-alive connection the server has just closed fails the first try.
    let outcome = await triggerOnce(url, fetchImpl);
    if (outcome.startsWith("unreachable")) outcome = await triggerOnce(url, fetchImpl);
    results.push({ cron, ok: outcome === "ok", outcome, ms: Date.now() - started });
  }
  return results;
}

/**
 * Runs the scheduled handler now and then every `intervalMs`; a run still going when the next is due makes that
 * one skip, so runs never overlap. `runOnce()` triggers a run at once (and waits for it), `stop()` ends the loop.
 * @param {LocalCronOptions} options
 */
export function startLocalCron({ base, crons, intervalMs, onRun = () => {}, fetchImpl = fetch }) {
  /** @type {Promise<CronResult[]> | null} */
  let running = null;
  let stopped = false;
  const runOnce = () => {
    if (!running) {
      running = triggerScheduled(base, crons, fetchImpl)
        .then((results) => {
          if (!stopped) onRun(results);
          return results;
        })
        .finally(() => {
          running = null;
        });
    }
    return running;
  };
  const timer = intervalMs > 0 && crons.length ? setInterval(() => void runOnce(), intervalMs) : null;
  timer?.unref?.();
  const first = crons.length ? runOnce() : Promise.resolve([]);
  return {
    first,
    runOnce,
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
    },
  };
}
