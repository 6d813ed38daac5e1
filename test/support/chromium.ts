/** Chromium for the browser tests: Debian's build driven by playwright-core, and why it cannot run here if it cannot. */
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
/** Where the browser tests write their screenshots. */
export const SCREENSHOT_DIR = "test-output";
export const LAUNCH = { executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] };

/** Why the browser tests cannot run here (no Chromium, or it does not start), or null. */
export async function whyNoBrowser(): Promise<string | null> {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is not installed (apt-get install chromium, see .ci/setup-chromium.sh)`;
  try {
    await (await chromium.launch(LAUNCH)).close();
    return null;
  } catch (e) {
    return `${CHROMIUM} does not start: ${String(e).split("\n")[0]}`;
  }
}
