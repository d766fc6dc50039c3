// The rolling restart (see rolling-restart.case.ts) on PostgreSQL.
import { rollingRestartCases } from "./rolling-restart.case.js";
import { postgresBackplane } from "../support/test-backplanes.js";

rollingRestartCases(postgresBackplane("sb_rolling"));
