// no-sticky (see no-sticky.case.ts) on PostgreSQL.
import { noStickyCases } from "./no-sticky.case.js";
import { postgresBackplane } from "../support/test-backplanes.js";

noStickyCases(postgresBackplane("sb_nosticky"));
