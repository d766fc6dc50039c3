import { canStoreMessages, keepsPendingNotifications, type Backplane } from "../backplane/backplane.js";
import { Hub } from "../hub/hub.js";
import { RegistrationRefusedError } from "./notification-errors.js";
import { identifierGroup, validIdentifier, type NotificationOptions } from "./notification-options.js";
import { HubError } from "../hub/hub-error.js";

/**
 * The built-in notification hub: a client calls `register(identifier)` (the write-up's `registerClient`) and
 * from then on receives `addMessage(text)` for every notification sent to that identifier, from any node
 * (`addMessage(text, { id })` for one that waits for a confirmation: the handler's answer confirms it).
 * One identifier may have many connections (tabs, devices): all of them are notified.
 */
export function createNotificationHub(options: NotificationOptions, backplane: Backplane) {
  const mayRegister = async (hub: Hub, identifier: string): Promise<boolean> => {
    if (options.allowAnonymousRegistration) return true;
    const { userId, auth } = hub.context;
    if (options.canRegister) return options.canRegister({ userId, claims: auth }, identifier);
    return userId !== undefined && userId === identifier;
  };

  return class NotificationHub extends Hub {
    /** Registers this connection under `identifier`, and delivers what was stored for it while it was away. */
    async register(
      identifier: unknown,
    ): Promise<{ identifier: string; connectionId: string; nodeId: string }> {
      if (!validIdentifier(identifier))
        throw new HubError("An identifier is a non-empty string of at most 256 characters.");
      if (!(await mayRegister(this, identifier)))
        throw new HubError(new RegistrationRefusedError(identifier).message);
      await this.groups.add(this.context.connectionId, identifierGroup(identifier));
      // A delivery that fails on this connection is then logged with the identifiers it was for.
      const registered = (this.context.logFields.identifiers as string[] | undefined) ?? [];
      if (!registered.includes(identifier)) this.context.logFields.identifiers = [...registered, identifier];
      if (canStoreMessages(backplane)) {
        for (const message of await backplane.takeStoredMessages(options.path, identifier)) {
          await this.clients.caller.send(message.target, ...message.arguments);
        }
      }
      if (keepsPendingNotifications(backplane)) {
        // Notifications waiting for a confirmation: this connection is asked, without holding up register.
        const connectionId = this.context.connectionId;
        for (const { id, message } of await backplane.pendingNotifications(options.path, identifier)) {
          this.clients.caller
            .invoke(message.target, ...message.arguments)
            .then(() => backplane.confirmNotification(options.path, id, connectionId))
            .catch(() => {}); // not confirmed here: it stays pending for the next registration
        }
      }
      return { identifier, connectionId: this.context.connectionId, nodeId: this.context.nodeId };
    }

    /** Where this connection is: its id and the node that holds it (for pages that show the cluster). */
    whereAmI(): { connectionId: string; nodeId: string } {
      return { connectionId: this.context.connectionId, nodeId: this.context.nodeId };
    }

    /** Stops receiving notifications for `identifier` on this connection. */
    async unregister(identifier: unknown): Promise<void> {
      if (!validIdentifier(identifier))
        throw new HubError("An identifier is a non-empty string of at most 256 characters.");
      await this.groups.remove(this.context.connectionId, identifierGroup(identifier));
      const registered = (this.context.logFields.identifiers as string[] | undefined) ?? [];
      this.context.logFields.identifiers = registered.filter((id) => id !== identifier);
    }
  };
}
