// The write-up's scenario behind a real nginx running docs/deploy/nginx.conf (the file as shipped, with this
// test's node ports and listen port put in): three real nodes, round robin, no sticky sessions.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, it } from "vitest";
import { startCluster, type Cluster } from "../support/cluster.js";
import { createTestSchema, type TestSchema } from "../support/database.js";
import { eventually, type TestClient, type TransportKey } from "../support/hub-client.js";
import { expectNotConnected, runWriteUpScenario } from "../support/write-up-scenario.js";
import { findSystemProgram } from "../support/system-programs.js";

const nginx = await findSystemProgram({ name: "nginx", path: "/usr/sbin/nginx", aptPackage: "nginx" });
const configFile = fileURLToPath(new URL("../../docs/deploy/nginx.conf", import.meta.url));

/**
 * docs/deploy/nginx.conf with this test's ports: the `server 127.0.0.1:PORT;` lines of the upstream get the
 * nodes' ports in order, `listen` gets a free loopback port. Test-only additions go at the top of the http
 * block: logs and temporary files inside `prefix`, so nothing is written outside it.
 */
function renderConfig(template: string, nodePorts: number[], listenPort: number, prefix: string): string {
  const servers = template.match(/^\s*server 127\.0\.0\.1:\d+;$/gm) ?? [];
  if (servers.length !== nodePorts.length)
    throw new Error(
      `nginx.conf has ${servers.length} upstream servers; the test runs ${nodePorts.length} nodes.`,
    );
  let index = 0;
  const testOnly = [
    `access_log ${join(prefix, "access.log")};`,
    `client_body_temp_path ${join(prefix, "client_body")};`,
    `proxy_temp_path ${join(prefix, "proxy")};`,
  ]
    .map((line) => `    ${line}`)
    .join("\n");
  return template
    .replace(
      /^(\s*)server 127\.0\.0\.1:\d+;$/gm,
      (_line, indent: string) => `${indent}server 127.0.0.1:${nodePorts[index++]};`,
    )
    .replace(/^(\s*)listen \d+;$/m, (_line, indent: string) => `${indent}listen 127.0.0.1:${listenPort};`)
    .replace(/^http \{$/m, `http {\n    # Test only: everything inside the test's prefix.\n${testOnly}\n`);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface RunningNginx {
  url: string;
  stop(): Promise<void>;
}

/** Starts nginx in the foreground with the rendered file; resolves once it proxies /healthz to a node. */
async function startNginx(program: string, nodePorts: number[]): Promise<RunningNginx> {
  const prefix = await mkdtemp(join(tmpdir(), "switchboard-nginx-"));
  const port = await freePort();
  const config = join(prefix, "nginx.conf");
  await writeFile(config, renderConfig(await readFile(configFile, "utf8"), nodePorts, port, prefix));
  // As root, the workers would switch to `nobody`, who cannot enter the test's private prefix: only this
  // test runs them as root.
  const globals = [
    "daemon off;",
    `pid ${join(prefix, "nginx.pid")};`,
    `error_log ${join(prefix, "error.log")} warn;`,
    ...(process.getuid?.() === 0 ? ["user root;"] : []),
  ].join(" ");
  const child: ChildProcess = spawn(program, ["-p", prefix, "-c", config, "-g", globals], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    await rm(prefix, { recursive: true, force: true });
  };
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr}`);
        return (await fetch(`${url}/healthz`).catch(() => undefined))?.ok ?? false;
      },
      15_000,
      "nginx to proxy /healthz",
    );
  } catch (err) {
    const log = await readFile(join(prefix, "error.log"), "utf8").catch(() => "");
    await stop();
    throw new Error(`${(err as Error).message}\nnginx error.log:\n${log}${stderr}`);
  }
  return { url, stop };
}

describe.skipIf(!nginx.path)(
  `the write-up's scenario behind nginx${nginx.missing ? ` (skipped: ${nginx.missing})` : ""}`,
  () => {
    let schema: TestSchema;
    let cluster: Cluster;
    let proxy: RunningNginx;
    const clients: TestClient[] = [];

    beforeAll(async () => {
      schema = await createTestSchema("sb_nginx");
      cluster = await startCluster({
        nodes: 3,
        databaseUrl: schema.url,
        schema: schema.schema,
        args: ["--demo-mode"],
      });
      proxy = await startNginx(
        nginx.path!,
        cluster.nodes.map((node) => Number(new URL(node.url).port)),
      );
    }, 120_000);

    afterAll(async () => {
      await Promise.all(clients.map((c) => c.stop()));
      await proxy?.stop();
      await cluster?.stop();
      await schema?.drop();
    });

    it("A registers on one node, B's notify lands on another, A gets the status text", async () => {
      clients.push(
        await runWriteUpScenario(
          proxy.url,
          cluster.nodes.map((n) => n.nodeId),
        ),
      );
    });

    it.each<TransportKey>(["ServerSentEvents", "LongPolling"])(
      "works the same when A uses %s: nginx's round robin needs no stickiness for it",
      async (transport) => {
        clients.push(
          await runWriteUpScenario(
            proxy.url,
            cluster.nodes.map((n) => n.nodeId),
            transport,
          ),
        );
      },
    );

    it("an identifier nobody registered is a clear 404 not_connected", async () => {
      await expectNotConnected(proxy.url);
    });
  },
);
