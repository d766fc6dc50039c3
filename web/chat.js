// The demo page: one official SignalR browser client per tab, talking to the ChatHub at /hubs/chat.
"use strict";

const $ = (id) => document.getElementById(id);
const connection = new signalR.HubConnectionBuilder()
  .withUrl("/hubs/chat")
  .withAutomaticReconnect()
  .configureLogging(signalR.LogLevel.Warning)
  .build();

function show(text, kind, from) {
  const item = document.createElement("li");
  if (kind) item.className = kind;
  if (from) {
    const sender = document.createElement("code");
    sender.textContent = from.slice(0, 8);
    sender.title = "Click to reply directly";
    sender.addEventListener("click", () => ($("direct-target").value = from));
    item.append(sender, " ");
  }
  item.append(text);
  $("messages").prepend(item);
}

function showError(err) {
  $("error").textContent = err ? String(err.message || err) : "";
}

connection.on("message", (message) => {
  const latency = Date.now() - message.at;
  show(
    `${message.direct ? "(direct) " : ""}${message.text}  · ${latency} ms`,
    message.direct ? "direct" : "",
    message.from,
  );
});
connection.on("joined", (id) => show(`${id.slice(0, 8)} joined`, "system"));
connection.on("left", (id) => show(`${id.slice(0, 8)} left`, "system"));
connection.onreconnecting(() => ($("status").textContent = "reconnecting…"));
connection.onreconnected(() => describeConnection());
connection.onclose(() => ($("status").textContent = "disconnected"));

async function describeConnection() {
  const me = await connection.invoke("WhoAmI");
  $("status").textContent = "connected";
  $("connection-id").textContent = me.connectionId;
  $("node-id").textContent = me.node;
}

$("broadcast-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError();
  try {
    await connection.invoke("Broadcast", $("broadcast-text").value);
    $("broadcast-text").value = "";
  } catch (err) {
    showError(err);
  }
});

$("direct-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError();
  try {
    const reached = await connection.invoke(
      "Direct",
      $("direct-target").value.trim(),
      $("direct-text").value,
    );
    if (reached === 0) showError(new Error("No connection has that id."));
    else $("direct-text").value = "";
  } catch (err) {
    showError(err);
  }
});

connection
  .start()
  .then(describeConnection)
  .catch((err) => {
    $("status").textContent = "failed to connect";
    showError(err);
  });
