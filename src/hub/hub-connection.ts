import { parseHandshakeRequest, writeHandshakeResponse } from "../protocol/handshake.js";
import type { HubProtocol } from "../protocol/hub-protocol.js";
import { MessageType, type HubMessage } from "../protocol/messages.js";
import { ProtocolError } from "../protocol/protocol-error.js";
import type { ConnectionCallbacks, TransportConnection } from "../transport/transport-connection.js";
import { ConnectionCallerContext, type HubCallerContext } from "./hub-connection-context.js";
import { hubLog, type Logger } from "./hub.log.js";
import type { InvocationCancellation } from "./invocation-cancellation.js";
import type { HubOptions } from "./hub-options.js";
import type { HubMetrics } from "./hub-metrics.js";
import type { UploadStream } from "./upload-stream.js";

/** What a connection needs from the endpoint that owns it. */
export interface HubConnectionHost {
  readonly hub: string;
  /** The id of this node, for {@link HubCallerContext.nodeId}. */
  readonly nodeId: string;
  readonly options: HubOptions;
  readonly log: Logger;
  readonly metrics: HubMetrics;
  resolveProtocol(name: string): HubProtocol | undefined;
  /** Registers the connection and runs the hub's onConnected; rejects to refuse the connection. */
  connected(connection: HubConnection): Promise<void>;
  /**
   * Dispatches one message. Returns undefined when the next message may be read at once, or a promise that
   * resolves when it may (an invocation waiting for a free slot).
   */
  dispatch(connection: HubConnection, message: HubMessage): Promise<void> | undefined;
  /**
   * The connection ended. `registered` is false when it ended before its handshake completed (nothing to
   * undo but forgetting it); otherwise the host runs onDisconnected and unregisters it.
   */
  disconnected(connection: HubConnection, error: Error | undefined, registered: boolean): Promise<void>;
}

type State = "handshaking" | "connecting" | "connected" | "closed";

/**
 * Milliseconds since this module loaded: the clock of the keep-alive timestamps. Small integers are stored
 * inside the connection object, where a Date.now() value would be a separate 16-byte number for each of
 * three fields. (After ~24 days of uptime they are such numbers again: still correct, only bigger.)
 */
const clockStart = Date.now();
export function clockNow(): number {
  // Math.floor hands V8 a small integer; the bare difference would come back as a boxed number.
  return Math.floor(Date.now() - clockStart);
}

/** What `pending` holds when no partial message is waiting: shared, so an idle connection keeps no buffer. */
const noBytes = Buffer.alloc(0);

/**
 * One client connection in the hub layer: the handshake, the incoming message queue, outgoing writes, and the
 * timestamps the keep-alive tick reads. The dispatching of messages is the host's job.
 */
export class HubConnection implements ConnectionCallbacks {
  private state: State = "handshaking";
  private pending: Buffer = noBytes;
  /** Messages waiting to be dispatched, from `queueHead` on (an index, not shift(): O(1) per message). */
  private queue: HubMessage[] | undefined;
  private queueHead = 0;
  private draining = false;
  private protocolInUse: HubProtocol | undefined;
  private closeError: Error | undefined;
  /** When the connection opened, on {@link clockNow}, the clock of the two below as well. */
  readonly openedAt = clockNow();
  lastSentAt = this.openedAt;
  lastReceivedAt = this.openedAt;
  /** The client timeout is armed by the client's first Ping (older clients never ping). */
  pingReceived = false;
  // Made on first use: most connections never stream, and idle connections should stay small.
  private invocationMap: Map<string, InvocationCancellation> | undefined;
  private uploadMap: Map<string, UploadStream> | undefined;
  private itemMap: Map<string, unknown> | undefined;
  private callerContext: HubCallerContext | undefined;
  private logFieldValues: Record<string, unknown> | undefined;
  private slotWaiters: (() => void)[] | undefined;
  /** Invocations running now, against maximumParallelInvocationsPerClient. */
  activeInvocations = 0;
  /**
   * The registration and onConnected, from the handshake until they settle: what onDisconnected must wait
   * for. Undefined before and after.
   */
  registration: Promise<void> | undefined;
  /** Whether the hub's onConnected was started (onDisconnected runs only then). */
  hooksStarted = false;

  constructor(
    readonly transport: TransportConnection,
    private readonly host: HubConnectionHost,
  ) {}

  /** Invocations and server-to-client streams in flight, by invocation id. */
  get invocations(): Map<string, InvocationCancellation> {
    return (this.invocationMap ??= new Map());
  }

  /** Client-to-server streams, by stream id. */
  get uploads(): Map<string, UploadStream> {
    return (this.uploadMap ??= new Map());
  }

  /** State kept for the life of the connection (HubCallerContext.items). */
  get items(): Map<string, unknown> {
    return (this.itemMap ??= new Map());
  }

  /** What hub methods see as `this.context` (meaningful once the handshake chose a protocol). */
  get context(): HubCallerContext {
    return (this.callerContext ??= new ConnectionCallerContext(this));
  }

  /** Fields added to every log event about this connection (HubCallerContext.logFields). */
  get logFields(): Record<string, unknown> {
    return (this.logFieldValues ??= {});
  }

  /**
   * Resolves once an invocation slot is free, for an invocation that found none (at most one waits: the
   * queue stops behind it). Also resolves when the connection closes.
   */
  waitForSlot(): Promise<void> {
    return new Promise((resolve) => (this.slotWaiters ??= []).push(resolve));
  }

  /** An invocation finished: frees its slot for the invocation waiting, if any. */
  releaseSlot(): void {
    this.activeInvocations--;
    this.slotWaiters?.shift()?.();
  }

  /** The id of this node. */
  get nodeId(): string {
    return this.host.nodeId;
  }

  /** The hub's path. */
  get hub(): string {
    return this.host.hub;
  }

  get connectionId(): string {
    return this.transport.connectionId;
  }

  get protocol(): HubProtocol {
    return this.protocolInUse!;
  }

  get isConnected(): boolean {
    return this.state === "connected" || this.state === "connecting";
  }

  get isHandshaking(): boolean {
    return this.state === "handshaking";
  }

  /** Aborted when the connection ends. */
  get signal(): AbortSignal {
    // The transport's own: one AbortController per connection, not one per layer.
    return this.transport.signal;
  }

  /** The fields that identify this connection in log events. */
  get ids(): { hub: string; connectionId: string } & Record<string, unknown> {
    return { ...this.logFieldValues, hub: this.host.hub, connectionId: this.connectionId };
  }

  onData(chunk: Buffer): void {
    if (this.state === "closed") return;
    this.lastReceivedAt = clockNow();
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    try {
      if (this.state === "handshaking") this.readHandshake();
      // readHandshake may have moved the state on (TypeScript cannot see that through the call).
      const state = this.state as State;
      if (state !== "handshaking" && state !== "closed" && this.pending.length > 0) {
        const { messages, rest } = this.protocol.parse(
          this.pending,
          this.host.options.maximumReceiveMessageSize,
        );
        this.keepPending(rest);
        if (messages.length > 0) this.enqueue(messages);
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      if (this.state === "handshaking") {
        hubLog.handshakeFailed(this.host.log, this.ids, err.message);
        this.failHandshake(`An unexpected error occurred during connection handshake. ${err.message}`);
      } else {
        hubLog.badMessage(this.host.log, this.ids, err.message);
        this.close(`Connection closed with an error. ${err.message}`);
      }
    }
  }

  onClose(error?: Error): void {
    if (this.state === "closed") return;
    const wasRegistered = this.state !== "handshaking";
    this.state = "closed";
    this.closeError ??= error;
    for (const upload of this.uploadMap?.values() ?? []) upload.end("The connection was closed.");
    for (const invocation of this.invocationMap?.values() ?? []) invocation.abort();
    for (const wake of this.slotWaiters?.splice(0) ?? []) wake();
    this.queue = undefined;
    void this.host.disconnected(this, this.closeError, wasRegistered);
  }

  /** Writes one message to the client; false when the client's buffer is full (it is then closed). */
  write(message: HubMessage): boolean {
    return this.writeBytes(this.protocol.write(message));
  }

  /** Writes bytes already serialised with this connection's protocol. */
  writeBytes(bytes: Buffer): boolean {
    if (this.state === "closed") return false;
    this.lastSentAt = clockNow();
    if (this.transport.send(bytes, this.protocol.transferFormat)) return true;
    hubLog.slowClient(this.host.log, this.ids);
    this.host.metrics.deliveryFailed(this.host.hub, "slow_client");
    this.close("Connection closed with an error. The client did not read its messages fast enough.", true);
    return false;
  }

  /**
   * Ends the connection from the server: a Close message (with the error text and whether the client may
   * reconnect), then the transport.
   */
  close(error?: string, allowReconnect = false): void {
    if (this.state === "closed") return;
    if (error !== undefined) this.closeError ??= new Error(error);
    if (this.state !== "handshaking") {
      const message: HubMessage = {
        type: MessageType.Close,
        error,
        allowReconnect: allowReconnect || undefined,
      };
      this.transport.send(this.protocol.write(message), this.protocol.transferFormat);
    }
    this.transport.close();
    this.onClose(this.closeError);
  }

  /** Closes a connection whose handshake never came. */
  handshakeTimedOut(): void {
    hubLog.handshakeTimedOut(this.host.log, this.ids, this.host.options.handshakeTimeoutMs);
    this.closeError = new Error("Handshake was canceled.");
    this.transport.close();
    this.onClose(this.closeError);
  }

  private readHandshake(): void {
    const { request, rest } = parseHandshakeRequest(
      this.pending,
      this.host.options.maximumReceiveMessageSize,
    );
    if (!request) return;
    this.keepPending(rest);
    const protocol = this.host.resolveProtocol(request.protocol);
    if (!protocol) return this.failHandshake(`The protocol '${request.protocol}' is not supported.`);
    if (!protocol.isVersionSupported(request.version)) {
      return this.failHandshake(
        `The server does not support version ${request.version} of the '${request.protocol}' protocol.`,
      );
    }
    if (protocol.transferFormat === "Binary" && !this.transport.supportsBinary) {
      return this.failHandshake(
        `Cannot use the '${request.protocol}' protocol on the current transport. The transport does not support 'Binary' transfer format.`,
      );
    }
    this.protocolInUse = protocol;
    this.state = "connecting";
    this.transport.send(writeHandshakeResponse(), protocol.transferFormat);
    this.lastSentAt = clockNow();
    hubLog.handshakeComplete(this.host.log, this.ids, protocol.name, this.transport.transport);
    // Messages that arrive while the registry and onConnected run wait in the queue.
    this.draining = true;
    this.registration = this.host.connected(this);
    this.registration.then(
      () => {
        this.registration = undefined;
        if (this.state !== "connecting") return;
        this.state = "connected";
        this.draining = false;
        this.drain();
      },
      (err: unknown) => {
        this.registration = undefined;
        hubLog.lifecycleHookFailed(this.host.log, this.ids, "onConnected", err);
        this.close("Connection closed with an error.", true);
      },
    );
  }

  /** Keeps the bytes of an incomplete message; none keeps no buffer (an empty slice would hold the chunk). */
  private keepPending(rest: Buffer): void {
    this.pending = rest.length === 0 ? noBytes : rest;
  }

  private failHandshake(reason: string): void {
    hubLog.handshakeFailed(this.host.log, this.ids, reason);
    this.closeError = new Error(reason);
    this.transport.send(writeHandshakeResponse(reason), "Text");
    this.transport.close();
    this.onClose(this.closeError);
  }

  private enqueue(messages: HubMessage[]): void {
    // A client that sends faster than its invocations finish is closed rather than buffered without end.
    const queue = (this.queue ??= []);
    if (queue.length - this.queueHead + messages.length > maxQueuedMessages) {
      hubLog.tooManyMessages(this.host.log, this.ids, maxQueuedMessages);
      this.close(
        `Connection closed with an error. The client sent more than ${maxQueuedMessages} messages ahead of the hub.`,
      );
      return;
    }
    for (const message of messages) queue.push(message);
    this.host.metrics.messagesReceived(this.host.hub, messages.length);
    if (!this.draining) this.drain();
  }

  private dequeue(): HubMessage | undefined {
    const queue = this.queue;
    if (queue === undefined) return undefined;
    if (this.queueHead >= queue.length) {
      // Drained: an idle connection keeps no array.
      this.queue = undefined;
      this.queueHead = 0;
      return undefined;
    }
    const message = queue[this.queueHead++];
    if (this.queueHead > 1024 && this.queueHead * 2 > queue.length) {
      this.queue = queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    return message;
  }

  /** Dispatches queued messages in order; the host decides how long each one holds up the next. */
  private drain(): void {
    this.draining = true;
    const next = (): void => {
      while (this.state === "connected") {
        const message = this.dequeue();
        if (!message) break;
        const pending = this.host.dispatch(this, message);
        if (pending !== undefined) {
          pending.then(next, (err: unknown) => {
            hubLog.methodFailed(this.host.log, this.ids, "(dispatch)", err);
            this.close("Connection closed with an error.", true);
          });
          return;
        }
      }
      this.draining = false;
    };
    next();
  }
}

/** Messages a client may have waiting for dispatch (ASP.NET Core pauses reading at 64 KB instead). */
const maxQueuedMessages = 1_000;
