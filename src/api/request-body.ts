import type { IncomingMessage } from "node:http";
import { ApiError, RequestAbortedError } from "./api-errors.js";

/**
 * Reads a JSON request body of at most `maxBytes`.
 * @throws ApiError "unsupported_media_type", "payload_too_large" or "invalid_json"; RequestAbortedError when
 * the client goes away first.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  if (!isJsonMediaType(req.headers["content-type"]))
    throw new ApiError(
      "unsupported_media_type",
      "Send the body as UTF-8 JSON with 'Content-Type: application/json'.",
    );
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) {
    discardRest(req);
    throw tooLarge(maxBytes);
  }
  const bytes = await readBytes(req, maxBytes);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError("invalid_json", "The body is not valid UTF-8.");
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ApiError("invalid_json", `The body is not valid JSON: ${(err as Error).message}`);
  }
}

/** `application/json`, with no charset or charset=utf-8 (JSON between systems is UTF-8: RFC 8259). */
function isJsonMediaType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type, ...parameters] = header.split(";").map((part) => part.trim().toLowerCase());
  if (type !== "application/json") return false;
  return parameters.every((p) => !p.startsWith("charset=") || /^charset="?utf-8"?$/.test(p));
}

const tooLarge = (maxBytes: number) =>
  new ApiError("payload_too_large", `The body exceeds the limit of ${maxBytes} bytes.`);

/** How much of a refused body is read and dropped, and for how long, before the connection is cut. */
const DISCARD_BYTES = 64 * 1024 * 1024;
const DISCARD_MS = 10_000;

/**
 * Reads and drops the rest of a refused body, so that a client still uploading gets to read its 413:
 * closing a socket with unread data makes the kernel answer with a reset, which the client sees instead of
 * the answer. Beyond a bound (size or time) the connection is cut after all.
 */
function discardRest(req: IncomingMessage): void {
  let dropped = 0;
  const cut = () => req.socket.destroy();
  const timer = setTimeout(cut, DISCARD_MS);
  timer.unref();
  req.on("data", (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > DISCARD_BYTES) cut();
  });
  req.once("close", () => clearTimeout(timer));
  req.resume();
}

function readBytes(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  // A body parser mounted before the API (express.json(), say) has read the stream already.
  if (req.readableEnded)
    throw new Error(
      "The request body was read before the server API handler; mount the API before body parsers.",
    );
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onAborted);
      req.off("close", onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      stop();
      discardRest(req); // read on and drop, rather than buffer it or reset the client
      reject(tooLarge(maxBytes));
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks));
    };
    const onAborted = () => {
      stop();
      reject(new RequestAbortedError());
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onAborted);
    req.on("close", onAborted);
  });
}
