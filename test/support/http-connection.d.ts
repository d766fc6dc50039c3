// The official client's HttpConnection (the SignalR client without its hub layer) is not in the package's
// index; ASP.NET Core's functional tests import it from the dist files, and so do ours: the CommonJS build
// at run time, typed by the ESM build's declarations.
declare module "@microsoft/signalr/dist/cjs/HttpConnection.js" {
  export { HttpConnection } from "@microsoft/signalr/dist/esm/HttpConnection.js";
}
