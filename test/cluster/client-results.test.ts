// client-results (see client-results.case.ts) on PostgreSQL.
import { clientResultsCases } from "./client-results.case.js";
import { postgresBackplane } from "../support/test-backplanes.js";

clientResultsCases(postgresBackplane("sb_results"));
