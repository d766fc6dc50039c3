import { randomUUID } from "node:crypto";
import {
  canStoreMessages,
  keepsPendingNotifications,
  type BackplaneMessage,
  type PendingNotificationStore,
  type PublishResult,
  type SendTarget,
} from "../backplane/backplane.js";
import { NotConfirmedError, NotConnectedError, UnknownStatusError } from "./notification-errors.js";
import {
  defaultNotificationOptions,
  identifierGroup,
  validIdentifier,
  type NotificationOptions,
} from "./notification-options.js";

/** What a notifier sends through: a node's backplane, or an out-of-process publisher. */
export interface NotificationSender {
  publish(target: SendTarget, message: BackplaneMessage): Promise<PublishResult>;
  groupMembers(hub: string, group: string): Promise<string[]>;
}

/** A status from the configured templates, or a free text. */
export type Notification = { status: string } | { message: string };

export interface NotifyOptions {
  /**
   * What to do when no connection holds the identifier: "error" (default) throws NotConnectedError;
   * "store" keeps the notification (for the configured TTL) and delivers it when the identifier registers.
   */
  ifOffline?: "error" | "store";
  /**
   * Resolve only once a client registered under the identifier has run its handler and answered (a client
   * result): the handler gets `(text, { id })` and confirms by returning (anything). The notification is
   * kept in the backplane (PostgreSQL) until then, and delivered again to each connection that registers
   * the identifier, on any node, also after the node that held the client died. Rejects with
   * NotConfirmedError after `confirmTimeoutMs` (the notification stays pending). Nodes only: a publisher
   * from another process cannot await client results.
   */
  confirm?: boolean;
  /** With `confirm`: how long to wait; default the notification options' `confirmTimeoutMs`. */
  confirmTimeoutMs?: number;
}

/** Asks one connection for a client result (a node's hub context), resolving with its answer. */
export type ClientInvoker = (
  connectionId: string,
  method: string,
  args: unknown[],
  timeoutMs: number,
) => Promise<unknown>;

export interface NotifyResult {
  identifier: string;
  /** The text the client received (or will receive). */
  text: string;
  /**
   * Connections the notification was addressed to, and the nodes holding them (with `confirm`: the
   * connections asked, and `nodes` is not counted: 0).
   */
  connections: number;
  nodes: number;
  /** True when nobody was connected and the notification was stored for later. */
  stored: boolean;
  /** With `confirm`: the notification's id (the client's handler gets it too), and who confirmed it. */
  notificationId?: string;
  confirmedBy?: string;
}

export interface Presence {
  identifier: string;
  connected: boolean;
  connectionIds: string[];
}

/** How often a confirmed notify looks for a confirmation made on another node. */
const CONFIRMATION_POLL_MS = 250;

/**
 * Notifies an identifier's connections, wherever they are: the heart of the notification service.
 * Works from a hub method, from server code, from another process (with a publisher) and behind the HTTP API.
 */
export class Notifier {
  constructor(
    private readonly sender: NotificationSender,
    readonly options: NotificationOptions,
    /** A node's way to ask a connection for a client result; without it, `confirm` is refused. */
    private readonly invoke?: ClientInvoker,
  ) {}

  /** The text a notification becomes. @throws UnknownStatusError for a status without a template. */
  textOf(identifier: string, notification: Notification): string {
    if ("message" in notification) return notification.message;
    const template = this.options.statuses[notification.status];
    if (template === undefined)
      throw new UnknownStatusError(notification.status, Object.keys(this.options.statuses));
    return template.replaceAll("{identifier}", identifier);
  }

  /**
   * Sends the notification to every connection that registered `identifier`, on any node.
   * @throws NotConnectedError when nobody holds it (unless `ifOffline: "store"`).
   */
  async notify(
    identifier: string,
    notification: Notification,
    options: NotifyOptions = {},
  ): Promise<NotifyResult> {
    if (!validIdentifier(identifier))
      throw new TypeError("An identifier is a non-empty string of at most 256 characters.");
    const text = this.textOf(identifier, notification);
    if (options.confirm) return this.notifyConfirmed(identifier, text, options);
    const message: BackplaneMessage = { target: this.options.clientMethod, arguments: [text] };
    const { path } = this.options;
    const target: SendTarget = { kind: "groups", hub: path, groups: [identifierGroup(identifier)] };
    const reached = await this.sender.publish(target, message);
    if (reached.connections > 0) return { identifier, text, ...reached, stored: false };
    if (options.ifOffline === "store") {
      if (!canStoreMessages(this.sender))
        throw new Error("This backplane cannot store notifications for later.");
      await this.sender.storeMessage(path, identifier, message, this.options.offlineTtlMs);
      // The identifier may have registered between our send and our store, and taken nothing: if it is
      // here now, take what was stored and send it, so nothing waits for a registration that already came.
      const presence = await this.presence(identifier);
      if (presence.connected) {
        const stored = await this.sender.takeStoredMessages(path, identifier);
        let late = { connections: 0, nodes: 0 };
        for (const message of stored) late = await this.sender.publish(target, message);
        if (stored.length > 0) return { identifier, text, ...late, stored: false };
      }
      return { identifier, text, connections: 0, nodes: 0, stored: true };
    }
    throw new NotConnectedError(identifier);
  }

  /**
   * The confirmed path: keep the notification, ask every connection that holds the identifier now, and
   * resolve with the first confirmation, wherever it happens (a connection that registers on another node
   * meanwhile is sent the kept notification by the hub, and confirms there).
   */
  private async notifyConfirmed(
    identifier: string,
    text: string,
    options: NotifyOptions,
  ): Promise<NotifyResult> {
    const store = this.sender;
    if (this.invoke === undefined || !keepsPendingNotifications(store)) {
      throw new Error(
        "notify with confirm needs a node (server.notifications) whose backplane keeps pending notifications.",
      );
    }
    const timeoutMs = options.confirmTimeoutMs ?? this.options.confirmTimeoutMs;
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0))
      throw new RangeError("confirmTimeoutMs must be a positive number of milliseconds.");
    const { connectionIds } = await this.presence(identifier);
    if (connectionIds.length === 0 && options.ifOffline !== "store") throw new NotConnectedError(identifier);
    const id = randomUUID();
    const message: BackplaneMessage = { target: this.options.clientMethod, arguments: [text, { id }] };
    await store.addPendingNotification(this.options.path, identifier, id, message, this.options.offlineTtlMs);
    const confirmedBy = await this.firstConfirmation(
      store,
      identifier,
      id,
      message,
      connectionIds,
      timeoutMs,
    );
    return {
      identifier,
      text,
      connections: connectionIds.length,
      nodes: 0,
      stored: connectionIds.length === 0,
      notificationId: id,
      confirmedBy,
    };
  }

  private firstConfirmation(
    store: PendingNotificationStore,
    identifier: string,
    id: string,
    message: BackplaneMessage,
    connectionIds: string[],
    timeoutMs: number,
  ): Promise<string> {
    const { path } = this.options;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (end: () => void) => {
        if (settled) return;
        settled = true;
        clearInterval(poll);
        clearTimeout(timer);
        end();
      };
      for (const connectionId of connectionIds) {
        this.invoke!(connectionId, message.target, message.arguments, timeoutMs)
          .then(() => store.confirmNotification(path, id, connectionId))
          .then(
            (winner) => {
              if (winner !== undefined) settle(() => resolve(winner));
            },
            // No answer from this one, or its confirmation could not be written: another connection, the
            // next registration, or the poll below (once the backplane is back) may still settle it.
            () => {},
          );
      }
      // A confirmation made elsewhere (by a connection that registered on another node) is in the store.
      const poll = setInterval(() => {
        store.notificationConfirmation(path, id).then(
          (state) => {
            if (state.state === "confirmed") settle(() => resolve(state.connectionId));
          },
          () => {}, // the backplane is unavailable for now: ask again at the next tick
        );
      }, CONFIRMATION_POLL_MS);
      const timer = setTimeout(
        () => settle(() => reject(new NotConfirmedError(identifier, id, timeoutMs))),
        timeoutMs,
      );
    });
  }

  /** Which connections hold an identifier now. */
  async presence(identifier: string): Promise<Presence> {
    const connectionIds = await this.sender.groupMembers(this.options.path, identifierGroup(identifier));
    return { identifier, connected: connectionIds.length > 0, connectionIds };
  }
}

/**
 * A notifier for code that is not a node: give it an out-of-process publisher (`createPublisher` from
 * "switchboard/postgres") and the same notification options the nodes use.
 *
 * @example
 * const notifier = createNotifier(createPublisher({ connectionString }));
 * await notifier.notify("order-42", { status: "Confirmed" });
 */
export function createNotifier(
  sender: NotificationSender,
  options: Partial<NotificationOptions> = {},
): Notifier {
  return new Notifier(sender, {
    ...defaultNotificationOptions,
    ...options,
    statuses: { ...defaultNotificationOptions.statuses, ...options.statuses },
  });
}
