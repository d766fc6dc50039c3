// PostgreSQL backplanes for tests: started with a Recorder as their event handler, silent, and closed together.
import { silentLogger } from "../../src/hub/hub.log.js";
import type { PostgresBackplaneOptions } from "../../src/backplane/postgres/options.js";
import { postgres, type PostgresBackplane } from "../../src/backplane/postgres/postgres-backplane.js";
import { Recorder } from "./recorder.js";

export interface TestNode {
  backplane: PostgresBackplane;
  recorder: Recorder;
}

/** `base()` gives the options every node shares (read when a node starts, so it may use beforeAll's values). */
export function backplaneNodes(base: () => PostgresBackplaneOptions) {
  const started: PostgresBackplane[] = [];
  return {
    async start(options: Partial<PostgresBackplaneOptions> = {}): Promise<TestNode> {
      const backplane = postgres({ logger: silentLogger, ...base(), ...options });
      const recorder = new Recorder();
      await backplane.start(recorder);
      started.push(backplane);
      return { backplane, recorder };
    },
    /** Closes every node started so far. */
    closeAll: () => Promise.all(started.splice(0).map((b) => b.close())),
  };
}
