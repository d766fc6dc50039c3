// The admin page: everything it shows comes from the server's HTTP API (docs/api.md), refreshed every two
// seconds, with the API key the operator typed in (kept for this tab only).
const REFRESH_MS = 2000;
const CHART_SECONDS = 300;

const $ = (selector) => document.querySelector(selector);
const keyStorage = "switchboard-admin-key";
/** [time (ms), messages/s, errors/s] per refresh, for the chart. */
const rates = [];
let lastTotals;
let currentSearch;

/** Calls the API with the key; throws an Error with the API's message on a refusal. */
async function api(path, init = {}) {
  const key = sessionStorage.getItem(keyStorage);
  const headers = { ...(init.headers ?? {}) };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...init, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error ?? `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.code = body.code;
    throw error;
  }
  return body;
}

function setStatus(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

/** Fills a table body with rows of cells (strings, or nodes such as buttons). */
function fill(table, rows) {
  const body = $(`${table} tbody`);
  body.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement("tr");
      for (const cell of cells) {
        const td = document.createElement("td");
        td.append(cell ?? "");
        tr.append(td);
      }
      return tr;
    }),
  );
}

const ago = (iso) => `${Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))} s ago`;
const short = (id) => id.slice(0, 8);
const selectedHub = () => $("#hub").value;

async function refreshNodes() {
  const { nodes } = await api("/api/nodes");
  fill(
    "#nodes",
    nodes.map((node) => [
      short(node.nodeId),
      node.version ?? "",
      node.description,
      ago(node.lastHeartbeatAt),
      String(node.connectionCount),
      node.logLag === undefined ? "" : String(node.logLag),
      node.messagesIn === undefined ? "" : `${node.messagesIn} / ${node.messagesOut}`,
      node.errors === undefined ? "" : String(node.errors),
    ]),
  );
  $("#nodes").dataset.count = String(nodes.length);
  recordRates(nodes);
}

/** The cluster's totals at this refresh, and the rates since the last one, for the chart. */
function recordRates(nodes) {
  const now = Date.now();
  const totals = {
    at: now,
    messages: nodes.reduce((n, node) => n + (node.messagesIn ?? 0) + (node.messagesOut ?? 0), 0),
    errors: nodes.reduce((n, node) => n + (node.errors ?? 0), 0),
  };
  if (lastTotals) {
    const seconds = (now - lastTotals.at) / 1000;
    // A node that restarted counts from zero again: a negative step is not a rate.
    const messages = Math.max(0, totals.messages - lastTotals.messages) / seconds;
    const errors = Math.max(0, totals.errors - lastTotals.errors) / seconds;
    rates.push([now, messages, errors]);
    while (rates.length > 0 && rates[0][0] < now - CHART_SECONDS * 1000) rates.shift();
    drawChart(now);
    $("#chart-now").textContent = `now: ${messages.toFixed(1)} msg/s, ${errors.toFixed(1)} errors/s`;
  }
  lastTotals = totals;
}

function drawChart(now) {
  const top = Math.max(1, ...rates.map(([, m, e]) => Math.max(m, e)));
  const points = (index) =>
    rates
      .map((rate) => {
        const x = 600 - ((now - rate[0]) / (CHART_SECONDS * 1000)) * 600;
        const y = 115 - (rate[index] / top) * 110;
        return `${x.toFixed(1)},${y.toFixed(1)}`;
      })
      .join(" ");
  $("#chart-messages").setAttribute("points", points(1));
  $("#chart-errors").setAttribute("points", points(2));
}

async function refreshHubs() {
  const { hubs } = await api("/api/hubs");
  fill(
    "#hubs",
    hubs.map((hub) => [hub.hub, String(hub.connections), String(hub.users), String(hub.groups)]),
  );
  const select = $("#hub");
  const chosen = select.value;
  const paths = hubs.map((hub) => hub.hub);
  if ([...select.options].map((o) => o.value).join() !== paths.join()) {
    select.replaceChildren(...paths.map((path) => new Option(path, path)));
    // The first hub that is not the notification hub: where an app's users are.
    select.value = paths.includes(chosen)
      ? chosen
      : (paths.find((p) => p !== "/hubs/notifications") ?? paths[0]);
  }
}

async function refreshOnline() {
  if (!selectedHub()) return;
  const { users, count } = await api(`/api/users?hub=${encodeURIComponent(selectedHub())}&limit=100`);
  $("#online-count").textContent = `(${count})`;
  $("#online-users").replaceChildren(
    ...users.map((user) => {
      const li = document.createElement("li");
      li.textContent = user;
      return li;
    }),
  );
}

async function refreshKept() {
  try {
    const kept = await api("/api/notifications");
    $("#kept").hidden = false;
    fill(
      "#stored",
      kept.stored.map((n) => [n.identifier, n.method, new Date(n.expiresAt).toLocaleString()]),
    );
    fill(
      "#pending",
      kept.pending.map((n) => [short(n.id), n.identifier, ago(n.createdAt), n.confirmedBy ?? "—"]),
    );
  } catch (err) {
    // No notification service, or a backplane that keeps none: nothing to show.
    if (err.code === "notifications_disabled" || err.code === "not_found" || err.code === "invalid_request")
      $("#kept").hidden = true;
    else throw err;
  }
}

/** A connection as a line with its node, user and groups, and a Disconnect button. */
function connectionLine(connection) {
  const line = document.createElement("div");
  line.className = "result";
  line.dataset.connectionId = connection.connectionId;
  const text = document.createElement("span");
  const user = connection.userId ? ` user ${connection.userId}` : "";
  const groups = connection.groups ? `, groups: ${connection.groups.join(", ") || "none"}` : "";
  text.textContent = `${connection.connectionId} on node ${short(connection.nodeId)}${user}${groups} `;
  const button = document.createElement("button");
  button.textContent = "Disconnect";
  button.className = "disconnect";
  button.addEventListener("click", async () => {
    try {
      await api(`/api/connections/${encodeURIComponent(connection.connectionId)}/disconnect`, {
        method: "POST",
        body: JSON.stringify({ hub: selectedHub() }),
      });
      button.textContent = "Disconnected";
      button.disabled = true;
    } catch (err) {
      setStatus(`Disconnect failed: ${err.message}`, true);
    }
  });
  line.append(text, button);
  return line;
}

async function runSearch() {
  if (!currentSearch) return;
  const { kind, query } = currentSearch;
  const hub = encodeURIComponent(selectedHub());
  const id = encodeURIComponent(query);
  const results = $("#find-results");
  try {
    if (kind === "user") {
      const user = await api(`/api/users/${id}?hub=${hub}`);
      const lines = user.connections.map((c) => connectionLine({ ...c, userId: user.userId }));
      const summary = document.createElement("p");
      summary.textContent = user.online
        ? `${user.userId} is online: ${user.connections.length} connection(s) on ${user.nodes.length} node(s).`
        : `${user.userId} is offline.`;
      results.replaceChildren(summary, ...lines);
    } else if (kind === "group") {
      const group = await api(`/api/groups/${id}?hub=${hub}&limit=100`);
      const summary = document.createElement("p");
      summary.textContent = `${group.count} member(s) in ${group.group}.`;
      const members = await Promise.all(
        group.members.map((member) =>
          api(`/api/connections/${encodeURIComponent(member)}?hub=${hub}`).catch(() => undefined),
        ),
      );
      results.replaceChildren(summary, ...members.filter(Boolean).map(connectionLine));
    } else {
      results.replaceChildren(connectionLine(await api(`/api/connections/${id}?hub=${hub}`)));
    }
  } catch (err) {
    const message = document.createElement("p");
    message.textContent = err.code === "not_connected" ? `${query}: not connected.` : err.message;
    results.replaceChildren(message);
  }
}

let refreshing = false;

async function refresh() {
  // One refresh at a time: a slow API must not pile them up.
  if (refreshing) return;
  refreshing = true;
  try {
    await refreshNodes();
    await refreshHubs();
    await Promise.all([refreshOnline(), refreshKept(), runSearch()]);
    setStatus(`Live: refreshed at ${new Date().toLocaleTimeString()}.`);
  } catch (err) {
    if (err.status === 401) setStatus("The API refused the request: enter the API key above.", true);
    else setStatus(`The API did not answer: ${err.message}`, true);
  } finally {
    refreshing = false;
  }
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(keyStorage, $("#key").value);
  $("#key").value = "";
  void refresh();
});

$("#find-form").addEventListener("submit", (event) => {
  event.preventDefault();
  currentSearch = { kind: $("#find-kind").value, query: $("#find-query").value };
  void runSearch();
});

$("#hub").addEventListener("change", () => void refresh());

$("#send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = $("#send-user").value;
  try {
    const result = await api(`/api/users/${encodeURIComponent(user)}/messages`, {
      method: "POST",
      body: JSON.stringify({
        hub: selectedHub(),
        method: $("#send-method").value,
        arguments: [$("#send-text").value],
      }),
    });
    $("#send-result").textContent =
      `Sent to ${user}: reached ${result.connections} connection(s) on ${result.nodes} node(s).`;
  } catch (err) {
    $("#send-result").textContent = `Not sent: ${err.message}`;
  }
});

void refresh();
setInterval(() => void refresh(), REFRESH_MS);
