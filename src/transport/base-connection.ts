import { transportLog } from "./transport.log.js";
import { type Logger } from "../log.js";
import type {
  ConnectionCallbacks,
  ConnectionHandler,
  ConnectionRequest,
  FrameFormat,
  TransportConnection,
  TransportName,
} from "./transport-connection.js";

/** What every transport connection is built from. */
export interface ConnectionInit {
  connectionId: string;
  request: ConnectionRequest;
  /** Whether negotiate agreed to stateful reconnect (see {@link TransportConnection.statefulReconnect}). */
  statefulReconnect: boolean;
  /** What all connections of one endpoint share (one object, not a copy of each field per connection). */
  shared: SharedConnectionSettings;
}

/** The settings and owner every connection of one endpoint shares. */
export interface SharedConnectionSettings {
  readonly logger: Logger;
  /** Outgoing buffer limit in bytes; see {@link TransportConnection.send}. */
  readonly maxBufferedBytes: number;
  /** Told when each connection ends, so ending costs no listener or promise per connection. */
  readonly owner: ConnectionOwner;
}

/** Whoever keeps track of connections (the endpoint), told of each one's end. */
export interface ConnectionOwner {
  /** The connection is ending, from either side: called once, before its signal aborts. */
  connectionEnded(connection: BaseConnection): void;
  /** Its `onClose` has run (or would have, when the handler never took the connection). */
  connectionFinished(connection: BaseConnection): void;
}

/**
 * Made on first use: an AbortSignal that was ever listened to costs nearly 1 KB, more than the rest of
 * an idle connection, and most connections never need one, nor `finished`.
 */
interface ConnectionExtras {
  abortController?: AbortController;
  finished?: Promise<void>;
  resolveFinished?: () => void;
  /** Why the connection ended, when it ended abnormally. */
  endError?: Error;
}

/**
 * - `open`: data goes in and out.
 * - `ending`: closing (from either side); nothing goes in or out any more.
 * - `ended`: the signal is aborted and `onClose` is scheduled.
 * - `settled`: `onClose` has run.
 */
type Phase = "open" | "ending" | "ended" | "settled";

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * The lifecycle shared by the three transports: start, data in, close from either side, `onClose`
 * exactly once. Subclasses move the bytes and report the end of their transport with {@link ended}.
 *
 * Every connection an idle server holds is one of these, so fields are few: what all connections share
 * is one reference, and the signal and `finished` are made only when asked for.
 */
export abstract class BaseConnection implements TransportConnection {
  abstract readonly transport: TransportName;
  abstract readonly supportsBinary: boolean;
  abstract readonly inherentKeepAlive: boolean;
  readonly connectionId: string;
  readonly request: ConnectionRequest;
  readonly statefulReconnect: boolean;
  private readonly shared: SharedConnectionSettings;
  private callbacks: ConnectionCallbacks | undefined;
  private phase: Phase = "open";
  /**
   * The signal, `finished` and the end's error: what an idle connection never needs. Declared, not set
   * in the constructor, so a connection has no slot for it until it is made.
   */
  declare private extras?: ConnectionExtras;

  protected constructor(init: ConnectionInit) {
    this.connectionId = init.connectionId;
    this.request = init.request;
    this.statefulReconnect = init.statefulReconnect;
    this.shared = init.shared;
  }

  /** Aborted when the connection ends, from either side (with the error when it ended abnormally). */
  get signal(): AbortSignal {
    const extras = (this.extras ??= {});
    if (extras.abortController === undefined) {
      extras.abortController = new AbortController();
      if (this.hasEnded) extras.abortController.abort(extras.endError);
    }
    return extras.abortController.signal;
  }

  /** Settles after `onClose` ran (or would have, when the handler never took the connection). */
  get finished(): Promise<void> {
    const extras = (this.extras ??= {});
    extras.finished ??=
      this.phase === "settled"
        ? Promise.resolve()
        : new Promise((resolve) => (extras.resolveFinished = resolve));
    return extras.finished;
  }

  /** False once the connection is closing or closed: no data goes in or out any more. */
  get isOpen(): boolean {
    return this.phase === "open";
  }

  protected get logger(): Logger {
    return this.shared.logger;
  }

  private get hasEnded(): boolean {
    return this.phase === "ended" || this.phase === "settled";
  }

  abstract send(data: Buffer, format?: FrameFormat): boolean;

  /**
   * Hands the connection to the handler (`onConnected`, or `attach` for a resumed connection). If that
   * throws, the transport is torn down, `onClose` is not called (the handler never took the connection)
   * and the error is rethrown.
   */
  start(handler: Pick<ConnectionHandler, "onConnected">): void {
    try {
      this.callbacks = handler.onConnected(this);
    } catch (error) {
      transportLog.handlerFailed(this.logger, this.connectionId, "onConnected", error);
      this.fail(toError(error));
      throw error;
    }
    transportLog.connectionStarted(this.logger, this.connectionId, this.transport);
  }

  /** Passes bytes from the client to the handler. A handler that throws gets its connection closed. */
  receive(chunk: Buffer, format: FrameFormat = "Text"): void {
    if (this.phase !== "open" || this.callbacks === undefined || chunk.length === 0) return;
    try {
      this.callbacks.onData(chunk, format);
    } catch (error) {
      transportLog.handlerFailed(this.logger, this.connectionId, "onData", error);
      this.fail(toError(error));
    }
  }

  /** Ends the connection from the server side (normal closure). Safe to call more than once. */
  close(): void {
    if (this.phase !== "open") return;
    this.phase = "ending";
    this.closeTransport(undefined);
    this.finish(undefined);
  }

  /** Ends the connection from the server side because something went wrong. */
  protected fail(error: Error): void {
    if (this.phase !== "open") return;
    this.phase = "ending";
    this.closeTransport(error);
    this.finish(error);
  }

  /** The subclass reports that its transport ended on its own (client left, socket failed, timed out). */
  protected ended(error?: Error): void {
    if (this.phase === "open") this.phase = "ending";
    this.finish(error);
  }

  /** Checks the outgoing-buffer limit for {@link send}, logging a refusal. */
  protected hasRoom(bufferedBytes: number): boolean {
    const limit = this.shared.maxBufferedBytes;
    if (bufferedBytes <= limit) return true;
    transportLog.sendBufferFull(this.logger, this.connectionId, bufferedBytes, limit);
    return false;
  }

  /** Stops the transport; `error` is set when the server closes because of a failure. Called at most once. */
  protected abstract closeTransport(error: Error | undefined): void;

  private finish(error: Error | undefined): void {
    if (this.hasEnded) return;
    this.phase = "ended";
    if (error !== undefined) (this.extras ??= {}).endError = error;
    transportLog.connectionClosed(this.logger, this.connectionId, this.transport, error);
    this.shared.owner.connectionEnded(this);
    this.extras?.abortController?.abort(error);
    // Never call back synchronously: close() may run inside the handler's own callback.
    process.nextTick(() => {
      try {
        this.callbacks?.onClose(error);
      } catch (callbackError) {
        transportLog.handlerFailed(this.logger, this.connectionId, "onClose", callbackError);
      }
      this.phase = "settled";
      this.shared.owner.connectionFinished(this);
      this.extras?.resolveFinished?.();
    });
  }
}
