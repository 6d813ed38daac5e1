/**
 * How D1 fails. Cloudflare's D1 documentation ("Debug D1", its list of D1_ERRORs with a recommended action, and
 * "Retry queries") names the failures that mean the database could not be reached or was reset and that are worth
 * retrying; every other D1 error (an SQL error, a constraint, a missing binding) is the caller's and stays one.
 * The HTTP layer answers the first kind with 503 and Retry-After, so a client retries instead of giving up.
 */

/** Messages of transient D1 failures, as the D1 error list words them (matched anywhere in the message). */
const TRANSIENT_D1_MESSAGES: readonly RegExp[] = [
  /Network connection lost/i,
  /storage caused object to be reset/i,
  /reset because its code was updated/i,
  /D1 DB is overloaded/i,
  /exceeded its (memory|CPU time) limit and was reset/i,
  /storage operation exceeded timeout/i,
  /Cannot resolve D1 DB due to transient issue/i,
  /Can't read from request stream because client disconnected/i,
];

/** Causes followed at most (wrappers such as onEveryShard's keep the D1 error as `cause`). */
const MAX_CAUSE_DEPTH = 5;

/** True when `err`, or an error it wraps, is a D1 failure that says the database is unavailable for now. */
export function isD1Unavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && e instanceof Error; depth++, e = e.cause) {
    if (TRANSIENT_D1_MESSAGES.some((re) => re.test(e instanceof Error ? e.message : ""))) return true;
  }
  return false;
}
