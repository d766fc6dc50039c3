// The official client's functional-test scenarios, against our TestHub, on every transport and protocol.
import { Subject } from "@microsoft/signalr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient, transportMatrix, type TestClient } from "../support/hub-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";
import { TestHub } from "../hubs/test-hub.js";

let server: RunningServer;
let plain: RunningServer;

beforeAll(async () => {
  server = await startServer({ hubs: { "/testhub": TestHub }, enableDetailedErrors: true });
  plain = await startServer({ hubs: { "/testhub": TestHub } });
});
afterAll(async () => {
  await server.close();
  await plain.close();
});

describe.each(transportMatrix)("over $transport with $protocol", ({ transport, protocol }) => {
  let client: TestClient;
  const invoke = <T = unknown>(method: string, ...args: unknown[]) =>
    client.connection.invoke<T>(method, ...args);

  beforeAll(async () => {
    client = await connectClient(server.url("/testhub"), ["Message", "CustomObject", "StreamCanceled"], {
      transport,
      protocol,
    });
  });
  afterAll(() => client.stop());

  it("echoes a string", async () => {
    expect(await invoke("Echo", "hello world")).toBe("hello world");
  });

  it("carries unicode, nested objects, arrays, null and numbers unchanged", async () => {
    const value = {
      text: "héllo wörld ✓ 你好 🚀",
      list: [1, 2.5, -3, null, "x"],
      nested: { empty: {}, none: null, flag: true },
    };
    expect(await invoke("EchoComplexObject", value)).toEqual(value);
    expect(await invoke("Echo", null)).toBeNull();
    expect(await invoke("EchoComplexObject", [])).toEqual([]);
  });

  it("carries a large payload below the size limit", async () => {
    const text = "x".repeat(30_000);
    expect(await invoke("Echo", text)).toBe(text);
  });

  it("tells the caller its connection id", async () => {
    expect(await invoke("GetCallerConnectionId")).toBe(client.connection.connectionId);
  });

  it("finds methods whatever the case of their name", async () => {
    expect(await invoke("add", 2, 3)).toBe(5);
    expect(await invoke("ADD", 2, 3)).toBe(5);
  });

  it("tells apart a null result and no result", async () => {
    expect(await invoke("ReturnsNull")).toBeNull();
    expect(await invoke("NoResult")).toBeFalsy();
  });

  it("reports an exception with its type and message when detailed errors are on", async () => {
    await expect(invoke("ThrowException", "An error occurred.")).rejects.toThrow(
      /^An unexpected error occurred invoking 'ThrowException' on the server\. InvalidOperationException: An error occurred\.$/,
    );
  });

  it("reports an unknown method", async () => {
    await expect(invoke("NotAMethod")).rejects.toThrow(/^Unknown hub method 'NotAMethod'$/);
  });

  it("reports a wrong number of arguments", async () => {
    await expect(invoke("Add", 1)).rejects.toThrow(
      /^Failed to invoke 'Add' due to an error on the server\. InvalidDataException: Invocation provides 1 argument\(s\) but target expects 2\.$/,
    );
  });

  it("invokes a client method on the caller from a hub method", async () => {
    await invoke("InvokeWithString", "message from the hub");
    expect(await client.next("Message", 1)).toEqual(["message from the hub"]);
  });

  it("sends a custom object to the caller", async () => {
    await invoke("SendCustomObject", { Name: "test", Value: 42 });
    expect(await client.next("CustomObject", 1)).toEqual([{ Name: "test", Value: 42 }]);
  });

  it("streams items to the client", async () => {
    expect(await collect(client, "Stream")).toEqual(["a", "b", "c"]);
  });

  it("completes an empty stream", async () => {
    expect(await collect(client, "EmptyStream")).toEqual([]);
  });

  it("reports a stream that throws before its first item", async () => {
    await expect(collect(client, "StreamThrowException", "Error occurred while streaming.")).rejects.toThrow(
      /^An unexpected error occurred invoking 'StreamThrowException' on the server\. InvalidOperationException: Error occurred while streaming\.$/,
    );
  });

  it("reports a stream that throws after it started", async () => {
    await expect(collect(client, "StreamThenThrow", "late")).rejects.toThrow(
      /^An error occurred on the server while streaming results\. InvalidOperationException: late$/,
    );
  });

  it("stops an infinite stream when the client cancels it", async () => {
    let received = 0;
    let threeItems!: () => void;
    const streaming = new Promise<void>((resolve) => (threeItems = resolve));
    const subscription = client.connection.stream("InfiniteStream").subscribe({
      next: () => ++received === 3 && threeItems(),
      error: () => undefined,
      complete: () => undefined,
    });
    await streaming;
    subscription.dispose();
    expect(await client.next("StreamCanceled", 1)).toEqual([]);
  });

  it("refuses to invoke a streaming method as a plain call, and the reverse", async () => {
    await expect(invoke("Stream")).rejects.toThrow(
      /^The client attempted to invoke the streaming 'Stream' method with a non-streaming invocation\.$/,
    );
    await expect(collect(client, "Echo", "x")).rejects.toThrow(
      /^The client attempted to invoke the non-streaming 'Echo' method with a streaming invocation\.$/,
    );
  });

  it("reads a client-to-server stream", async () => {
    const subject = new Subject<string>();
    const result = invoke("StreamingConcat", subject);
    for (const part of ["a", "b", "c", "d"]) subject.next(part);
    subject.complete();
    expect(await result).toBe("abcd");
  });

  it("passes a client-side stream error to the hub method", async () => {
    const subject = new Subject<string>();
    const result = invoke("StreamingConcat", subject);
    subject.next("a");
    subject.error(new Error("client gave up"));
    await expect(result).rejects.toThrow(
      /^An unexpected error occurred invoking 'StreamingConcat' on the server\. HubException: client gave up$/,
    );
  });

  it("names the transport in use", async () => {
    expect(await invoke("GetActiveTransportName")).toBe(transport);
  });

  it("sends dates and bytes as the protocol represents them", async () => {
    const value = (await invoke("SendComplexObject")) as Record<string, unknown>;
    expect(value.Guid).toBe("00010203-0405-0607-0706-050403020100");
    expect(value.IntArray).toEqual([1, 2, 3]);
    expect(value.String).toBe("hello world");
    if (protocol === "messagepack") {
      expect(value.ByteArray).toEqual(new Uint8Array([1, 2, 3]));
      expect(value.DateTime).toEqual(new Date(Date.UTC(2000, 0, 1)));
    } else {
      expect(value.ByteArray).toBe("AQID");
      expect(new Date(value.DateTime as string).getTime()).toBe(Date.UTC(2000, 0, 1));
    }
  });

  it("shows the hub the request's headers", async () => {
    expect(await invoke("GetHeader", "User-Agent")).toMatch(/^Microsoft SignalR\/10\.0/);
  });
});

describe("without detailed errors", () => {
  it("hides an exception's details but shows a HubError's message", async () => {
    const client = await connectClient(plain.url("/testhub"));
    try {
      await expect(client.connection.invoke("ThrowException", "secret detail")).rejects.toThrow(
        /^An unexpected error occurred invoking 'ThrowException' on the server\.$/,
      );
      await expect(client.connection.invoke("ThrowHubException", "Something bad")).rejects.toThrow(
        /^An unexpected error occurred invoking 'ThrowHubException' on the server\. HubException: Something bad$/,
      );
      await expect(client.connection.invoke("Add", 1)).rejects.toThrow(
        /^Failed to invoke 'Add' due to an error on the server\.$/,
      );
    } finally {
      await client.stop();
    }
  });
});

function collect(client: TestClient, method: string, ...args: unknown[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const items: unknown[] = [];
    client.connection.stream(method, ...args).subscribe({
      next: (item) => items.push(item),
      error: (err) => reject(err),
      complete: () => resolve(items),
    });
  });
}
