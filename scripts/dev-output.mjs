// What `npm start` shows of wrangler's output: the lines a developer acts on (errors, warnings, the Worker's own
// logs, requests) without the start-up tables wrangler prints for every run (`npm start -- --verbose` shows all).

/** @param {string} s */
export function stripAnsi(s) {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, "");
}

/** Lines dropped on their own: wrangler's banner, start-up chatter, and the requests npm start makes itself. */
const DROP_LINE = [
  /^\s*⛅️ wrangler \d/,
  /^\s*─{4,}\s*$/,
  /^Using (secrets|vars|environment variables) defined in \.(dev\.vars|env)/,
  /^⎔ Starting local server/,
  /^⎔ Connection status updated/,
  /^\[wrangler:info\] Ready on /,
  /^Resource location: local\s*$/,
  /^Use --remote if you want to access the remote instance\.?\s*$/,
  // The relay's health check and the local cron's trigger (npm start prints what the cron did itself).
  /^\[wrangler:info\] (GET|HEAD) \/health /,
  /^\[wrangler:info\] GET \/cdn-cgi\/local\/scheduled/,
];

/** Lines dropped only until npm start has printed its ready message: its own set-up calls. */
const DROP_WHILE_STARTING = [/^\[wrangler:info\] POST \/admin\/tenants(\/local\/keys)? /];

/**
 * Blocks dropped from their first line: the bindings table (printed twice), the `Request.cf` warning with its
 * stack trace (no internet, or the fetch turned off), and the "scheduled Workers are not triggered" warning
 * (npm start triggers them; see scripts/local-cron.mjs).
 */
const BLOCKS = [
  { start: /^Your Worker has access to the following bindings:/, inside: (/** @type {string} */ t) => t.trim() !== "", dropEnd: true, maxLines: 200 },
  {
    start: /Unable to fetch the `Request\.cf` object/,
    inside: (/** @type {string} */ t) => /^\s+at\s/.test(t) || /^\s*(\w*Error\b|\[cause\]|cause:)/.test(t) || /^\s*[{}]\s*$/.test(t),
    dropEnd: false,
    maxLines: 40,
  },
  {
    start: /Scheduled Workers are not automatically triggered/,
    inside: (/** @type {string} */ t) => !/^\s*For more details/.test(t),
    dropEnd: true,
    // Should wrangler reword the warning, the block still ends and nothing after it is lost.
    maxLines: 8,
  },
];

/**
 * A stateful filter for one output stream of `wrangler dev`: `keep(line)` says whether to print the line.
 * `state.starting` (shared between the streams) is true until npm start printed its ready message.
 * @param {{ starting: boolean }} state
 */
export function createOutputFilter(state = { starting: false }) {
  /** @type {(typeof BLOCKS)[number] | null} */
  let block = null;
  let blockLines = 0;
  let lastBlank = true;
  /** @param {string} line */
  return function keep(line) {
    const t = stripAnsi(line).replace(/\s+$/, "");
    if (block) {
      const b = block;
      if (b.inside(t) && ++blockLines <= b.maxLines) return false;
      block = null;
      if (b.dropEnd && blockLines <= b.maxLines) return false;
    }
    const opened = BLOCKS.find((b) => b.start.test(t));
    if (opened) {
      block = opened;
      blockLines = 0;
      return false;
    }
    if (DROP_LINE.some((r) => r.test(t))) return false;
    if (state.starting && DROP_WHILE_STARTING.some((r) => r.test(t))) return false;
    // Runs of blank lines (left where blocks were dropped) become one.
    const blank = t.trim() === "";
    if (blank && lastBlank) return false;
    lastBlank = blank;
    return true;
  };
}

/**
 * One line about `wrangler d1 migrations apply`'s output (the table it prints once per migration), or null when
 * the output is not understood (then the caller prints it as it was).
 * @param {string} output
 * @returns {string | null}
 */
export function summariseMigrations(output) {
  const text = stripAnsi(output);
  if (/No migrations to apply/i.test(text)) return "[d1] the local database is up to date";
  // The names in the first table (the ones to apply); the tables after it list every migration with its status.
  const pending = /Migrations to be applied:([\s\S]*?)(About to apply|$)/.exec(text)?.[1] ?? "";
  const names = [...new Set([...pending.matchAll(/│\s*(\d{4}_[\w.-]+\.sql)\s*│/g)].map((m) => m[1]))];
  if (!names.length) return null;
  const list = names.length > 3 ? `${names[0]} … ${names[names.length - 1]}` : names.join(", ");
  return `[d1] applied ${names.length} migration${names.length === 1 ? "" : "s"} to the local database (${list})`;
}
