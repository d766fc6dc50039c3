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
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
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

// The connection is closed after a 413: the rest of an oversized body is not worth reading.
const tooLarge = (maxBytes: number) =>
  new ApiError("payload_too_large", `The body exceeds the limit of ${maxBytes} bytes.`, {
    Connection: "close",
  });

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
      req.resume(); // discard the rest rather than buffer it
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
