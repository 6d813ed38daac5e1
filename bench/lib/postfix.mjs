/** placeholder: replaced below */
export async function runPostfixPhase() {
  return { skipped: "not yet implemented" };
}
