import { parseHandshakeRequest, writeHandshakeResponse } from "../protocol/handshake.js";
import type { ClientResultOutcome } from "../backplane/backplane.js";
import type { HubProtocol } from "../protocol/hub-protocol.js";
import { MessageType, type CompletionMessage, type HubMessage } from "../protocol/messages.js";
import { ProtocolError } from "../protocol/protocol-error.js";
import type {
  ConnectionCallbacks,
  ConnectionRequest,
  TransportConnection,
  TransportName,
} from "../transport/transport-connection.js";
import { isServerInvocationId } from "./client-results.js";
import { ConnectionCallerContext, type HubCallerContext } from "./hub-connection-context.js";
import { hubLog } from "./hub.log.js";
import { type Logger } from "../log.js";
import type { InvocationCancellation } from "./invocation-cancellation.js";
import type { HubOptions } from "./hub-options.js";
import type { HubMetrics } from "./hub-metrics.js";
import type { ConnectionState } from "./connection-handover.js";
import { DispatchQueue, type QueueOwner } from "./dispatch-queue.js";
import { MessageBuffer } from "./message-buffer.js";
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
  /**
   * Dispatches one message. Returns undefined when the next message may be read at once, or a promise that
   * resolves when it may (an invocation waiting for a free slot).
   */
  dispatch(connection: HubConnection, message: HubMessage): Promise<void> | undefined;
  /**
   * The transport of a connection that was serving ended (lost, closed or moved): the host runs the end
   * of its lifecycle (connection-lifecycle.ts). Not called while the connection is still opening (its
   * opening reads the end from {@link HubConnection.startDispatch}) nor while it waits to be resumed.
   */
  connectionEnded(connection: HubConnection, end: TransportEnd): void;
  /**
   * The client answered an invocation the server awaits (a client result), or the connection ended
   * before it did (`error`): the host takes the outcome to the node that asked.
   */
  clientAnswered(connection: HubConnection, invocationId: string, outcome: AnswerOutcome): void;
}

/** A client's answer, or the reason none will come. */
export type AnswerOutcome = ClientResultOutcome;

/**
 * - `handshaking`: waiting for the client's handshake.
 * - `registering`: the handshake was read; the backplane records the connection. The handshake answer,
 *   and anything written meanwhile, waits, so a client that learns it is connected is addressable.
 * - `starting`: answered; the hub's onConnected runs (the client's messages wait).
 * - `connected`: messages flow both ways.
 * - `detached`: the transport was lost; a stateful connection waits for its client to come back.
 * - `adopting`: taken over from another node; waiting for the state that node hands over.
 * - `ended`: closed for good, or moved to another node.
 */
type Phase = "handshaking" | "registering" | "starting" | "connected" | "detached" | "adopting" | "ended";

/** How a connection's transport ended, as the lifecycle sees it. */
export type TransportEnd =
  /** For good: the client or the server closed it, or it was lost without a way back. */
  | { kind: "closed"; error: Error | undefined }
  /** Lost, and the client may come back within the resume window (stateful reconnect). */
  | { kind: "lost"; error: Error | undefined }
  /** Handed over to another node, where it lives on. */
  | { kind: "moved" };

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
 * The tie between a connection and one of its transports. A stateful connection may get a new transport
 * while the old one is still closing: callbacks from a transport that was replaced are ignored.
 */
class TransportLink implements ConnectionCallbacks {
  constructor(
    readonly connection: HubConnection,
    readonly transport: TransportConnection,
  ) {}
  onData(chunk: Buffer): void {
    this.connection.receive(this, chunk);
  }
  onClose(error?: Error): void {
    this.connection.transportEnded(this, error);
  }
}

/**
 * One client connection in the hub layer, for as long as it lives, across transports: the handshake, the
 * incoming message queue, outgoing writes (numbered and kept for replay when the connection is stateful),
 * and the timestamps the keep-alive reads. Its life as a sequence of steps is connection-lifecycle.ts's;
 * dispatching messages is the host's job.
 */
export class HubConnection implements QueueOwner {
  // Fields marked `declare` are rare (a move, the end, a hub that asks for them): not set in the
  // constructor, a connection gets a slot for one only once it is set, so an idle one has none.
  private phase: Phase;
  private link: TransportLink | undefined;
  /** The request of the transport in use (or last in use), for the caller context. */
  private requestInUse: ConnectionRequest;
  private transportName: TransportName;
  private pending: Buffer = noBytes;
  /** Messages waiting to be dispatched (made on the first one: an idle connection holds none). */
  private inbox: DispatchQueue | undefined;
  private dispatching = false;
  /** Being handed over to another node: nothing more is dispatched here. */
  declare private handingOver?: boolean;
  private protocolInUse: HubProtocol | undefined;
  private protocolVersion = 1;
  declare private closeError?: Error;
  /** Kept for replay when stateful reconnect was agreed (handshake version 2 over a stateful transport). */
  private buffer: MessageBuffer | undefined;
  /** Writes made before the handshake was answered (while registering), sent right after it. */
  declare private early?: { message: HubMessage; bytes: Buffer | undefined }[];
  /** Messages for an adopted connection whose state has not arrived yet (its protocol is not known). */
  declare private adoptQueue?: HubMessage[];
  /** The lifecycle step waiting on this connection: its handshake, or its resume (or final end). */
  private waiter: ((outcome: boolean | TransportEnd | undefined) => void) | undefined;
  declare private end?: TransportEnd;
  /** When the connection opened, on {@link clockNow}, the clock of the fields below as well. */
  readonly openedAt = clockNow();
  lastSentAt = this.openedAt;
  lastReceivedAt = this.openedAt;
  /** When the transport was lost (detached), for the resume window. */
  detachedAt = 0;
  /** The client timeout is armed by the client's first Ping (older clients never ping). */
  pingReceived = false;
  // Made on first use: most connections never stream, and idle connections should stay small.
  private invocationMap: Map<string, InvocationCancellation> | undefined;
  private uploadMap: Map<string, UploadStream> | undefined;
  declare private itemMap?: Map<string, unknown>;
  private callerContext: HubCallerContext | undefined;
  declare private logFieldValues?: Record<string, unknown>;
  private slotWaiters: (() => void)[] | undefined;
  /** Server invocations the client has been sent and not answered yet (client results), by id. */
  private awaited: Set<string> | undefined;
  /** Invocations running now, against maximumParallelInvocationsPerClient. */
  activeInvocations = 0;

  /**
   * A connection that starts on `transport` (it waits for the handshake), or, without one, a connection
   * another node hands over (`adopt`), whose transport comes with {@link attach}.
   */
  constructor(
    readonly connectionId: string,
    private readonly host: HubConnectionHost,
    start: { transport: TransportConnection } | { adopt: ConnectionRequest },
  ) {
    if ("transport" in start) {
      this.phase = "handshaking";
      this.link = new TransportLink(this, start.transport);
      this.requestInUse = start.transport.request;
      this.transportName = start.transport.transport;
    } else {
      this.phase = "adopting";
      this.requestInUse = start.adopt;
      this.transportName = "WebSockets";
    }
  }

  /** The callbacks the transport calls (for the transport the connection started on). */
  get callbacks(): ConnectionCallbacks {
    return this.link!;
  }

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

  /** The id of this node. */
  get nodeId(): string {
    return this.host.nodeId;
  }

  /** The hub's path. */
  get hub(): string {
    return this.host.hub;
  }

  /** The request that started the transport in use, and that transport's name. */
  get transport(): { readonly transport: TransportName; readonly request: ConnectionRequest } {
    return { transport: this.transportName, request: this.requestInUse };
  }

  get request(): ConnectionRequest {
    return this.requestInUse;
  }

  get protocol(): HubProtocol {
    return this.protocolInUse!;
  }

  /** Whether writes are accepted: from the handshake until the connection ends (buffered while detached). */
  get isConnected(): boolean {
    return this.phase !== "handshaking" && this.phase !== "ended";
  }

  get isHandshaking(): boolean {
    return this.phase === "handshaking";
  }

  /** The handshake is answered and the transport is up: pings and Acks may go out. */
  get isServing(): boolean {
    return (this.phase === "starting" || this.phase === "connected") && this.link !== undefined;
  }

  /** Taken over from another node, waiting for the state it hands over. */
  get isAdopting(): boolean {
    return this.phase === "adopting";
  }

  /** Waiting for its client to come back (stateful reconnect). */
  get isDetached(): boolean {
    return this.phase === "detached";
  }

  /** Whether its transport proves liveness by itself (long polling): no pings, no client timeout. */
  get inherentKeepAlive(): boolean {
    return this.link?.transport.inherentKeepAlive ?? false;
  }

  /** Stateful reconnect is on: the client may come back after its transport drops. */
  get isResumable(): boolean {
    return this.buffer !== undefined && this.phase !== "ended";
  }

  /** Aborted when the connection ends (for good: not when a stateful connection's transport drops). */
  get signal(): AbortSignal {
    if (this.endSignal === undefined) {
      this.endSignal = new AbortController();
      if (this.end !== undefined && this.end.kind !== "moved") this.endSignal.abort(this.closeError);
    }
    return this.endSignal.signal;
  }
  declare private endSignal?: AbortController;

  /** The fields that identify this connection in log events. */
  get ids(): { hub: string; connectionId: string } & Record<string, unknown> {
    return { ...this.logFieldValues, hub: this.host.hub, connectionId: this.connectionId };
  }

  // ---- The lifecycle's steps (see connection-lifecycle.ts) ----

  /** Resolves true once the client's handshake chose a protocol; false when the connection ended first. */
  handshake(): Promise<boolean> {
    if (this.phase !== "handshaking") return Promise.resolve(this.phase === "registering");
    return new Promise((resolve) => (this.waiter = resolve as (outcome: unknown) => void));
  }

  /** Answers the handshake, then sends what was written meanwhile. The client's messages still wait. */
  completeHandshake(): void {
    if (this.phase !== "registering") return;
    this.phase = "starting";
    this.sendRaw(writeHandshakeResponse(), this.protocol.transferFormat);
    const early = this.early;
    if (early === undefined) return; // nothing to clear (an assignment would give it a slot, see above)
    this.early = undefined;
    for (const { message, bytes } of early) this.writeFrame(message, bytes);
  }

  /**
   * The connection is open: the client's messages are dispatched from now on, and the end of its
   * transport is reported to the host. Returns the end when it came while the connection opened.
   */
  startDispatch(): TransportEnd | undefined {
    if (this.phase === "starting") this.phase = "connected";
    // An end that came while the connection opened is the caller's to handle; one that comes from here
    // on (even during this first drain) is reported to the host. Never both.
    const endedMeanwhile: TransportEnd | undefined =
      this.phase === "detached" ? { kind: "lost", error: this.closeError } : this.end;
    this.dispatching = true;
    if (endedMeanwhile === undefined) this.inbox?.run();
    return endedMeanwhile;
  }

  /**
   * While detached: resolves undefined when a new transport is attached (the connection goes on), or with
   * how it ended (the resume window passed, the server closed it, it moved to another node).
   */
  untilResumed(): Promise<TransportEnd | undefined> {
    if (this.phase !== "detached") return Promise.resolve(this.end);
    return new Promise((resolve) => (this.waiter = resolve as (outcome: unknown) => void));
  }

  private wake(outcome: boolean | TransportEnd | undefined): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(outcome);
  }

  /** Tells the host that a serving connection's transport ended (see HubConnectionHost.connectionEnded). */
  private reportEnd(end: TransportEnd): void {
    if (this.dispatching) this.host.connectionEnded(this, end);
  }

  // ---- Transport events ----

  receive(link: TransportLink, chunk: Buffer): void {
    if (link !== this.link || this.phase === "ended") return;
    this.lastReceivedAt = clockNow();
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    try {
      if (this.phase === "handshaking") this.readHandshake();
      // readHandshake may have moved the phase on (TypeScript cannot see that through the call).
      const phase = this.phase as Phase;
      if (phase !== "handshaking" && phase !== "ended" && this.pending.length > 0) {
        const { messages, rest } = this.protocol.parse(
          this.pending,
          this.host.options.maximumReceiveMessageSize,
        );
        this.keepPending(rest);
        if (messages.length > 0) this.accept(messages);
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      if (this.phase === "handshaking") {
        hubLog.handshakeFailed(this.host.log, this.ids, err.message);
        this.failHandshake(`An unexpected error occurred during connection handshake. ${err.message}`);
      } else {
        hubLog.badMessage(this.host.log, this.ids, err.message);
        this.close(`Connection closed with an error. ${err.message}`);
      }
    }
  }

  /** The transport ended. A stateful connection that was serving waits for its client to come back. */
  transportEnded(link: TransportLink, error?: Error): void {
    if (link !== this.link) return;
    this.link = undefined;
    if (this.phase === "ended") return;
    // Only once the handshake was answered: before it, the client cannot resume.
    const canResume = this.buffer !== undefined && (this.phase === "starting" || this.phase === "connected");
    if (!canResume) return this.finish(error);
    this.phase = "detached";
    this.detachedAt = clockNow();
    this.closeError = error;
    hubLog.transportLost(this.host.log, this.ids, error?.message);
    this.reportEnd({ kind: "lost", error });
  }

  /**
   * A new transport for this connection (the client resumed): it replaces the old one, if that one is
   * still open, and the connection goes on where it was. The client sends no handshake: the server
   * announces the first message it replays (Sequence) and sends every one the client has not acknowledged.
   */
  attach(transport: TransportConnection): ConnectionCallbacks {
    const link = new TransportLink(this, transport);
    if (this.phase === "ended" || this.buffer === undefined) {
      // Ended while the upgrade completed: the client learns it from a closed socket and starts anew.
      transport.close();
      return link;
    }
    const old = this.link;
    this.link = link;
    old?.transport.close();
    this.requestInUse = transport.request;
    this.transportName = transport.transport;
    this.pending = noBytes;
    this.lastReceivedAt = clockNow();
    const wasDetached = this.phase === "detached";
    if (wasDetached) this.phase = this.dispatching ? "connected" : "starting";
    const { sequenceId, frames } = this.buffer.resend();
    this.sendRaw(
      this.protocol.write({ type: MessageType.Sequence, sequenceId }),
      this.protocol.transferFormat,
    );
    for (const frame of frames) this.sendRaw(frame, this.protocol.transferFormat);
    hubLog.resumed(this.host.log, this.ids, frames.length);
    if (wasDetached) this.wake(undefined);
    return link;
  }

  /** Closes the transport as lost (a silent client): a stateful connection then waits for its client. */
  dropTransport(error: Error): void {
    const link = this.link;
    if (link === undefined) return;
    link.transport.close();
    this.transportEnded(link, error);
  }

  /** The resume window passed without the client coming back. */
  resumeWindowExpired(): void {
    if (this.phase !== "detached") return;
    hubLog.resumeWindowExpired(this.host.log, this.ids, this.host.options.statefulReconnectWindowMs);
    this.finish(this.closeError);
  }

  // ---- Writing ----

  /** Writes one message to the client; false when it cannot be written (the connection is then closed). */
  write(message: HubMessage): boolean {
    return this.writeFrame(message, undefined);
  }

  /**
   * Sends an Invocation whose answer the server awaits (a client result; its id is the server's). The
   * answer, or the connection's end before it, goes to the host ({@link HubConnectionHost.clientAnswered}).
   */
  askForResult(invocation: HubMessage & { invocationId: string }, bytes: Buffer | undefined): void {
    if (this.phase === "ended") {
      this.host.clientAnswered(this, invocation.invocationId, this.endedOutcome);
      return;
    }
    (this.awaited ??= new Set()).add(invocation.invocationId);
    this.writeFrame(invocation, bytes); // a failure closes the connection, which answers for it
  }

  /** What calls awaiting this connection get when it ends before answering (the .NET text). */
  private get endedOutcome(): AnswerOutcome {
    return { error: `Connection '${this.connectionId}' disconnected.`, connectionEnded: true };
  }

  /**
   * A Completion that answers a server invocation: handed to the host at once, whatever waits in the
   * dispatch queue (an invocation waiting for a slot may be the very one awaiting this answer).
   * Returns false for any other Completion (an upload stream's end), and for an answer already taken.
   */
  private takeAnswer(message: CompletionMessage): boolean {
    const id = message.invocationId;
    if (!isServerInvocationId(id) || this.awaited?.delete(id) !== true) return false;
    const outcome: AnswerOutcome =
      message.error !== undefined ? { error: message.error } : { result: message.result ?? null };
    this.host.clientAnswered(this, id, outcome);
    return true;
  }

  /**
   * Writes a message already serialised with this connection's protocol (`bytes`, shared by every
   * recipient of a broadcast), or serialises it here. Trackable messages of a stateful connection are
   * numbered and kept until acknowledged; while the transport is away they wait in the buffer.
   */
  writeFrame(message: HubMessage, bytes: Buffer | undefined): boolean {
    switch (this.phase) {
      case "ended":
      case "handshaking":
        return false;
      case "registering":
        (this.early ??= []).push({ message, bytes });
        return true;
      case "adopting":
        (this.adoptQueue ??= []).push(message);
        return true;
    }
    const frame = bytes ?? this.protocol.write(message);
    this.lastSentAt = clockNow();
    const buffer = this.buffer;
    if (buffer === undefined || !MessageBuffer.isTrackable(message)) {
      if (this.link === undefined) return true; // a ping or ack while detached: not needed
      return this.sendOrDrop(frame);
    }
    const wasHolding = buffer.isHolding;
    const sendNow = buffer.track(frame);
    if (!sendNow && !wasHolding && this.link !== undefined) {
      hubLog.statefulBufferFull(this.host.log, this.ids, buffer.limitBytes);
    }
    if (buffer.bufferedBytes > this.host.options.statefulReconnectMaxBufferedBytes) {
      hubLog.slowClient(this.host.log, this.ids);
      this.host.metrics.deliveryFailed(this.host.hub, "slow_client");
      this.close(
        "Connection closed with an error. The client did not acknowledge its messages in time.",
        true,
      );
      return false;
    }
    if (!sendNow || this.link === undefined) return true;
    return this.sendOrDrop(frame);
  }

  /** Sends the Ack the client is owed, if any (the keep-alive tick calls this about once a second). */
  sendAckIfDue(): void {
    if (!this.isServing) return;
    const sequenceId = this.buffer?.takeAck();
    if (sequenceId === undefined || this.link === undefined) return;
    this.sendRaw(this.protocol.write({ type: MessageType.Ack, sequenceId }), this.protocol.transferFormat);
  }

  /** Sends a keep-alive ping (bytes serialised once per protocol by the caller). */
  sendPing(bytes: Buffer): void {
    if (this.link === undefined || !this.isServing) return;
    this.lastSentAt = clockNow();
    this.sendOrDrop(bytes);
  }

  private sendOrDrop(frame: Buffer): boolean {
    if (this.sendRaw(frame, this.protocol.transferFormat)) return true;
    if (this.buffer !== undefined) {
      // A stateful connection never has more unacknowledged bytes out than its buffer allows: a refused
      // send means the transport is closing under us. The message is kept; the client may resume.
      this.dropTransport(new Error("The transport refused a send: it is closing."));
      return true;
    }
    hubLog.slowClient(this.host.log, this.ids);
    this.host.metrics.deliveryFailed(this.host.hub, "slow_client");
    this.close("Connection closed with an error. The client did not read its messages fast enough.", true);
    return false;
  }

  private sendRaw(bytes: Buffer, format: "Text" | "Binary"): boolean {
    return this.link?.transport.send(bytes, format) ?? false;
  }

  // ---- Ending ----

  /**
   * Ends the connection from the server, for good: a Close message (with the error text and whether the
   * client may reconnect), then the transport. A stateful client does not resume a connection closed so.
   */
  close(error?: string, allowReconnect = false): void {
    if (this.phase === "ended") return;
    if (error !== undefined) this.closeError ??= new Error(error);
    if (this.phase !== "handshaking" && this.phase !== "registering" && this.link !== undefined) {
      const message: HubMessage = {
        type: MessageType.Close,
        error,
        allowReconnect: allowReconnect || undefined,
      };
      this.sendRaw(this.protocol.write(message), this.protocol.transferFormat);
    }
    this.closeTransport();
    this.finish(this.closeError);
  }

  /** Closes a connection whose handshake never came. */
  handshakeTimedOut(): void {
    hubLog.handshakeTimedOut(this.host.log, this.ids, this.host.options.handshakeTimeoutMs);
    this.closeError = new Error("Handshake was canceled.");
    this.closeTransport();
    this.finish(this.closeError);
  }

  /**
   * Hands the connection over to another node (which the client resumed on): running invocations and
   * streams end with an error the client sees, the old transport closes without a Close message (the
   * client is already elsewhere), and the state to continue with is returned. The connection then ends
   * here without running onDisconnected: it lives on.
   */
  handOver(): ConnectionState | undefined {
    if (this.buffer === undefined || this.phase === "ended" || this.phase === "adopting") return undefined;
    const canceled = (invocationId: string) =>
      this.writeFrame(
        {
          type: MessageType.Completion,
          invocationId,
          error: "The invocation was canceled: the connection moved to another server.",
          hasResult: false,
        },
        undefined,
      );
    for (const [invocationId, cancellation] of this.invocationMap ?? []) {
      cancellation.abort();
      canceled(invocationId);
    }
    this.invocationMap?.clear();
    // One the queue took but that waits for a slot: it will never start here, and its client's replay
    // of it will be dropped as already taken there.
    const waiting = this.inbox?.blockedOn;
    if (waiting?.type === MessageType.Invocation && waiting.invocationId !== undefined) {
      canceled(waiting.invocationId);
    }
    const state: ConnectionState = {
      connectionId: this.connectionId,
      protocol: this.protocol.name,
      protocolVersion: this.protocolVersion,
      items: [...(this.itemMap ?? [])],
      logFields: { ...this.logFieldValues },
      buffer: this.buffer.snapshot(),
      awaitedResults: [...(this.awaited ?? [])],
    };
    this.awaited = undefined; // their answers come to the node the connection moves to
    this.closeTransport();
    this.finishAs({ kind: "moved" });
    return state;
  }

  /**
   * Installs the state the old node handed over (see {@link handOver}); messages delivered here while it
   * travelled follow what it holds. The connection then waits, detached, for its transport ({@link attach}).
   * @returns false when the state cannot be used here (an unknown protocol).
   */
  install(state: ConnectionState): boolean {
    if (this.phase !== "adopting") return false;
    const protocol = this.host.resolveProtocol(state.protocol);
    if (!protocol) return false;
    this.protocolInUse = protocol;
    this.protocolVersion = state.protocolVersion;
    for (const [key, value] of state.items) this.items.set(key, value);
    if (Object.keys(state.logFields).length > 0) Object.assign(this.logFields, state.logFields);
    this.buffer = MessageBuffer.restore(this.host.options.statefulReconnectBufferSize, state.buffer);
    if (state.awaitedResults.length > 0) {
      const awaited = (this.awaited ??= new Set());
      for (const id of state.awaitedResults) awaited.add(id);
    }
    this.phase = "detached";
    this.detachedAt = clockNow();
    this.dispatching = true;
    const queued = this.adoptQueue;
    this.adoptQueue = undefined;
    for (const message of queued ?? []) this.writeFrame(message, undefined);
    return true;
  }

  /** The takeover failed before the state arrived: this node forgets the connection. */
  abandon(): void {
    if (this.phase !== "adopting") return;
    // This node's own client-result invocations, sent to it meanwhile, never reach the client.
    const text = `Connection '${this.connectionId}' could not be reached: its move to this server failed.`;
    for (const id of this.awaited ?? []) {
      this.host.clientAnswered(this, id, { error: text, connectionEnded: true });
    }
    this.awaited = undefined;
    this.finishAs({ kind: "moved" });
  }

  private closeTransport(): void {
    const link = this.link;
    this.link = undefined;
    link?.transport.close();
  }

  private finish(error: Error | undefined): void {
    this.closeError ??= error;
    this.finishAs({ kind: "closed", error: this.closeError });
  }

  private finishAs(end: TransportEnd): void {
    if (this.phase === "ended") return;
    const from = this.phase;
    this.phase = "ended";
    this.end = end;
    for (const upload of this.uploadMap?.values() ?? []) upload.end("The connection was closed.");
    for (const invocation of this.invocationMap?.values() ?? []) invocation.abort();
    for (const wake of this.slotWaiters?.splice(0) ?? []) wake();
    this.inbox?.clear();
    this.early = undefined;
    this.adoptQueue = undefined;
    if (end.kind !== "moved") {
      this.endSignal?.abort(end.error);
      const awaited = this.awaited;
      this.awaited = undefined;
      for (const id of awaited ?? []) this.host.clientAnswered(this, id, this.endedOutcome);
    }
    if (from === "handshaking") this.wake(false);
    else if (from === "detached") this.wake(end);
    else this.reportEnd(end);
  }

  // ---- Reading ----

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
    const transport = this.link!.transport;
    if (protocol.transferFormat === "Binary" && !transport.supportsBinary) {
      return this.failHandshake(
        `Cannot use the '${request.protocol}' protocol on the current transport. The transport does not support 'Binary' transfer format.`,
      );
    }
    this.protocolInUse = protocol;
    this.protocolVersion = request.version;
    // Stateful reconnect needs both: negotiate agreed to it, and the client speaks version 2.
    if (transport.statefulReconnect && request.version >= 2) {
      this.buffer = new MessageBuffer(this.host.options.statefulReconnectBufferSize);
    }
    this.phase = "registering";
    hubLog.handshakeComplete(this.host.log, this.ids, protocol.name, transport.transport);
    this.wake(true);
  }

  /** Keeps the bytes of an incomplete message; none keeps no buffer (an empty slice would hold the chunk). */
  private keepPending(rest: Buffer): void {
    this.pending = rest.length === 0 ? noBytes : rest;
  }

  private failHandshake(reason: string): void {
    hubLog.handshakeFailed(this.host.log, this.ids, reason);
    this.closeError = new Error(reason);
    this.link?.transport.send(writeHandshakeResponse(reason), "Text");
    this.closeTransport();
    this.finish(this.closeError);
  }

  /**
   * Takes the parsed messages: Acks at once (they free room for held messages), everything else into the
   * dispatch queue, in order (a Sequence too: it rewinds the count of what the queue's messages take).
   */
  private accept(messages: HubMessage[]): void {
    const buffer = this.buffer;
    let queued: HubMessage[] | undefined;
    for (const message of messages) {
      if (buffer === undefined) {
        // Not a stateful connection: Ack and Sequence mean nothing here, as in ASP.NET Core.
        if (message.type === MessageType.Ack || message.type === MessageType.Sequence) continue;
        if (message.type === MessageType.Completion && this.takeAnswer(message)) continue;
        (queued ??= []).push(message);
        continue;
      }
      if (!buffer.admit(message)) continue;
      // An answer is taken now, and still queued: it is counted, in order, like every trackable message.
      if (message.type === MessageType.Completion) this.takeAnswer(message);
      if (message.type === MessageType.Ack) {
        if (!buffer.ack(message.sequenceId)) {
          return this.close(
            "Connection closed with an error. The client acknowledged messages it never received.",
          );
        }
        for (const frame of buffer.takeSendable()) this.sendOrDrop(frame);
        continue;
      }
      (queued ??= []).push(message);
    }
    if (queued === undefined) {
      if (this.dispatching) this.inbox?.run(); // acks may have made room
      return;
    }
    this.enqueue(queued);
  }

  private enqueue(messages: HubMessage[]): void {
    const inbox = (this.inbox ??= new DispatchQueue(this));
    // A client that sends faster than its invocations finish is closed rather than buffered without end.
    if (inbox.length + messages.length > maxQueuedMessages) {
      hubLog.tooManyMessages(this.host.log, this.ids, maxQueuedMessages);
      this.close(
        `Connection closed with an error. The client sent more than ${maxQueuedMessages} messages ahead of the hub.`,
      );
      return;
    }
    inbox.push(messages);
    this.host.metrics.messagesReceived(this.host.hub, messages.length);
    if (this.dispatching) inbox.run();
  }

  // ---- The dispatch queue's questions (QueueOwner) ----

  /**
   * Whether queued messages may be dispatched now: not while a stateful connection's buffer is full
   * (backpressure: the client's next calls wait until it has acknowledged what it was sent), nor while
   * the connection is handed over to another node.
   */
  get mayDispatch(): boolean {
    return this.dispatching && !this.handingOver && this.phase !== "ended" && !this.buffer?.isHolding;
  }

  dispatch(message: HubMessage): Promise<void> | undefined {
    return this.host.dispatch(this, message);
  }

  dispatchFailed(err: unknown): void {
    hubLog.methodFailed(this.host.log, this.ids, "(dispatch)", err);
    this.close("Connection closed with an error.", true);
  }

  /**
   * A message taken for dispatch. On a stateful connection it is counted: a Sequence rewinds the count
   * (and is not dispatched), a replayed message already taken is dropped. Returns whether to dispatch.
   */
  takeForDispatch(message: HubMessage): boolean {
    const buffer = this.buffer;
    if (buffer === undefined) return true;
    if (message.type === MessageType.Sequence) {
      if (!buffer.resetSequence(message.sequenceId)) {
        this.close(
          "Connection closed with an error. Sequence ID greater than amount of messages we've received.",
        );
      }
      return false;
    }
    return buffer.take(message);
  }

  // ---- Handing over to another node ----

  /**
   * Gets ready to move to another node: no new message is dispatched, and this resolves once the
   * invocations running now have finished (so what they send is written before the move), or after
   * `timeoutMs`. Resolves false when the connection cannot move (it ended, or is not stateful).
   */
  async prepareHandOver(timeoutMs: number): Promise<boolean> {
    if (!this.isResumable || this.phase === "adopting") return false;
    this.handingOver = true;
    // Polled: a move is rare. It waits for onConnected (what it writes to the caller must be written
    // here), for the invocations running, and for one waiting for a slot (it starts, and must finish, too).
    const deadline = Date.now() + timeoutMs;
    const busy = () => !this.dispatching || this.activeInvocations > 0 || this.inbox?.blockedOn !== undefined;
    while (busy() && this.phase !== "ended" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return this.isResumable && this.dispatching;
  }

  /** The move did not happen: the connection goes on here. */
  cancelHandOver(): void {
    if (!this.handingOver) return;
    this.handingOver = false;
    if (this.dispatching) this.inbox?.run();
  }

  // ---- Invocation slots ----

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
}

/** Messages a client may have waiting for dispatch (ASP.NET Core pauses reading at 64 KB instead). */
const maxQueuedMessages = 1_000;
