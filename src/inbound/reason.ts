/**
 * Classifies one delivery failure into a reason of the Sisimai vocabulary (userunknown, mailboxfull,
 * hostunknown, filtered, rejected, blocked, expired, spamdetected, ...) and decides hard/soft.
 *
 * Inputs are what a bounce carries: the enhanced status code (RFC 3463), the SMTP reply code, the
 * SMTP command that failed, the DSN Action and the diagnostic text. Documented provider and MTA messages
 * (documented-phrases.ts) come first; then the phrase tables below (partly learned from the fixture corpus,
 * so the fixture test fits them per fold), the status code's meaning where it is specific, and its class
 * (X.3 system, X.4 network, X.6 content, X.7 security) where nothing else says more.
 * Pure: no Workers imports.
 */

import { documentedReason } from "./documented-phrases";

export type BounceReason =
  | "authfailure"
  | "badreputation"
  | "blocked"
  | "contenterror"
  | "delivered"
  | "exceedlimit"
  | "expired"
  | "failedstarttls"
  | "feedback"
  | "filtered"
  | "hasmoved"
  | "hostunknown"
  | "mailboxfull"
  | "mailererror"
  | "mesgtoobig"
  | "networkerror"
  | "norelaying"
  | "notaccept"
  | "notcompliantrfc"
  | "onhold"
  | "policyviolation"
  | "rejected"
  | "requireptr"
  | "securityerror"
  | "spamdetected"
  | "speeding"
  | "suppressed"
  | "suspend"
  | "syntaxerror"
  | "systemerror"
  | "systemfull"
  | "toomanyconn"
  | "undefined"
  | "userunknown"
  | "vacation"
  | "virusdetected";

export interface FailureFacts {
  /** Enhanced status code, e.g. "5.1.1" (may be empty). */
  status: string;
  /** SMTP reply code, e.g. "550" (may be empty). */
  replyCode: string;
  /** Diagnostic / remote reply text. */
  diagnostic: string;
  /** SMTP command that failed: CONN, EHLO, HELO, MAIL, RCPT, DATA, STARTTLS (may be empty). */
  command: string;
  /** DSN Action field (failed, delayed, delivered, ...). */
  action: string;
  /** Diagnostic-Code type ("smtp", "x-unix", ...) when known. */
  diagnosticType: string;
  /** A reason an MTA-specific format already decided (e.g. an Exim retry timeout). */
  presetReason?: BounceReason | undefined;
  /** Which phrase-table entries may be used (all when absent); see `PhraseFilter`. */
  phraseEnabled?: PhraseFilter | undefined;
}

/**
 * Says whether entry `index` of the phrase table for `reason` may be used. Production uses every phrase; the
 * fixture test's cross-validation enables, per fold, only the phrases its training part supports (a phrase
 * written from one fixture file cannot help classify that same file when it is held out).
 */
export type PhraseFilter = (reason: BounceReason, index: number) => boolean;

/** Meaning of specific enhanced status codes (RFC 3463 and its registry). */
const STATUS_REASON: Record<string, BounceReason> = {
  "4.1.6": "hasmoved",
  "4.1.7": "rejected",
  "4.1.8": "rejected",
  "4.1.9": "systemerror",
  "4.2.1": "blocked",
  "4.2.2": "mailboxfull",
  "4.2.3": "exceedlimit",
  "4.2.4": "filtered",
  "4.3.1": "systemfull",
  "4.3.2": "notaccept",
  "4.3.3": "systemerror",
  "4.3.5": "systemerror",
  "4.4.1": "expired",
  "4.4.2": "networkerror",
  "4.4.3": "systemerror",
  "4.4.4": "networkerror",
  "4.4.5": "systemfull",
  "4.4.6": "networkerror",
  "4.4.7": "expired",
  "4.4.8": "networkerror",
  "4.5.3": "systemerror",
  "4.5.5": "systemerror",
  "4.6.0": "contenterror",
  "4.6.2": "contenterror",
  "4.6.5": "contenterror",
  "4.7.1": "blocked",
  "4.7.2": "blocked",
  "4.7.5": "securityerror",
  "4.7.6": "securityerror",
  "4.7.7": "securityerror",
  "4.7.12": "securityerror",
  "4.7.15": "securityerror",
  "4.7.16": "mesgtoobig",
  "4.7.24": "authfailure",
  "4.7.25": "requireptr",
  "4.7.26": "authfailure",
  "5.1.0": "userunknown",
  "5.1.1": "userunknown",
  "5.1.2": "hostunknown",
  "5.1.3": "userunknown",
  "5.1.4": "filtered",
  "5.1.6": "hasmoved",
  "5.1.7": "rejected",
  "5.1.8": "rejected",
  "5.1.9": "systemerror",
  "5.1.10": "notaccept",
  "5.2.0": "filtered",
  "5.2.1": "filtered",
  "5.2.2": "mailboxfull",
  "5.2.3": "exceedlimit",
  "5.2.4": "filtered",
  "5.3.0": "systemerror",
  "5.3.1": "systemfull",
  "5.3.2": "notaccept",
  "5.3.3": "systemerror",
  "5.3.4": "mesgtoobig",
  "5.3.5": "systemerror",
  "5.4.0": "networkerror",
  "5.4.3": "systemerror",
  "5.4.4": "hostunknown",
  "5.5.2": "syntaxerror",
  "5.5.3": "toomanyconn",
  "5.5.4": "systemerror",
  "5.5.5": "systemerror",
  "5.5.6": "syntaxerror",
  "5.6.0": "contenterror",
  "5.6.1": "contenterror",
  "5.6.2": "contenterror",
  "5.6.3": "contenterror",
  "5.6.5": "contenterror",
  "5.6.6": "contenterror",
  "5.6.7": "contenterror",
  "5.6.8": "contenterror",
  "5.6.9": "contenterror",
  "5.7.0": "securityerror",
  "5.7.1": "securityerror",
  "5.7.2": "securityerror",
  "5.7.3": "securityerror",
  "5.7.4": "securityerror",
  "5.7.5": "securityerror",
  "5.7.6": "securityerror",
  "5.7.7": "securityerror",
  "5.7.8": "securityerror",
  "5.7.9": "securityerror",
  "5.7.10": "securityerror",
  "5.7.11": "securityerror",
  "5.7.13": "suspend",
  "5.7.14": "securityerror",
  "5.7.15": "securityerror",
  "5.7.16": "mesgtoobig",
  "5.7.17": "hasmoved",
  "5.7.18": "hasmoved",
  "5.7.19": "securityerror",
  "5.7.20": "authfailure",
  "5.7.21": "authfailure",
  "5.7.22": "authfailure",
  "5.7.23": "authfailure",
  "5.7.24": "authfailure",
  "5.7.25": "requireptr",
  "5.7.26": "authfailure",
  "5.7.27": "notaccept",
  "5.7.28": "spamdetected",
  "5.7.29": "authfailure",
  "5.7.30": "failedstarttls",
};

/** Fallback status codes when a bounce has none: `X.0.9NN`, the first digit says permanent or temporary. */
const FALLBACK_STATUS_SUFFIX: Partial<Record<BounceReason, string>> = {
  authfailure: "926",
  badreputation: "975",
  blocked: "971",
  contenterror: "960",
  exceedlimit: "923",
  expired: "947",
  failedstarttls: "976",
  filtered: "910",
  hasmoved: "916",
  hostunknown: "912",
  mailboxfull: "922",
  mailererror: "939",
  mesgtoobig: "934",
  networkerror: "944",
  norelaying: "909",
  notaccept: "932",
  notcompliantrfc: "974",
  onhold: "901",
  policyviolation: "972",
  rejected: "918",
  requireptr: "973",
  securityerror: "970",
  spamdetected: "980",
  speeding: "946",
  suppressed: "903",
  suspend: "921",
  systemerror: "930",
  systemfull: "931",
  syntaxerror: "902",
  toomanyconn: "945",
  userunknown: "911",
  undefined: "900",
  virusdetected: "981",
};

/** Builds the `X.0.9NN` fallback status for a reason, `temporary` choosing class 4 over 5. */
export function fallbackStatus(reason: BounceReason, temporary: boolean): string {
  const suffix = FALLBACK_STATUS_SUFFIX[reason] ?? "900";
  return `${temporary ? "4" : "5"}.0.${suffix}`;
}

/** The reason a specific status code stands for, if any. */
export function reasonOfStatus(status: string): BounceReason | undefined {
  const known = STATUS_REASON[status];
  if (known) return known;
  const m = /^([45])\.0\.9(\d\d)$/.exec(status);
  if (m) {
    const suffix = "9" + (m[2] ?? "");
    for (const [reason, code] of Object.entries(FALLBACK_STATUS_SUFFIX)) {
      if (code === suffix) return reason as BounceReason;
    }
  }
  return undefined;
}

/** Phrases (lower-case text, whitespace collapsed) that identify a reason. */
const PHRASES: Partial<Record<BounceReason, RegExp[]>> = {
  mailboxfull: [
    /mail ?box (is |was )?(full|over ?quota|exceeded|size limit exceeded|has exceeded|quota usage exceeded|would exceed)/,
    /(over|exceeded|exceeds|exceeding|over the allowed|out of) (the |its |their |his |her )?(mailbox |disk |storage |diskspace |allowed )?quota/,
    /quota (exceeded|violation|full)|quotaexceeded|over quota/,
    /(disk|diskspace|storage|mail) quota/,
    /user(disk|'s disk| disk) quota/,
    /452 insufficient disk space|insufficient system storage/,
    /(not enough|not sufficient|no space left|does not have enough) (disk |storage )?space/,
    /(full mailbox|mailfolder is full|mailbox is full|inbox is full|box full|account is full)/,
    /exceeded storage allocation/,
    /boite du destinataire pleine/,
    /recipient (has )?reached (its |the )?(disk )?(quota|limit)/,
    /mail file size exceeds the maximum/,
    /the user has not enough space/,
    /too much mail data/,
    /mailbox has exceeded/,
    /exceeds? (his|her|their|the user's) (mailbox )?(storage |size )?limit/,
  ],
  mesgtoobig: [
    /message (is )?(too big|too large|size exceeds|exceeds (the )?(maximum|fixed|size))/,
    /(size|length) of (the )?message exceeds/,
    /exceeded maximum message size|maximum message size exceeded|message size limit|message size exceeds/,
    /message file too big|message length exceeds|size limit exceeded/,
    /(mail|email|e-mail) (is )?too (big|large)/,
    /line limit exceeded|message too big for system/,
  ],
  exceedlimit: [/message header size exceeds limit/, /(recipients|message) (exceeds?|over) (the )?(administrative|maximum number)/],
  suspend: [
    /(account|mailbox|user|address) (has been |is )?(currently |temporarily )?(suspended|disabled|deactivated|frozen|locked|inactive|terminated)/,
    /(has been|is currently|was) suspended/,
    /inactive (account|user|mailbox)/,
    /invalid\/inactive user/,
    /archived recipient|boite du destinataire archivee/,
    /recipient suspend|user suspended|temporarily inactive|temporary locked/,
    /this account has been (disabled|temporarily suspended)|account is locked/,
    /mailbox unavailable or access denied/,
    /account that you tried to reach is (disabled|inactive|suspended)/,
    /recipient account is (blocked|locked|disabled)|compte du destinataire est bloque/,
    /deactivated mailbox|disabled or discontinued|is unavailable: user is terminated/,
  ],
  hasmoved: [/ has been replaced by /, /(mailbox|address|user) has moved/],
  norelaying: [
    /relay(ing)? (access )?(denied|not (permitted|allowed)|prohibited|is not allowed)/,
    /email address is not verified|as a relay|not local host|we don'?t handle mail for|specified domain is not allowed/,
    /not (permitted|allowed) to relay|unable to relay|we do not relay|cannot relay|relay not permitted/,
    /not a gateway|no relaying|relaying mail to .{0,300} is not allowed/,
    /that domain isn't in my list of allowed rcpthosts/,
    /mail server requires authentication when attempting to send to a non-local/,
  ],
  authfailure: [
    /\bspf\b.{0,40}\b(fail|failed|failure|violation|check)/,
    /sender policy framework/,
    /dmarc (policy|check|validation|reject)|\bdmarc\b.{0,30}fail/,
    /\bdkim\b.{0,40}(fail|invalid|not valid|required)/,
    /is not allowed to send (mail )?from .{0,300} per it'?s spf/,
    /please inspect your spf settings|bad spf records/,
    /domain authentication fail|does not have authentication information|fails? to pass (authentication|spf|dkim|dmarc)/,
  ],
  userunknown: [
    /(user|recipient|mailbox|address|addressee|account|person|e-?mail( address)?|local ?part) (is )?(unknown|not found|does not exist|doesn'?t exist|not exist|not known|invalid|not listed)/,
    /unknown (user|recipient|mailbox|address|local ?part|e-?mail address|alias|account)/,
    /no such (user|recipient|mailbox|address|person|account|local user)/,
    /(invalid|bad|illegal|non-?existent|nonexistent|unavailable) (recipient|mailbox|user|address|destination mailbox)/,
    /(recipient|address) (was )?rejected: (invalid|unknown|user unknown|access denied|undeliverable)/,
    /(not a|is not a) (valid|known|local) (user|mailbox|recipient|address)/,
    /no (mailbox|account|one) (here )?(by that name|at this address|found|available)/,
    /mailbox (not present|not found|unavailable|is unavailable|unavaiable|inactive|does not exist)/,
    /user(name)? (not|doesn'?t|does not) (found|exist|active|here)/,
    /(address|user|recipient) unknown\b/,
    /requested action not taken: mailbox unavailable/,
    /resolver\.adr\.recipient ?notfound|recipientnotfound/,
    /sorry, (no mailbox here|user unknown|badrcptto)|badrcptto list|not in my validrcptto/,
    /your envelope recipient (has been denied|is in my badrcptto)/,
    /email account that you tried to reach does not exist/,
    /there is no one at this address|address no longer accepts mail|wrong or no longer valid/,
    /no longer (valid|active|in use|available)/,
    /the user's email name is not found|destination addresses? (were|was) unknown/,
    /#5\.1\.1|unknown e-?mail address|utilisateur inconnu|no existe (dicha persona|ese usuario)/,
    /nessun utente simile|is not an active address|does not exist here|not our customer/,
    /recipient (is )?not (local|accepted|ok)|recipient refuses to accept|no valid recipients/,
    /(the )?(mail|e-?mail) address (is )?(not valid|invalid)|address invalid/,
    /(rcpt|recipient) <?[^ ]{0,320}>? (does not exist|was not found)/,
    /account .{0,300} does not exist at the organization|user missing home directory|vdeliver: invalid/,
  ],
  filtered: [
    /only accepting mail from specific|not accepting (any )?mail|is not accepting mail/,
    /message filtered|rejected due to user rules|user refuses to receive|user reject/,
    /refused due to recipient preferences|resolver\.rst\.notauthorized|blocked by the recipient/,
    /this account is protected by|has restricted sms e-mail|refuse to receive mail/,
    /due to extended inactivity new mail is not currently being accepted/,
    /bounced address|not found recipient account/,
  ],
  requireptr: [
    /(no|missing|without|needs|requires?|invalid|bad|failed) (a )?(ptr|reverse dns|rdns|reverse (dns )?(lookup|record)|dns ptr)/,
    /(ptr|reverse dns|rdns|reverse lookup) (record )?(is )?(required|missing|not found|failed|lookup fail|check fail|does not match)/,
    /cannot find your hostname|unresolvable (relay )?host ?name|client host rejected: cannot find/,
    /(ip|host) name (lookup|resolution) failed|reverse dns validation failed/,
    /fix reverse dns|mismatches client ip|ptr record setup|reverse dns (failed|required)|custom reverse dns/,
    /no reverse (dns|mapping)|not have a ptr|refer to the reverse dns|reverse dns entry/,
  ],
  notcompliantrfc: [
    /not compliant with rfc|rfc ?5322|rfc ?2822|rfc ?822 (compliant|specification)/,
    /multiple addresses in (the )?from|not rfc ?5322 compliant|rfcmessagenoncompliant/,
    /multiple .{0,30} headers?|duplicate (subject|from|to|date|message-id) header/,
    /message (is )?not (rfc|properly formatted)|does not conform to rfc|violates rfc/,
  ],
  badreputation: [
    /(poor|bad|low|none\/bad) (email |ip |sender )?reputation/,
    /reputation (problems|score)|rate limited due to ip reputation/,
    /temporarily deferred due to unexpected volume or user complaints/,
  ],
  contenterror: [
    /duplicate header|header size exceeds|improper use of 8-bit data|invalid mime headers/,
    /improperly-formatted binary content|unnecessary base64 encoding|mime complexity exceeds/,
    /too many received: headers|message header size, or recipient list, exceeds/,
  ],
  rejected: [
    /sender (address )?(rejected|denied|refused|blocked|not allowed|is not allowed|unknown|verify failed|verification failed)/,
    /(domain|address) of sender .{0,300}(does not exist|not resolve)|sender domain (does not exist|must exist|not found|is invalid)/,
    /your (email )?address has been blacklisted|address (is )?(on|in) (our|the) (black|block)list/,
    /sending to\/from an address that has been blacklisted|sending this from a different address or alias|purported responsible address/,
    /from: domain is invalid|sender address has been blacklisted|sender email address rejected|sender domain is empty/,
    /\bbad sender\b|invalid sender|sender .{0,20}(is )?(blacklisted|not permitted)|domain of sender/,
    /access denied \((in reply to mail from|sender blacklisted)|you are not allowed to post|email address is not allowed/,
    /sender was rejected|sender verify failed|null sender is not allowed|empty envelope senders|bogus mail from/,
    /administrative prohibition|batv (failed|validation)|returned mail not accepted here/,
    /is not a registered gateway user|sender is (spammer|in my black ?list)|sender not pre-approved|invalid domain, see|fully qualified email address required/,
    /(^|[^t0] )address rejected|emetteur invalide|this server does not accept mail from|mail from not owned by user/,
    /not allowed to send (mail|email) to/,
    /unroutable sender|sender address is not valid|mail from .{0,300} not allowed/,
  ],
  hostunknown: [
    /(domain|host) (name )?(does not exist|not found|unknown|unreachable|is not reachable|must exist)/,
    /(unknown|no such) (host|domain)/,
    /mail domain mentioned in email address is unknown|name or service not known/,
    /unrout(e)?able (mail )?(address|domain)|recipient domain must exist|unknown domain name/,
    /the account or domain may not exist|all relevant mx records point to non-existent hosts/,
    /(^|\s)[a-z0-9-]+(\.[a-z0-9-]+)+\.? does not exist/,
    /host or domain name not found|dns (error|lookup failed).{0,40}(nxdomain|not found)/,
  ],
  spamdetected: [
    /\bspam\b.{0,50}(detected|blocked|rejected|refused|identified|classified|content|filter|score|not accepted|suspected|complaint)/,
    /(detected|identified|classified|considered|scored|flagged|looks?(ed)? like|appears to be|appear to be|treated) (as )?(a )?(possible |probable )?(spam|junk|bulk|unsolicited)/,
    /rejected due to spam|reject,? id=.{0,60}\bspam\b|- spam\b|mail rejete\. mail rejected\..{0,40}506/,
    /(is|as|probably|likely|be) spam\b|spam-like|spamlike|spam message|spam score|spam (points|probability)/,
    /junk mail|unsolicited (bulk|commercial|mail)|bulk mail|\buce\b/,
    /content (filter|rejected|policy)|rejected by .{0,30}content|message content (rejected|not accepted)/,
    /blocked by (our |the )?(spam|content|anti-?spam)|anti-?spam|antispam/,
    /uribl|surbl|dbl\.spamhaus|recurrent pattern detection|message (was )?rejected for policy reasons/,
    /greylisted.{0,40}try again|your message has been temporarily blocked by our filter/,
  ],
  speeding: [
    /(temporarily|has been) rate limited|sending (too fast|at a rate)|please try again slower|receiving mail at a rate/,
    /too many recipients this hour|sent too many messages (this|per) (hour|minute)/,
  ],
  toomanyconn: [
    /too many (connections|concurrent|smtp sessions|errors from your ip|recipients|simultaneous)/,
    /connection (rate )?limit (exceeded|reached)|maximum connection limit|exceeds per-domain connection limit/,
    /throttling failure|max emails per hour|trop de connexions|numerous attempts to deliver|frequency limited/,
  ],
  blocked: [
    /(black|block|deny|ban)[ -]?list(ed)?|\brbl\b|\bdnsbl\b|spamhaus|spamcop|barracudacentral|sorbs|abuseat/,
    /(your|client|sender|sending) (ip|host|network|server|mta)( address)? .{0,40}(blocked|rejected|refused|denied|banned|not allowed|listed|blacklisted)/,
    /(ip|host|connection|access) .{0,30}(is |has been )?(blocked|banned|refused)\b|banned sending ip|access denied, banned/,
    /blocked (using|by|due to)|was blocked by|refused to talk to me|go away|traffic not accepted from this ip/,
    /(will be )?permanently deferred|unusual rate of unsolicited mail/,
    /helo command rejected|client host rejected|hosts with dynamic ip|dynamic ip|dial-?up|residential/,
    /connection (dropped|refused|reset)|not currently accepting mail from your ip|not accepting connections/,
    /please use the smtp server of your isp|open proxy|looks suspiciously like spammer|you are sending spam/,
    /service (not available|refused)|closing transmission channel|confirm this mail server/,
    /error from remote mail server after initial connection|no access from mail server/,
  ],
  virusdetected: [
    /virus|malware|infected|potentially executable attachment|prohibited virus/,
  ],
  policyviolation: [
    /policy (violation|reasons|restriction)|violat(es|ed|ion of) (our |the )?(policy|policies|terms)/,
    /(local|security|site|mail|email|message) policy/,
    /prohibited (attachment|file|content)|attachment (type )?(not allowed|blocked|prohibited)|banned (attachment|file)/,
    /captcha|not allowed by (policy|administrator)|rejected by (the )?(administrator|policy)/,
    /does not accept (e-?mail|mail) (from|with)|email not accepted for policy|rejected for policy reasons|denied by policy/,
    /header error|header are not accepted|messages with multiple addresses|content presents a potential|organization(al)? (policy|settings)/,
    /closed mailing list|members-only list|not subscribed to this group|mass mailer|illegal attachment|message given low priority|protocol violation/,
  ],
  systemerror: [
    /aliasing\/forwarding loop|would create a mail loop|loops back to myself|loop was found in the mail exchanger|unable to contact ldap server/,
    /can'?t create user output file|local configuration error|local error in processing|configuration error/,
    /internal (server )?error|system config(uration)? error|queue file write error|temporary local problem|upstream error/,
    /interrupted system call|timeout waiting for input|misconfigured|could not load drd|there is no mdb/,
    /service currently unavailable|error while being processed|transaction failed\b/,
    /unable to connect .{0,40}daemon/,
  ],
  networkerror: [
    /(dns|name server|nameserver) (lookup )?(failure|timeout|timed out|problem)|servfail|temporary (dns|lookup) failure/,
    /network (error|is unreachable|unreachable)|no route to host|host is unreachable|mail routing error/,
    /could not connect and send|too many hops|hop count exceeded|mail forwarding loop|message looping|routing loop|forwarding loop count/,
    /had no relevant answers|malformed (or unexpected )?name server reply|host name lookup failure|host not found, try again|unable to resolve route|unrouteable mail domain/,
    /dns records for the destination computer could not be found|wasn'?t able to establish an smtp connection/,
  ],
  systemfull: [/mail system full|system (storage|disk) (is )?full|requested mail action aborted: exceeded storage allocation/],
  notaccept: [
    /indicated no smtp service|does not accept (any )?mail|not accepting (any )?mail|null mx|no mx record|mail is not accepted/,
    /host does not accept mail|domain does not accept mail|does not receive (e-?mail|mail)|mail receiving disabled|nullmx/,
    /couldn'?t find a mail exchanger or ip address|no mx record found for domain|no route for current request|smtp protocol returned a permanent error/,
  ],
  expired: [
    /(delivery|message|retry) (time |attempts? )?(has )?(expired|timed out)|expired after|message expired/,
    /giving up on|have been failing for a long time|has been delayed|in the queue too long|too long in (the )?queue/,
    /not reachable within the allowed queue period|unable to deliver (the )?message after|could not be delivered for .{0,20}days/,
    /retry time(out)? (not reached|exceeded)|retry timeout exceeded|connection timed out|server did not respond/,
    /could not find a gateway|delivery attempts will continue|failed to deliver to domain|not been collected/,
    /was not delivered within|could not be delivered for more than|maximum time|undeliverable for \d+/,
    /did not accept our requests to connect|envelope expired|could not deliver for the last|queue period/,
  ],
  failedstarttls: [/starttls (is )?required|tls (is )?required|tls required but not supported|must issue a starttls|does not support (starttls|tls)/],
  securityerror: [
    /authentication (required|failed|credentials)|must (be )?authenticat|not authenticated|authentication is required/,
    /(certificate|tls) (verification|handshake) fail|encryption (needed|required)/,
    /submission is not allowed|sender is not authorized|not authorized to (send|relay)|unauthenticated senders not allowed/,
    /smtp authentication|authentication turned on|authentication failure|verification failure|insecure mail relay|not subscribed to ses/,
  ],
  suppressed: [/on (the|our|your) (account'?s? )?suppression list|address is suppressed/],
  mailererror: [
    /x-unix;|mailer error|pipe to |exited with|command died|returned status|program (died|error)/,
    /procmail|maildrop: |delivery to (a )?program/,
  ],
  vacation: [/i am (away|out of the office)|out of (the )?office|on (vacation|holiday|leave)|auto(matic)?[ -]?reply/],
};

function matches(reason: BounceReason, text: string, on: PhraseFilter | undefined): boolean {
  const list = PHRASES[reason];
  if (!list || text === "") return false;
  return list.some((re, i) => (on === undefined || on(reason, i)) && re.test(text));
}

/**
 * The phrase tables, read-only: the fixture test's cross-validation checks which phrases its training folds
 * support (see `PhraseFilter`).
 */
export const PHRASE_TABLE: Readonly<Partial<Record<BounceReason, readonly RegExp[]>>> = PHRASES;

/**
 * Directory lookups that only ever mean "no such mailbox", whatever SMTP stage reported them
 * (Exchange, Microsoft 365, Domino, Notes, carrier gateways).
 */
const STRONG_USER_UNKNOWN =
  /recipient name is not recognized|not listed in (the )?(public name & address book|domino directory)|no valid recipients for this mm|recipient ?not ?found by smtp address lookup|resolver\.adr\.recip(ient)? ?not ?found|unknown recipient or mailbox unavailable|doesn'?t have an? .{1,40} account|#?5\.1\.0 address rejected|recipient address rejected: access denied/;

const EARLY_COMMANDS = new Set(["CONN", "EHLO", "HELO", "MAIL", "RCPT"]);

/** Collapses and lower-cases diagnostic text for phrase matching. */
export function normaliseDiagnostic(text: string): string {
  return text.toLowerCase().replace(/\s+/g, " ").trim();
}

/**
 * First pass: reasons whose phrases (or whose status codes) are specific enough to win over a generic
 * status class. Each probe may look at the status reason and the failing command.
 */
function firstPass(f: FailureFacts, text: string, byStatus: BounceReason | undefined): BounceReason | undefined {
  const cmd = f.command.toUpperCase();
  const on = f.phraseEnabled;
  const probes: Array<[BounceReason, () => boolean]> = [
    ["mailboxfull", () => byStatus === "mailboxfull" || matches("mailboxfull", text, on)],
    ["mesgtoobig", () => byStatus === "mesgtoobig" || (byStatus !== "exceedlimit" && matches("mesgtoobig", text, on))],
    ["exceedlimit", () => byStatus === "exceedlimit" || matches("exceedlimit", text, on)],
    ["suspend", () => f.replyCode === "525" || matches("suspend", text, on)],
    ["hasmoved", () => matches("hasmoved", text, on)],
    [
      "norelaying",
      () => !["CONN", "EHLO", "HELO"].includes(cmd) && matches("norelaying", text, on),
    ],
    ["authfailure", () => byStatus === "authfailure" || matches("authfailure", text, on)],
    [
      "userunknown",
      () => {
        if (byStatus === "suspend" || cmd === "MAIL") return false;
        if (byStatus === "userunknown") {
          const other: BounceReason[] = ["norelaying", "blocked", "mailboxfull", "hasmoved", "rejected", "notaccept", "filtered", "speeding"];
          return !other.some((r) => matches(r, text, on));
        }
        if (STRONG_USER_UNKNOWN.test(text)) return true;
        return cmd === "RCPT" && matches("userunknown", text, on);
      },
    ],
    [
      "filtered",
      () => {
        if (byStatus === "suspend") return false;
        if (byStatus === "filtered") return matches("userunknown", text, on) || matches("filtered", text, on);
        if (EARLY_COMMANDS.has(cmd)) return false;
        return matches("filtered", text, on) || matches("userunknown", text, on);
      },
    ],
    ["requireptr", () => byStatus === "requireptr" || matches("requireptr", text, on)],
    ["notcompliantrfc", () => matches("notcompliantrfc", text, on)],
    ["badreputation", () => matches("badreputation", text, on)],
    ["contenterror", () => !matches("spamdetected", text, on) && (byStatus === "contenterror" || matches("contenterror", text, on))],
    [
      "rejected",
      () => {
        if (byStatus === "rejected") return true;
        if (!matches("rejected", text, on)) return false;
        if (cmd === "MAIL") return true;
        if (cmd === "DATA") return byStatus !== "userunknown";
        return byStatus === undefined || byStatus === "onhold" || byStatus === "undefined" || byStatus === "securityerror" || byStatus === "systemerror";
      },
    ],
    [
      "hostunknown",
      () =>
        cmd !== "MAIL" &&
        !matches("notaccept", text, on) &&
        (byStatus === "hostunknown" ? !matches("networkerror", text, on) : matches("hostunknown", text, on)),
    ],
    ["spamdetected", () => byStatus === "spamdetected" || (!EARLY_COMMANDS.has(cmd) && matches("spamdetected", text, on))],
    ["speeding", () => matches("speeding", text, on)],
    ["toomanyconn", () => byStatus === "toomanyconn" || matches("toomanyconn", text, on)],
    ["blocked", () => byStatus === "blocked" || matches("blocked", text, on)],
  ];
  for (const [reason, probe] of probes) if (probe()) return reason;
  return undefined;
}

/** Reasons that a status code alone does not settle; text may refine them. */
const VAGUE_STATUS_REASONS = new Set<BounceReason>([
  "undefined",
  "onhold",
  "systemerror",
  "securityerror",
  "expired",
  "networkerror",
  "hostunknown",
  "userunknown",
]);

const SECOND_PASS: BounceReason[] = [
  "mailboxfull",
  "authfailure",
  "badreputation",
  "speeding",
  "spamdetected",
  "virusdetected",
  "policyviolation",
  "norelaying",
  "systemerror",
  "networkerror",
  "suspend",
  "contenterror",
  "systemfull",
  "notaccept",
  "expired",
  "failedstarttls",
  "securityerror",
  "suppressed",
  "mailererror",
];

/** Local delivery agents print their own errors; the agent's name tells a mailer error from an SMTP one. */
const LOCAL_AGENT = /(?:^|[\s/(])(?:procmail|maildrop|mail\.local|vdelivermail|vdeliver|dovecot|deliver)\s*:|command output:|command died with status|command failed:|\|\| exit |pipe to \||was automatically rejected:/;

function localAgentReason(text: string, on: PhraseFilter | undefined): BounceReason | undefined {
  if (!LOCAL_AGENT.test(text)) return undefined;
  if (matches("mailboxfull", text, on) || /over quota|quota exceeded|quota violation/.test(text)) return "mailboxfull";
  if (/no space left to finish writing/.test(text)) return "systemfull";
  if (/account is locked/.test(text)) return "suspend";
  // Only some agents look users up themselves (procmail does not: its "no such user" is a local mailer problem).
  const looksUp = /(?:mail\.local|maildrop|vdelivermail|vdeliver|dovecot)\s*:|was automatically rejected:/.test(text);
  if (looksUp && /unknown user|user unknown|invalid mailbox path|cannot find system user|invalid user specified|no mailbox here by that name|mailbox doesn'?t exist|invalid or unknown|user missing home directory/.test(text)) {
    return "userunknown";
  }
  if (/temporary file write error|service unavailable/.test(text)) return "systemerror";
  return "mailererror";
}

/** Decides the reason of one failure. */
export function classifyFailure(f: FailureFacts): BounceReason {
  const reason = classifyOnce(f);
  // A name-server failure reported as temporary is a network problem, not a domain that does not exist.
  if (reason === "hostunknown" && (f.status.startsWith("4") || (f.status === "" && f.replyCode.startsWith("4")))) return "networkerror";
  return reason;
}

function classifyOnce(f: FailureFacts): BounceReason {
  const status = f.status.trim();
  if (status.startsWith("2.")) return "delivered";
  const text = normaliseDiagnostic(f.diagnostic);
  const cmd = f.command.toUpperCase();
  const byStatus = reasonOfStatus(status);
  if (f.presetReason && !VAGUE_STATUS_REASONS.has(f.presetReason)) return f.presetReason;

  const on = f.phraseEnabled;
  const local = localAgentReason(text, on);
  if (local) return local;

  if (cmd === "STARTTLS" || ["523", "524", "538"].includes(f.replyCode) || matches("failedstarttls", text, on)) {
    return "failedstarttls";
  }

  const documented = documentedReason(text);
  // At MAIL FROM the server judges the sender: "does not exist" there is about the sender's domain.
  if (documented && !(cmd === "MAIL" && (documented === "userunknown" || documented === "hostunknown"))) return documented;

  const dtype = f.diagnosticType.toLowerCase();
  if (!dtype.startsWith("x-unix")) {
    const first = firstPass(f, text, byStatus);
    if (first) return first;
  }
  if (f.presetReason) return f.presetReason;

  if (["521", "556"].includes(f.replyCode) || (f.replyCode === "554" && cmd === "CONN")) return "notaccept";

  if (byStatus === undefined || VAGUE_STATUS_REASONS.has(byStatus) || dtype === "smtp") {
    for (const r of SECOND_PASS) if (matches(r, text, on)) return r;
  }
  // A failure at MAIL FROM concerns the sender (or the sending host), never the recipient's mailbox.
  if (cmd === "MAIL" && (byStatus === undefined || VAGUE_STATUS_REASONS.has(byStatus) || byStatus === "filtered")) return "rejected";
  if (byStatus && !/^[45]\.0\.9/.test(status)) return byStatus;
  const cls = status.slice(0, 3);
  if (cls === "5.6" || cls === "4.6") return "contenterror";
  if (cls === "5.7" || cls === "4.7") return "securityerror";
  if (dtype.startsWith("x-unix")) return "mailererror";
  const reply = Number(f.replyCode);
  if ((reply > 400 && reply < 408) || (reply > 500 && reply < 508)) return "syntaxerror";
  if (f.action === "delayed" || f.action === "expired") return "expired";
  if (cmd === "EHLO" || cmd === "HELO") return "blocked";
  // RFC 3463 classes: X.3.XXX "Mail System Status", X.4.XXX "Network and Routing Status". A subject the table
  // does not name still says which part failed.
  if (cls === "5.3" || cls === "4.3") return "systemerror";
  if (cls === "5.4" || cls === "4.4") return "networkerror";
  if (byStatus) return byStatus;
  if (matches("vacation", text, on)) return "vacation";
  return text !== "" ? "onhold" : "undefined";
}

/**
 * Words that put the blame somewhere other than the recipient's address: the sender, the sending host, volume,
 * authentication or policy, or a passing condition. Servers reuse 5.1.x for all of these ("550 5.1.0 sender
 * rejected", "550 5.1.1 ... has sent to too many recipients"); when the text says so, a "no such user" reading of
 * the status code is doubtful, and a doubtful hard bounce is taken as soft (a wrong hard bounce suppresses a good
 * address for 90 days).
 */
const NOT_THE_ADDRESS =
  /\bsender\b.{0,40}\b(?:rejected|denied|refused|blocked|not allowed|unknown|invalid|blacklisted)\b|\b(?:mail from|envelope from|return-path)\b.{0,40}\b(?:rejected|denied|refused|invalid)\b|\btoo many\b|\brate\b.{0,30}\blimit|\blimit(?:ed)?\b.{0,10}\bexceeded\b|\bper (?:hour|minute|day)\b|\bthrottl|\bspf\b|\bdkim\b|\bdmarc\b|\bpolicy\b|\bspam|\bblock(?:ed|list)\b|\bblacklist|\breputation\b|\bpreferences?\b|\bauthenticat|\btry again later\b|\btemporar(?:y|ily)\b/;

/**
 * Hard or soft: hard bounces are those where retrying can never work (the mailbox or domain does not
 * exist, it moved, or the host refuses all mail permanently). Everything else may succeed later. A temporary
 * status (4.x.x) is never hard, whatever the reason (RFC 3463 section 3.1: "the same message may be sent again");
 * neither is a failure whose text blames something other than the address (`NOT_THE_ADDRESS`).
 */
export function isHardBounce(reason: BounceReason, statusOrReply: string, diagnostic = ""): boolean {
  if (/^4/.test(statusOrReply.trim())) return false;
  if (diagnostic !== "" && (reason === "userunknown" || reason === "hostunknown") && NOT_THE_ADDRESS.test(normaliseDiagnostic(diagnostic).slice(0, 8192))) return false;
  if (reason === "userunknown" || reason === "hostunknown" || reason === "hasmoved") return true;
  if (reason !== "notaccept") return false;
  if (statusOrReply === "") return true;
  return !/^4/.test(statusOrReply.trim());
}
