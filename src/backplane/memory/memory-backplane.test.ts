import { runBackplaneSpec } from "../backplane.case.js";
import { MemoryBackplane } from "./memory-backplane.js";

// One process is one node: the multi-node cases do not apply.
runBackplaneSpec({ name: "MemoryBackplane", maxNodes: 1, createCluster: () => [new MemoryBackplane()] });
