/** Identifier generation: sortable, lowercase [0-9a-z] ids that fit in VERP return paths and URLs. */

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

/** A time-ordered id: 9 base36 chars of milliseconds then 12 random base36 chars (≈62 bits). */
export function newId(now = Date.now()): string {
  const time = now.toString(36).padStart(9, "0");
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  let rand = "";
  for (const b of bytes) rand += ALPHABET[b % 36];
  return time + rand;
}

/** The smallest id `newId` can make at `ms`: ids at or above it were made at or after that time. */
export function idFloor(ms: number): string {
  return Math.max(0, Math.floor(ms)).toString(36).padStart(9, "0");
}
