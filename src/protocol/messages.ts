/**
 * The SignalR hub message model (HubProtocol.md in the ASP.NET Core specs).
 * Pure data: no I/O, no timers. Wire type ids are the numbers in {@link MessageType}.
 */

/** The wire type id of each hub message. */
export const MessageType = {
  Invocation: 1,
  StreamItem: 2,
  Completion: 3,
  StreamInvocation: 4,
  CancelInvocation: 5,
  Ping: 6,
  Close: 7,
  Ack: 8,
  Sequence: 9,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Optional string headers that may accompany messages 1–5; readers ignore the ones they do not know. */
export type MessageHeaders = Record<string, string>;

export interface InvocationMessage {
  type: typeof MessageType.Invocation;
  headers?: MessageHeaders;
  /** Present for blocking invocations (and server-to-client invocations that expect a result). */
  invocationId?: string;
  target: string;
  arguments: unknown[];
  streamIds?: string[];
}

export interface StreamItemMessage {
  type: typeof MessageType.StreamItem;
  headers?: MessageHeaders;
  invocationId: string;
  item: unknown;
}

/**
 * The end of an invocation or a stream. Exactly one of three shapes:
 * an error (`error` set), a value (`hasResult` true, `result` may be null), or void (neither).
 */
export interface CompletionMessage {
  type: typeof MessageType.Completion;
  headers?: MessageHeaders;
  invocationId: string;
  error?: string;
  result?: unknown;
  /** True when `result` carries a value (even `null`); false for a void completion. */
  hasResult: boolean;
}

export interface StreamInvocationMessage {
  type: typeof MessageType.StreamInvocation;
  headers?: MessageHeaders;
  invocationId: string;
  target: string;
  arguments: unknown[];
  streamIds?: string[];
}

export interface CancelInvocationMessage {
  type: typeof MessageType.CancelInvocation;
  headers?: MessageHeaders;
  invocationId: string;
}

export interface PingMessage {
  type: typeof MessageType.Ping;
}

export interface CloseMessage {
  type: typeof MessageType.Close;
  error?: string;
  allowReconnect?: boolean;
}

export interface AckMessage {
  type: typeof MessageType.Ack;
  sequenceId: number;
}

export interface SequenceMessage {
  type: typeof MessageType.Sequence;
  sequenceId: number;
}

export type HubMessage =
  | InvocationMessage
  | StreamItemMessage
  | CompletionMessage
  | StreamInvocationMessage
  | CancelInvocationMessage
  | PingMessage
  | CloseMessage
  | AckMessage
  | SequenceMessage;
