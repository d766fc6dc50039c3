// A hub modelled on the official functional tests' TestHub (aspnetcore src/SignalR/clients/ts/FunctionalTests),
// written the way a Switchboard user writes hubs: camelCase methods, which clients call by their PascalCase names.
import { Hub, HubError } from "../../src/index.js";

/** .NET's exception name, so error texts read as the functional tests expect. */
class InvalidOperationException extends Error {
  override name = "InvalidOperationException";
}

const delay = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

export class TestHub extends Hub {
  echo(message: string): string {
    return message;
  }

  getCallerConnectionId(): string {
    return this.context.connectionId;
  }

  throwException(message: string): never {
    throw new InvalidOperationException(message);
  }

  throwHubException(message: string): never {
    throw new HubError(message);
  }

  async invokeWithString(message: string): Promise<void> {
    await this.clients.caller.send("Message", message);
  }

  async sendCustomObject(customObject: unknown): Promise<void> {
    await this.clients.caller.send("CustomObject", customObject);
  }

  async *stream(): AsyncGenerator<string> {
    yield "a";
    yield "b";
    yield "c";
  }

  async *infiniteStream(): AsyncGenerator<number> {
    try {
      for (let i = 0; !this.signal.aborted; i++) {
        yield i;
        await delay(20, this.signal);
      }
    } finally {
      await this.clients.caller.send("StreamCanceled");
    }
  }

  async streamingConcat(stream: AsyncIterable<string>): Promise<string> {
    let result = "";
    for await (const item of stream) result += item;
    return result;
  }

  async *emptyStream(): AsyncGenerator<never> {}

  // eslint-disable-next-line require-yield -- it throws before its first item
  async *streamThrowException(message: string): AsyncGenerator<never> {
    throw new InvalidOperationException(message);
  }

  async *streamThenThrow(message: string): AsyncGenerator<string> {
    yield "first";
    throw new InvalidOperationException(message);
  }

  getActiveTransportName(): string {
    return this.context.transport;
  }

  echoComplexObject(complexObject: unknown): unknown {
    return complexObject;
  }

  sendComplexObject(): unknown {
    return {
      ByteArray: new Uint8Array([1, 2, 3]),
      DateTime: new Date(Date.UTC(2000, 0, 1)),
      Guid: "00010203-0405-0607-0706-050403020100",
      IntArray: [1, 2, 3],
      String: "hello world",
    };
  }

  getContentTypeHeader(): string | null {
    return (this.context.headers["content-type"] as string | undefined) ?? null;
  }

  getHeader(name: string): string | null {
    const value = this.context.headers[name.toLowerCase()];
    return (Array.isArray(value) ? value.join(", ") : value) ?? null;
  }

  getCookie(name: string): string | null {
    const cookies = this.context.headers.cookie ?? "";
    for (const pair of cookies.split(";")) {
      const [key, ...rest] = pair.trim().split("=");
      if (key === name) return rest.join("=");
    }
    return null;
  }

  getQuery(name: string): string | null {
    return this.context.query.get(name);
  }

  add(a: number, b: number): number {
    return a + b;
  }

  returnsNull(): null {
    return null;
  }

  noResult(): void {}

  async slow(ms: number): Promise<string> {
    await delay(ms);
    return "done";
  }
}
