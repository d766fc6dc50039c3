import { fileURLToPath } from "node:url";
import { staticFiles } from "./static-files.js";

/** The admin page's files: web/admin of this package (src/server and dist/server are two levels below it). */
const adminRoot = fileURLToPath(new URL("../../web/admin/", import.meta.url));

/**
 * Serves the admin page at /admin: static files only. Everything it shows comes from the HTTP API, with
 * the key the operator types in; without the key the page loads and the API refuses it.
 */
export function serveAdminPage() {
  const file = (name: string) => `${adminRoot}${name}`;
  return staticFiles(adminRoot, {
    "/admin": file("index.html"),
    "/admin/": file("index.html"),
    "/admin/admin.js": file("admin.js"),
    "/admin/admin.css": file("admin.css"),
  });
}
