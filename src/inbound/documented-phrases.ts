/**
 * Messages that mail systems are documented (or known from their source) to write, with the reason each one means.
 * Unlike the phrase tables in reason.ts, which were partly written while reading the fixture corpus and are fitted
 * per fold by the fixture test's cross-validation, this table is prior knowledge: every entry is a sentence the
 * named system's documentation or source code prints. It is consulted before the status code's generic meaning,
 * because a provider that writes one of these sentences says more than the (often reused) status code.
 *
 * Sources: Google Workspace "SMTP error reference" (support.google.com/a/answer/3726730); Microsoft Learn
 * "Email non-delivery reports and SMTP errors in Exchange Online"; Yahoo Sender Hub "SMTP error codes";
 * Postfix smtpd_check.c / smtp(8) / bounce(8) wording; Exim's deliver.c / retry and router messages; Sendmail's
 * err.c / deliver.c wording; qmail-remote / qmail-send (and qmail-ldap) messages; Cloudflare Email Routing
 * postmaster page; Tencent/QQ and La Poste postmaster pages; Barracuda and Proofpoint reply documentation.
 * Pure: no Workers imports. Every pattern is bounded (no unbounded repetition next to another).
 */
import type { BounceReason } from "./reason";

/** [reason, pattern over lower-case text with collapsed whitespace]. First match wins; order specific to general. */
export const DOCUMENTED_PHRASES: ReadonlyArray<readonly [BounceReason, RegExp]> = [
  // Google: rate of mail to one user (5.2.1 / 4.2.1), unusual rate (4.7.28/5.7.28), auth, From header, IPv6 PTR.
  ["speeding", /receiving mail (?:at a rate|too quickly) that prevents additional messages from being delivered/],
  ["speeding", /has sent to too many recipients this hour|too many (?:messages|recipients) (?:per|this|in the last) (?:hour|minute|day)/],
  ["blocked", /unusual rate of unsolicited mail originating from your ip|ip you'?re using to send mail is not authorized to send email directly/],
  ["authfailure", /does not have authentication information or fails to pass authentication checks|unauthenticated email from .{1,100} is not accepted due to domain'?s dmarc policy/],
  ["authfailure", /sender policy framework violation|does not pass dmarc verification|dmarc policy of the sender domain|not allowed to send from .{1,255} per it'?s spf record/],
  ["notcompliantrfc", /messages with multiple addresses in from:|is not rfc ?5322 compliant/],
  ["requireptr", /does not meet ipv6 sending guidelines regarding ptr records|sending ip does not have a ptr record|client host rejected: cannot find your (?:reverse )?hostname/],
  ["spamdetected", /this message is likely unsolicited mail|has been scored as spam|message content rejected, ube|\bube\b.{0,20}rejected|classified as spam|detected as spam|looks like spam/],
  ["policyviolation", /message was blocked because its content presents a potential security issue|protocol violation/],
  ["suspend", /email account that you tried to reach is (?:disabled|inactive)|this mailbox is disabled|mailbox disabled for this recipient|recipient account is (?:blocked|disabled)|compte du destinataire est bloqu/],
  ["mailboxfull", /email account that you tried to reach is over quota|mailbox (?:is )?full|over (?:the allowed )?quota|submission quota exceeded|mailfolder is over the allowed quota/],
  ["userunknown", /email account that you tried to reach does not exist|recipient ?not ?found by smtp address lookup|resolver\.adr\.recipient ?not ?found|no mailbox here by that name|this user doesn'?t have an? \S{1,100} account|user unknown in (?:local recipient|virtual mailbox|virtual alias|relay recipient) table|unknown local part/],
  // Microsoft: IP reputation rate limits (4.7.650), banned IPs (5.7.606-649), traffic not accepted (5.7.708), bad sender (5.1.8).
  ["badreputation", /rate limited due to ip reputation|temporarily deferred due to unexpected volume or user complaints/],
  ["blocked", /access denied, banned sending ip|traffic not accepted from this ip|blocked using (?:spamhaus|zen\.spamhaus|bl\.spamcop|b\.barracudacentral|dnsbl)|connections will not be accepted from .{1,100} because the ip is in/],
  ["rejected", /access denied, bad outbound sender|sender address rejected: domain not found|domain of sender address .{1,255} does not exist|sender verify failed|unresolvable rfc\.?5321 from domain/],
  ["securityerror", /client was not authenticated to send anonymous mail|please turn on smtp authentication|smtp authentication is required|authentication required/],
  ["contenterror", /invalid mime content|too many "?received"? headers|message has lines too long for transport/],
  // Tencent/QQ: "frequency limited" is its wording for sending too often from one IP.
  ["toomanyconn", /too many (?:connections|concurrent|smtp sessions)|connection rate limit exceeded|too many recipients|ip frequency limited|frequency limited/],
  // Facebook's postmaster response codes: RCP-P1..P4 are refusals by recipient preference or policy.
  ["filtered", /refused due to recipient preferences/],
  // qmail-remote: "Connected to <ip> but sender was rejected." / "... but my name was rejected." (HELO).
  ["rejected", /connected to \S{1,100} but sender was rejected/],
  ["blocked", /connected to \S{1,100} but my name was rejected|connected to \S{1,100} but greeting failed/],
  // Scanner and relay vocabulary common to Postfix access maps ("Recipient address rejected: <words>"), amavis,
  // ClamAV milters and the appliances: the words name the reason whatever status code the site chose.
  ["virusdetected", /\bvirus (?:detected|found)|\bmalware detected|contains? (?:a )?virus|infected with (?:a )?(?:virus|malware)/],
  ["mailererror", /\bmailer error\b/],
  ["failedstarttls", /does not support (?:starttls|tls)|tls (?:is )?required|must issue a starttls/],
  ["blocked", /please use the smtp server of your isp|use your isp'?s (?:smtp|mail) (?:server|relay)/],
  ["rejected", /from: domain is invalid|please provide a valid from/],
  ["authfailure", /\bbad spf records?\b|\bspf (?:check|validation|record)s? (?:fail|failed|failure)|\bspf\b.{0,20}\b(?:softfail|hardfail|permerror)\b/],
  // Postfix / Exim / Sendmail / qmail wording.
  ["norelaying", /\bno relaying\b|relaying (?:not permitted|prohibited)|unable to relay|we do not relay/],
  ["norelaying", /relay access denied|relaying denied|that domain isn'?t in my list of allowed rcpthosts|email address is not verified\. the following identities failed the check/],
  ["hostunknown", /recipient address rejected: domain not found|unrouteable address|all relevant mx records point to non-existent hosts|host unknown \(name server|couldn'?t find any host named|^\s*unknown host\b|\bdomain .{1,255} does not exist/],
  // "<host.name> does not exist" naming a domain (no local part): the receiving system knows no such domain.
  ["hostunknown", /(?:^|[\s:<"'])(?![\w.-]{0,255}@)[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,10}>? does not exist\b/],
  ["networkerror", /wasn'?t able to establish an smtp connection|hop count exceeded|routing loop detected|this message is looping: it already has my delivered-to line/],
  ["systemerror", /unable to contact ldap server|upstream error, please check|local configuration error|mail for .{1,255} loops back to myself/],
  ["expired", /retry timeout exceeded|have been failing for a long time \(and retry time not reached\)|(?:could not|cannot) (?:be delivered|send message) for (?:\d+|the last) days?|message could not be delivered for \d+ days/],
];

/** The reason a documented message names, if the text contains one. */
export function documentedReason(text: string): BounceReason | undefined {
  // A multiline SMTP reply (RFC 5321 section 4.2.1) repeats "550-5.2.1 " on every line; quoted in a bounce, the
  // prefixes land inside the server's sentence. They are removed here so that the sentence reads whole.
  const plain = text.replace(/(^|\s)[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3}\s)?/g, "$1");
  for (const [reason, re] of DOCUMENTED_PHRASES) if (re.test(plain)) return reason;
  return undefined;
}
