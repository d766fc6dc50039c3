/**
 * An error whose message a hub method means the client to see (ASP.NET Core's HubException).
 * Other errors reach the client only as a generic text, unless detailed errors are on.
 */
export class HubError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HubError";
  }
}
