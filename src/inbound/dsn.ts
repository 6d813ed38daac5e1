/**
 * Reads the machine-readable part of an RFC 3464 delivery status notification (message/delivery-status):
 * the per-message fields and one group of fields per recipient. Tolerates the usual deviations (missing
 * blank lines between groups, folded fields, several Status or Diagnostic-Code lines).
 * Pure: no Workers imports.
 */
import { parseHeaderBlock } from "./mime-lite";
import { cleanAddress } from "./text-util";

export interface DsnRecipientFields {
  finalRecipient: string;
  originalRecipient: string;
  action: string;
  status: string;
  remoteMta: string;
  diagnosticCode: string;
  diagnosticType: string;
}

export interface DsnFields {
  reportingMta: string;
  /** Postfix and some others name the original envelope sender here. */
  envelopeSender: string;
  recipients: DsnRecipientFields[];
}

function emptyRecipient(): DsnRecipientFields {
  return { finalRecipient: "", originalRecipient: "", action: "", status: "", remoteMta: "", diagnosticCode: "", diagnosticType: "" };
}

function stripType(value: string): { type: string; rest: string } {
  const m = /^\s*([A-Za-z0-9-]+)\s*;\s*([\s\S]*)$/.exec(value);
  if (!m) return { type: "", rest: value.trim() };
  return { type: (m[1] ?? "").toLowerCase(), rest: (m[2] ?? "").trim() };
}

/** Parses the text of a message/delivery-status part. */
export function parseDeliveryStatus(text: string): DsnFields {
  const out: DsnFields = { reportingMta: "", envelopeSender: "", recipients: [] };
  let current: DsnRecipientFields | null = null;
  const start = (): DsnRecipientFields => {
    const r = emptyRecipient();
    out.recipients.push(r);
    return r;
  };
  // Groups are separated by blank lines (RFC 3464 section 2.1); inside a group, a repeated
  // recipient field starts the next recipient, for reports that leave the blank lines out.
  const entries: Array<[string, string]> = [];
  for (const block of text.split(/\n[ \t]*\n/)) {
    const headers = parseHeaderBlock(block.replace(/^\s*\n/, ""));
    entries.push(["", ""], ...headers.entries);
  }
  for (const [name, value] of entries) {
    switch (name) {
      case "":
        current = null;
        break;
      case "reporting-mta":
        out.reportingMta = stripType(value).rest;
        break;
      case "x-postfix-sender":
      case "x-original-envelope-from":
        out.envelopeSender = cleanAddress(stripType(value).rest, true);
        break;
      case "original-recipient":
        if (current === null || current.originalRecipient !== "" || (current.finalRecipient !== "" && current.status !== "")) {
          current = start();
        }
        current.originalRecipient = cleanAddress(stripType(value).rest);
        break;
      case "final-recipient":
      case "x-actual-recipient":
        if (name === "x-actual-recipient") break;
        if (current === null || current.finalRecipient !== "") current = start();
        current.finalRecipient = cleanAddress(stripType(value).rest);
        break;
      case "action":
        if (current === null) current = start();
        if (current.action === "") current.action = value.trim().toLowerCase().split(/[\s(]/)[0] ?? "";
        break;
      case "status":
        if (current === null) current = start();
        if (current.status === "") {
          const m = /([245])\.(\d{1,3})\.(\d{1,3})/.exec(value);
          current.status = m ? `${m[1]}.${m[2]}.${m[3]}` : "";
        }
        break;
      case "remote-mta":
        if (current === null) current = start();
        if (current.remoteMta === "") current.remoteMta = stripType(value).rest;
        break;
      case "diagnostic-code": {
        if (current === null) current = start();
        const { type, rest } = stripType(value);
        if (current.diagnosticCode === "") {
          current.diagnosticCode = rest;
          current.diagnosticType = type;
        } else if (!current.diagnosticCode.includes(rest)) {
          current.diagnosticCode += " " + rest;
        }
        break;
      }
      default:
        break;
    }
  }
  out.recipients = out.recipients.filter((r) => r.finalRecipient !== "" || r.originalRecipient !== "");
  return out;
}
