import { transportLog, type Logger } from "./transport.log.js";
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
  logger: Logger;
  /** Outgoing buffer limit in bytes; see {@link TransportConnection.send}. */
  maxBufferedBytes: number;
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * The lifecycle shared by the three transports: start, data in, close from either side, `onClose`
 * exactly once. Subclasses move the bytes and report the end of their transport with {@link ended}.
 */
export abstract class BaseConnection implements TransportConnection {
  abstract readonly transport: TransportName;
  abstract readonly supportsBinary: boolean;
  abstract readonly inherentKeepAlive: boolean;
  readonly connectionId: string;
  readonly request: ConnectionRequest;
  readonly signal: AbortSignal;
  /** Settles after `onClose` ran (or would have, when the handler never took the connection). */
  readonly finished: Promise<void>;
  protected readonly logger: Logger;
  protected readonly maxBufferedBytes: number;
  private readonly abortController = new AbortController();
  private callbacks: ConnectionCallbacks | undefined;
  private ending = false;
  private done = false;
  private resolveFinished!: () => void;

  protected constructor(init: ConnectionInit) {
    this.connectionId = init.connectionId;
    this.request = init.request;
    this.logger = init.logger;
    this.maxBufferedBytes = init.maxBufferedBytes;
    this.signal = this.abortController.signal;
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  /** False once the connection is closing or closed: no data goes in or out any more. */
  get isOpen(): boolean {
    return !this.ending;
  }

  abstract send(data: Buffer, format?: FrameFormat): boolean;

  /**
   * Hands the connection to the handler. If `onConnected` throws, the transport is torn down, `onClose`
   * is not called (the handler never took the connection) and the error is rethrown.
   */
  start(handler: ConnectionHandler): void {
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
  receive(chunk: Buffer): void {
    if (this.ending || this.callbacks === undefined || chunk.length === 0) return;
    try {
      this.callbacks.onData(chunk);
    } catch (error) {
      transportLog.handlerFailed(this.logger, this.connectionId, "onData", error);
      this.fail(toError(error));
    }
  }

  /** Ends the connection from the server side (normal closure). Safe to call more than once. */
  close(): void {
    if (this.ending) return;
    this.ending = true;
    this.closeTransport(undefined);
    this.finish(undefined);
  }

  /** Ends the connection from the server side because something went wrong. */
  protected fail(error: Error): void {
    if (this.ending) return;
    this.ending = true;
    this.closeTransport(error);
    this.finish(error);
  }

  /** The subclass reports that its transport ended on its own (client left, socket failed, timed out). */
  protected ended(error?: Error): void {
    this.ending = true;
    this.finish(error);
  }

  /** Checks the outgoing-buffer limit for {@link send}, logging a refusal. */
  protected hasRoom(bufferedBytes: number): boolean {
    if (bufferedBytes <= this.maxBufferedBytes) return true;
    transportLog.sendBufferFull(this.logger, this.connectionId, bufferedBytes, this.maxBufferedBytes);
    return false;
  }

  /** Stops the transport; `error` is set when the server closes because of a failure. Called at most once. */
  protected abstract closeTransport(error: Error | undefined): void;

  private finish(error: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    transportLog.connectionClosed(this.logger, this.connectionId, this.transport, error);
    this.abortController.abort(error);
    // Never call back synchronously: close() may run inside the handler's own callback.
    process.nextTick(() => {
      try {
        this.callbacks?.onClose(error);
      } catch (callbackError) {
        transportLog.handlerFailed(this.logger, this.connectionId, "onClose", callbackError);
      }
      this.resolveFinished();
    });
  }
}
