/** `notify` for an identifier that no connection has registered (and the sender did not ask to store it). */
export class NotConnectedError extends Error {
  readonly code = "not_connected";
  constructor(readonly identifier: string) {
    super(
      `No connection for identifier '${identifier}': nobody has registered it, or all its connections have ended.`,
    );
    this.name = "NotConnectedError";
  }
}

/** `notify` with a status that has no template. */
export class UnknownStatusError extends Error {
  readonly code = "unknown_status";
  constructor(
    readonly status: string,
    readonly known: readonly string[],
  ) {
    super(`Unknown status '${status}'. Known statuses: ${known.join(", ")}.`);
    this.name = "UnknownStatusError";
  }
}

/** `register` of an identifier the connection may not register (someone else's, or anonymous when not allowed). */
export class RegistrationRefusedError extends Error {
  readonly code = "registration_refused";
  constructor(readonly identifier: string) {
    super(`This connection may not register identifier '${identifier}'.`);
    this.name = "RegistrationRefusedError";
  }
}

/**
 * `notify` with `confirm` when no client confirmed in time. The notification is not lost: it stays pending
 * and is delivered again to each connection that registers the identifier, until one confirms it.
 */
export class NotConfirmedError extends Error {
  readonly code = "not_confirmed";
  constructor(
    readonly identifier: string,
    readonly notificationId: string,
    readonly timeoutMs: number,
  ) {
    super(
      `No client confirmed notification ${notificationId} for identifier '${identifier}' within ${timeoutMs} ms; it stays pending and is delivered again when the identifier registers.`,
    );
    this.name = "NotConfirmedError";
  }
}
