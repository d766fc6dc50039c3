/** Settings of the built-in notification service. Every field has a default. */
export interface NotificationOptions {
  /** Where the notification hub is served. Default "/hubs/notifications". */
  path: string;
  /** The client method notifications invoke, with the message text as its one argument. Default "addMessage". */
  clientMethod: string;
  /** Named message templates; `{identifier}` in a text is replaced. Default: Confirmed and Failed. */
  statuses: Record<string, string>;
  /**
   * Who may register which identifier. Default: an authenticated connection may register its own user id
   * only, and an anonymous one nothing (unless `allowAnonymousRegistration`).
   */
  canRegister?: (
    identity: { userId: string | undefined; claims: Readonly<Record<string, unknown>> | undefined },
    identifier: string,
  ) => boolean | Promise<boolean>;
  /** Lets anyone register any identifier. Only for demos: anyone could read anyone's notifications. Default false. */
  allowAnonymousRegistration: boolean;
  /** How long a notification stored for an offline identifier, or waiting for a confirmation, is kept. Default 24 h. */
  offlineTtlMs: number;
  /** How long `notify(…, { confirm: true })` waits for a client's confirmation before it rejects. Default 30 000 ms. */
  confirmTimeoutMs: number;
}

export const defaultStatuses: Readonly<Record<string, string>> = {
  Confirmed: "Your request has been confirmed.",
  Failed: "Your request has failed.",
};

export const defaultNotificationOptions: NotificationOptions = {
  path: "/hubs/notifications",
  clientMethod: "addMessage",
  statuses: { ...defaultStatuses },
  allowAnonymousRegistration: false,
  offlineTtlMs: 24 * 60 * 60 * 1000,
  confirmTimeoutMs: 30_000,
};

/** The group that holds an identifier's connections. */
export function identifierGroup(identifier: string): string {
  return `identifier:${identifier}`;
}

/** Checks identifiers: non-empty, at most 256 characters, no control characters. */
export function validIdentifier(identifier: unknown): identifier is string {
  if (typeof identifier !== "string" || identifier.length === 0 || identifier.length > 256) return false;
  for (let i = 0; i < identifier.length; i++) {
    const code = identifier.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return false;
  }
  return true;
}
