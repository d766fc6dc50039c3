// The notification demo: two official SignalR browser clients in one page, A and B, each connected through
// the load balancer to the built-in notification hub. A registers an identifier; B notifies it through the
// HTTP API (POST /api/notifications/{identifier}), which the balancer may send to yet another node; the
// backplane carries the notification to A's node. Timings are performance.now() in this one page, from B's
// click to A's addMessage handler.
"use strict";

const hubPath = "/hubs/notifications";
const $ = (id) => document.getElementById(id);

/**
 * The transport both panels use, from `?transport=` (the page's transport choice reloads with it). Every
 * one works behind the balancer without sticky sessions: a node forwards a Server-Sent Events or
 * long-polling request to the node that holds its connection.
 */
const transports = ["WebSockets", "ServerSentEvents", "LongPolling"];
const chosenTransport = (() => {
  const asked = new URLSearchParams(location.search).get("transport");
  return transports.includes(asked) ? asked : "WebSockets";
})();

// ---- Nodes: a short id and a colour each ----------------------------------------------------------------

/** The cluster's node ids in start order (from GET /api/nodes): each gets its own colour of the palette. */
const knownNodes = [];
const palette = ["#1b7f5b", "#b4451b", "#5b4bb7", "#b3245f", "#1f6fb2", "#7a6300"];

function nodeColour(nodeId) {
  const index = knownNodes.indexOf(nodeId);
  if (index >= 0) return palette[index % palette.length];
  // A node that joined after the page loaded: a colour from its id.
  let hash = 0;
  for (const char of nodeId) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 55% 38%)`;
}

function nodeBadge(nodeId) {
  const badge = document.createElement("span");
  badge.className = "node";
  badge.style.backgroundColor = nodeColour(nodeId);
  badge.textContent = nodeId.slice(0, 8);
  badge.title = `node ${nodeId}`;
  badge.dataset.nodeId = nodeId;
  return badge;
}

async function loadClusterNodes() {
  try {
    const response = await fetch("/api/nodes");
    if (!response.ok) return;
    const { nodes } = await response.json();
    nodes.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    for (const node of nodes) knownNodes.push(node.nodeId);
    $("cluster-nodes").replaceChildren(...nodes.map((node) => nodeBadge(node.nodeId)));
    $("cluster").hidden = false;
    // Badges shown before the list came get their node's colour now.
    for (const badge of document.querySelectorAll(".node[data-node-id]"))
      badge.style.backgroundColor = nodeColour(badge.dataset.nodeId);
  } catch {
    // Without the API (not in demo mode) the page still works; colours then come from the ids.
  }
}

// ---- One panel's connection -----------------------------------------------------------------------------

/** A panel's own HubConnection, on the chosen transport. */
function createConnection(prefix, onNode) {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(hubPath, { transport: signalR.HttpTransportType[chosenTransport] })
    .withAutomaticReconnect()
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  const status = (text) => ($(`${prefix}-status`).textContent = text);
  const learnNode = async () => {
    try {
      await onNode(connection);
    } catch (err) {
      showError(prefix, err);
    }
  };
  connection.onreconnecting(() => {
    status("reconnecting…");
    $(`${prefix}-node`).textContent = "–";
  });
  connection.onreconnected(async () => {
    status("connected again (a new connection)");
    await learnNode();
  });
  connection.onclose(() => status("disconnected"));
  return {
    connection,
    async start() {
      try {
        await connection.start();
      } catch (err) {
        status("failed to connect");
        showError(prefix, err);
        return;
      }
      status("connected");
      await learnNode();
    },
  };
}

/** Which node holds a connection. */
async function whereIs(connection) {
  const { nodeId } = await connection.invoke("whereAmI");
  return nodeId;
}

/** The node each panel's connection is on, by panel ("a", "b"). */
const panelNodes = {};

function showNode(prefix, nodeId) {
  panelNodes[prefix] = nodeId;
  $(`${prefix}-node`).replaceChildren(nodeBadge(nodeId));
}

function showError(prefix, err) {
  $(`${prefix}-error`).textContent = err ? String(err.message || err) : "";
}

function element(tag, className, ...children) {
  const created = document.createElement(tag);
  if (className) created.className = className;
  created.append(...children);
  return created;
}

function logEntry(list, ...parts) {
  const item = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString();
  item.append(time, " ", ...parts);
  $(list).prepend(item);
  return item;
}

// ---- Client A: registers an identifier and receives ------------------------------------------------------

/** The identifier A registered (re-registered after every reconnect), or undefined. */
let registered;
/** B's latest notify that A should receive: when it was clicked, and for which identifier. */
let pending;

const clientA = createConnection("a", async (connection) => {
  $("a-register").disabled = false;
  // A reconnect is a new connection: it must register again, or notifications would find nobody.
  if (registered) await register(registered);
  else showNode("a", await whereIs(connection));
});

async function register(identifier) {
  showError("a");
  try {
    const result = await clientA.connection.invoke("register", identifier);
    registered = result.identifier;
    showNode("a", result.nodeId);
    $("a-registration").replaceChildren(
      element("code", "", result.identifier),
      " on node ",
      nodeBadge(result.nodeId),
    );
  } catch (err) {
    showError("a", err);
  }
}

/** Ids of the notifications A has shown: one delivered again (after a reconnect) is confirmed, not shown twice. */
const shownIds = new Set();

// A notification that waits for a confirmation comes with `{ id }`: returning a value confirms it.
clientA.connection.on("addMessage", (text, meta) => {
  const id = meta && meta.id;
  if (id && shownIds.has(id)) return true;
  if (id) shownIds.add(id);
  const arrived = performance.now();
  const parts = [element("strong", "", String(text))];
  if (id) parts.push(element("span", "detail", "confirmed to B"));
  if (pending && pending.identifier === registered) {
    const elapsed = (arrived - pending.clickedAt).toFixed(1);
    parts.push(element("span", "detail timing", `${elapsed} ms after B's click`));
    pending = undefined;
  }
  logEntry("a-messages", ...parts);
  return true;
});

$("a-register-form").addEventListener("submit", (event) => {
  event.preventDefault();
  void register($("a-identifier").value.trim());
});

// ---- Client B: notifies through the HTTP API -------------------------------------------------------------

const clientB = createConnection("b", async (connection) => {
  showNode("b", await whereIs(connection));
});

async function notify(identifier, body) {
  showError("b");
  const clickedAt = performance.now();
  pending = { identifier, clickedAt };
  let response;
  try {
    response = await fetch(`/api/notifications/${encodeURIComponent(identifier)}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (err) {
    pending = undefined;
    showError("b", err);
    return;
  }
  const elapsed = (performance.now() - clickedAt).toFixed(1);
  const apiNode = response.headers.get("X-Switchboard-Node");
  const answer = await response.json().catch(() => ({}));
  const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
  const detail = element(
    "span",
    "detail",
    !response.ok
      ? `${response.status} ${answer.code ?? ""}`
      : answer.notificationId
        ? `asked ${count(answer.connections, "connection")}`
        : `reached ${count(answer.connections, "connection")} on ${count(answer.nodes, "node")}`,
  );
  if (apiNode) detail.append(" · API answered on node ", nodeBadge(apiNode), ` in ${elapsed} ms`);
  if (response.ok && apiNode && panelNodes.a && identifier === registered)
    detail.append(apiNode === panelNodes.a ? " · A's own node" : " · not A's node: the backplane carried it");
  if (answer.confirmedBy) {
    const who = answer.confirmedBy === clientA.connection.connectionId ? "A" : "a connection";
    detail.append(` · confirmed by ${who} (connection ${answer.confirmedBy.slice(0, 8)})`);
  } else if (response.status === 202) {
    detail.append(" · not confirmed yet: kept, and delivered again when the identifier registers");
  }
  const what = body.status ?? JSON.stringify(body.message);
  const parts = [element("strong", "", `${what} → ${identifier}`), detail];
  const entry = logEntry("b-log", ...parts);
  if (!response.ok) {
    pending = undefined;
    entry.className = "failed";
    showError("b", new Error(answer.error ?? `The API answered ${response.status}.`));
  } else if (identifier !== registered) {
    pending = undefined; // A will not receive it: do not time A's next message with it
  }
}

$("b-notify-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const identifier = $("b-identifier").value.trim();
  const button = event.submitter;
  const confirm = $("b-confirm").checked ? { confirm: true } : {};
  if (button && button.name === "status")
    return void notify(identifier, { status: button.value, ...confirm });
  const text = $("b-text").value;
  if (!text.trim()) return showError("b", new Error("Write a message first, or pick a status."));
  void notify(identifier, { message: text, ...confirm });
});

// ---- Start ---------------------------------------------------------------------------------------------

$("transport").value = chosenTransport;
$("transport").addEventListener("change", (event) => {
  const url = new URL(location.href);
  url.searchParams.set("transport", event.target.value);
  location.assign(url);
});

void loadClusterNodes();
void clientA.start();
void clientB.start();
