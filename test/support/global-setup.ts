/** Vitest global setup: starts the real loopback peers (SMTP sink, scripted servers, DoH stub) once per project. */
import type { TestProject } from "vitest/node";
import { startPeers } from "./peers";

declare module "vitest" {
  export interface ProvidedContext {
    sinkPort: number;
    controlPort: number;
  }
}

export default async function setup(project: TestProject) {
  const peers = await startPeers();
  project.provide("sinkPort", peers.sink.port);
  project.provide("controlPort", peers.controlPort);
  return async () => {
    await peers.close();
  };
}
