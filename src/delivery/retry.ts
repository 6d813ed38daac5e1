/**
 * Retry policy for temporary failures: the configured schedule with jitter, a server's own "try again in N
 * minutes" honoured, everything capped by the message's maximum age. Pure.
 */

/** Jitter spreads retries of a burst of deferrals so they do not all come back in the same second. */
export const RETRY_JITTER_RATIO = 0.1;

/** Delay in seconds before the retry that follows attempt number `attempt` (1-based); the last entry repeats. */
export function retryDelaySeconds(schedule: number[], attempt: number, random: () => number = Math.random): number {
  const base = schedule[Math.min(Math.max(attempt, 1), schedule.length) - 1] ?? 60;
  const jittered = base * (1 - RETRY_JITTER_RATIO + 2 * RETRY_JITTER_RATIO * random());
  return Math.max(0, Math.round(jittered));
}

const UNITS: Record<string, number> = { s: 1, sec: 1, secs: 1, second: 1, seconds: 1, m: 60, min: 60, mins: 60, minute: 60, minutes: 60, h: 3600, hour: 3600, hours: 3600 };

/** Longest delay we take from a reply's text; a server naming days is treated as "much later". */
const MAX_HINT_SECONDS = 6 * 3600;

/**
 * The delay a reply asks for, in seconds: "try again in 5 minutes", "retry in 30s", "try again later in 2 min",
 * "please try again after 120 seconds". Undefined when the text names none.
 */
export function retryHintSeconds(text: string | undefined | null): number | undefined {
  if (!text) return undefined;
  const m = /\b(?:try|retry)\b[^.\n]{0,30}?\b(?:in|after)\s+(\d{1,6})\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|h)\b/i.exec(text);
  if (!m) return undefined;
  const seconds = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  return Math.min(Math.max(seconds, 1), MAX_HINT_SECONDS);
}

/** A throttling reply: 421 (service not available, closing) or any 4.7.x (security/policy "try later"). */
export function isThrottleReply(code: number | undefined, enhanced: string | undefined): boolean {
  return code === 421 || (enhanced !== undefined && enhanced.startsWith("4.7."));
}

/**
 * Hard bounces that say the address itself is bad (RFC 3463 X.1.x address status, or a plain 550/551/553 to
 * RCPT without an enhanced code): these feed the suppression list. Policy blocks (5.7.x) and content or size
 * problems (5.6.x, 5.3.4) do not.
 */
export function isHardAddressBounce(code: number | undefined, enhanced: string | undefined, command: string | undefined): boolean {
  if (enhanced) return enhanced.startsWith("5.1.");
  return command === "RCPT" && (code === 550 || code === 551 || code === 553);
}
