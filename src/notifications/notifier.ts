import {
  canStoreMessages,
  type BackplaneMessage,
  type PublishResult,
  type SendTarget,
} from "../backplane/backplane.js";
import { NotConnectedError, UnknownStatusError } from "./notification-errors.js";
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
}

export interface NotifyResult {
  identifier: string;
  /** The text the client received (or will receive). */
  text: string;
  /** Connections the notification was addressed to, and the nodes holding them. */
  connections: number;
  nodes: number;
  /** True when nobody was connected and the notification was stored for later. */
  stored: boolean;
}

export interface Presence {
  identifier: string;
  connected: boolean;
  connectionIds: string[];
}

/**
 * Notifies an identifier's connections, wherever they are: the heart of the notification service.
 * Works from a hub method, from server code, from another process (with a publisher) and behind the HTTP API.
 */
export class Notifier {
  constructor(
    private readonly sender: NotificationSender,
    readonly options: NotificationOptions,
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
