/**
 * Recognises delay warnings: notices an MTA sends while it still holds the message and keeps retrying
 * (RFC 3464 `Action: delayed`, and the plain-text templates of the common MTAs). A delay warning is never a
 * bounce: the recipient's state must not change. The wording below comes from each MTA's own template:
 *
 * - Exim (`warn_message_file` default, deliver.c): subject "Warning: message <id> delayed <time>", body "has not
 *   yet been delivered to one or more of its recipients after more than ... on the queue", "No action is required
 *   on your part. Delivery attempts will continue ...". It carries no X-Failed-Recipients header.
 * - Sendmail (savemail.c / the DSN text): subject "Warning: could not send message for past <time>", banner
 *   "THIS IS A WARNING MESSAGE ONLY" / "YOU DO NOT NEED TO RESEND YOUR MESSAGE", "Will keep trying until message is
 *   <time> old".
 * - Postfix (bounce template `delay_template`): subject "Delayed Mail (still being retried)", banner "THIS IS A
 *   WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE.", "It will be retried until it is N day(s) old."
 * - Exchange 2010+ / Microsoft 365: subject "Delivery delayed:<subject>", "Delivery is delayed to these recipients
 *   or groups", "This message hasn't been delivered yet. Delivery will continue to be attempted.", "The server will
 *   keep trying to deliver this message for the next ...". Exchange 2003/2007 and Gmail: "Delivery Status
 *   Notification (Delay)", "Delivery to the following recipient(s) has been delayed", "will retry for N more hours".
 * - OpenSMTPD: "Delivery status notification: delayed", "this is only a temporary failure report".
 * - Courier, Lotus Domino, Oracle/Sun Messaging Server: "delayed delivery" / "Delivery has been delayed" subjects
 *   with an RFC 3464 report.
 * - qmail has no warning of its own; the qmail-derived services (and many appliances) say "I'm still trying" or
 *   "will keep trying".
 *
 * Pure: no Workers imports. All patterns are linear (no nested quantifiers) and run over bounded text.
 */

/** Subjects that only delay warnings carry. */
const DELAY_SUBJECT =
  /^\s*(?:warning: message \S+ delayed\b|warning: could not send message for past\b|delayed mail \(still being retried\)|delivery delayed\b|delivery is delayed\b|delayed delivery\b|message delayed\b|delivery status notification \((?:delay|mail delivery delayed)\)|delivery status notification: delayed|delivery notification: delivery has been delayed|delivery delay notification|warning: delayed|mail delivery delayed|delivery has been delayed|delivery warning|delayed message|undelivered mail warning|\[?warning\]? message not (?:yet )?delivered)/i;

/** Banners and sentences that only warnings carry: they say outright that no action is needed. */
const WARNING_BANNER =
  /this is a warning (?:message )?only|you do not need to re-?send (?:your|the) message|only a temporary failure report|no action is required on your part/i;

/** Sentences that say the sending MTA is still retrying. */
const STILL_TRYING =
  /has not yet been delivered to one or more of its\s+recipients after more than|delivery attempts will continue|will keep trying(?: to deliver)?|will continue (?:to (?:try|attempt)|trying)|(?:will be|still being) retried|it will be retried until|delivery will continue to be attempted|hasn'?t been delivered yet|has not been delivered yet|will retry for \d+ more hours?|i'?m still trying|will be (?:re-?)?attempted|delivery to the following recipients? (?:has been|was) delayed|delivery is delayed to these recipients|is delayed for more than|message (?:is|has been) delayed/i;

/** Words of a final failure: when a notice says these (outside the warning banner), it is a bounce. */
const FINAL_FAILURE =
  /failed permanently|permanent (?:error|failure|fatal)|\bgiving up\b|\bgave up\b|have given up|not going to try again|will not be retried|no further (?:delivery )?attempts will be made|has been returned to (?:the )?sender|delivery has failed to these recipients|could not be delivered to one or more (?:of its )?(?:recipients|destinations)(?! for more than)|this is a permanent error|fatal errors? occurred/i;

/** Longest stretch of the report read for warning phrases: the templates put them in the first lines. */
const MAX_WARNING_TEXT_CHARS = 64 * 1024;

/**
 * Says whether a plain-text (or mixed) notice is a delay warning, from its subject and its human-readable text
 * (before the returned original).
 */
export function isDelayWarning(subject: string, reportText: string): boolean {
  const text = reportText.slice(0, MAX_WARNING_TEXT_CHARS);
  // A notice may say both (Exim: "Eventually the mail delivery software will give up"): "give up" in the
  // future tense is not in FINAL_FAILURE; the past and present forms are.
  if (FINAL_FAILURE.test(text) && !WARNING_BANNER.test(text)) return false;
  if (WARNING_BANNER.test(text)) return true;
  if (DELAY_SUBJECT.test(subject)) return STILL_TRYING.test(text) || !FINAL_FAILURE.test(text);
  return STILL_TRYING.test(text) && !FINAL_FAILURE.test(text) && /\bdelay(?:ed)?\b|\bnot yet\b|\bretr(?:y|ied)\b|\bkeep trying\b|\bstill trying\b/i.test(text);
}
