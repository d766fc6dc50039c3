/** The server's own log events (ids 500–599; see src/log.ts for the style). */
import { emit, errorFields, type Logger } from "../log.js";

export const serverLog = {
  hubsNotDeclared: (log: Logger, err: unknown) =>
    emit(
      log,
      "error",
      501,
      "HubsNotDeclared",
      errorFields(err),
      "The hubs could not be recorded in the backplane (retrying in 2 s): sends from SQL to them fail meanwhile.",
    ),
  nodeUrlUnknown: (log: Logger, address: unknown) =>
    emit(
      log,
      "error",
      502,
      "NodeUrlUnknown",
      { address },
      "The server listens on a pipe: give option 'nodeUrl', or other nodes cannot forward requests here.",
    ),
  nodeUrlAdvertised: (log: Logger, url: string) =>
    emit(log, "info", 503, "NodeUrlAdvertised", { url }, "Other nodes forward requests here."),
  nodeUrlNotAdvertised: (log: Logger, url: string, err: unknown) =>
    emit(
      log,
      "error",
      504,
      "NodeUrlNotAdvertised",
      { url, ...errorFields(err) },
      "The node's URL could not be recorded (retrying in 2 s): requests other nodes forward here fail meanwhile.",
    ),
  originRefused: (log: Logger, origin: string | undefined, path: string | undefined) =>
    emit(
      log,
      "warn",
      505,
      "OriginRefused",
      { origin, url: path },
      "A WebSocket from a foreign origin was refused.",
    ),
  backplaneStartFailed: (log: Logger, err: unknown) =>
    emit(log, "error", 506, "BackplaneStartFailed", errorFields(err), "The backplane failed to start."),
  drained: (log: Logger) =>
    emit(log, "info", 507, "Drained", {}, "Connections unregistered, and what was sent to them delivered."),
  drainFailed: (log: Logger, err: unknown) =>
    emit(
      log,
      "warn",
      508,
      "DrainFailed",
      errorFields(err),
      "Could not drain through the backplane: messages sent to this node's clients just now may be lost.",
    ),
};
