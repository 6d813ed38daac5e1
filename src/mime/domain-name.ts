/**
 * The one domain-name check: two or more LDH labels (RFC 1035 section 2.3.1; A-labels of RFC 5890 are LDH too),
 * each 1-63 characters without a leading or trailing hyphen, case-insensitive. Callers choose the overall length
 * (253 for a name, less where a list zone is appended) and whether the top-level label must be letters only.
 */

export interface DomainNameRules {
  /** Longest accepted name; default 253 (RFC 1035 names are at most 255 octets on the wire). */
  maxLength?: number;
  /** Top-level label of letters only (a public TLD), instead of any LDH label of 2-63 characters. */
  letterTld?: boolean;
}

const LABEL = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";
const patterns = new Map<string, RegExp>();

/** True when `name` is a domain name under `rules`. */
export function isDomainName(name: string, rules: DomainNameRules = {}): boolean {
  const maxLength = rules.maxLength ?? 253;
  const tld = rules.letterTld ? "[a-z]{2,63}" : "[a-z0-9-]{2,63}";
  const key = `${maxLength}|${tld}`;
  let re = patterns.get(key);
  if (!re) patterns.set(key, (re = new RegExp(`^(?=.{1,${maxLength}}$)(${LABEL}\\.)+${tld}$`, "i")));
  return re.test(name);
}
