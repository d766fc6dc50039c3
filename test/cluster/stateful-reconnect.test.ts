// Stateful reconnect across nodes (stateful-reconnect.case.ts) on PostgreSQL.
import { statefulReconnectCases } from "./stateful-reconnect.case.js";
import { postgresBackplane } from "../support/test-backplanes.js";

statefulReconnectCases(postgresBackplane("sb_stateful"));
