// The TaskManager page: plain JavaScript, no build step. It speaks only the public API,
// as any other client would: /api/v1/auth, /tasks, /tasks/events, /agent/chat/stream, /runs,
// /approvals.
"use strict";

const API = "/api/v1";
const $ = (selector) => document.querySelector(selector);
let token = sessionStorage.getItem("token");
let conversation = sessionStorage.getItem("conversation"); // the session_id the chat continues
let taskStream = null; // aborts the live task list

// --- talking to the API ---------------------------------------------------------------

class ApiError extends Error {}

async function call(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(options.json);
  }
  const response = await fetch(API + path, { ...options, headers });
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    let requestId = response.headers.get("X-Request-ID");
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : body.detail.map((e) => e.msg).join("; ");
      requestId = body.request_id || requestId;
    } catch {}
    if (response.status === 401 && token) signOut();
    throw new ApiError(`${detail} (request ${requestId})`);
  }
  return response;
}

// Server-Sent Events from a fetch response: EventSource cannot send the Authorization
// header, so the page reads the stream itself. Yields {event, data, id}.
async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = blocks.pop();
    for (const block of blocks) {
      const message = { event: "message", data: "", id: null };
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(":")) continue; // a keep-alive comment
        const colon = line.indexOf(":");
        const field = line.slice(0, colon);
        const text = line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") message.event = text;
        else if (field === "data") message.data += (message.data ? "\n" : "") + text;
        else if (field === "id") message.id = text;
      }
      if (message.data) yield { ...message, data: JSON.parse(message.data) };
    }
  }
}

function showProblem(error) {
  const problem = $("#problem");
  problem.textContent = error instanceof ApiError ? error.message : `Something went wrong: ${error}`;
  problem.hidden = false;
}

function clearProblem() {
  $("#problem").hidden = true;
}

// --- signing in -----------------------------------------------------------------------

$("#sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearProblem();
  const form = new FormData(event.target);
  const account = { username: form.get("username"), password: form.get("password") };
  try {
    if (event.submitter.value === "register") await call("/auth/register", { method: "POST", json: account });
    const login = await call("/auth/token", { method: "POST", body: new URLSearchParams(account) });
    token = (await login.json()).access_token;
    sessionStorage.setItem("token", token);
    await start();
  } catch (error) {
    showProblem(error);
  }
});

$("#sign-out").addEventListener("click", signOut);

function signOut() {
  token = null;
  remember(null);
  sessionStorage.removeItem("token");
  if (taskStream) taskStream.abort();
  $("#workspace").hidden = $("#who").hidden = $("#sign-out").hidden = true;
  $("#sign-in").hidden = false;
}

async function start() {
  const me = await (await call("/users/me")).json();
  $("#who").textContent = me.username;
  $("#sign-in").hidden = true;
  $("#workspace").hidden = $("#who").hidden = $("#sign-out").hidden = false;
  followTasks();
  await reopenConversation();
}

// --- the task list, live --------------------------------------------------------------

const tasks = new Map();

function drawTasks() {
  const list = $("#task-list");
  list.replaceChildren(
    ...[...tasks.values()]
      .sort((a, b) => a.id - b.id)
      .map((task) => {
        const item = document.createElement("li");
        item.className = task.status;
        item.dataset.id = task.id;
        const title = document.createElement("span");
        title.className = "title";
        title.textContent = `#${task.id} ${task.title}`;
        const due = document.createElement("span");
        due.className = "badge";
        due.textContent = task.due_date ? `due ${task.due_date}` : task.status.replace("_", " ");
        const priority = document.createElement("span");
        priority.className = `badge ${task.priority}`;
        priority.textContent = task.priority;
        item.append(title, due, priority);
        return item;
      }),
  );
  $("#no-tasks").hidden = tasks.size > 0;
}

async function reloadTasks() {
  const listed = await (await call("/tasks?limit=100")).json();
  tasks.clear();
  for (const task of listed) tasks.set(task.id, task);
  drawTasks();
}

// Load the list, then follow /tasks/events; reconnect with Last-Event-ID when cut off.
async function followTasks() {
  if (taskStream) taskStream.abort();
  taskStream = new AbortController();
  const { signal } = taskStream;
  let lastEventId = null;
  await reloadTasks();
  while (!signal.aborted) {
    try {
      const headers = lastEventId ? { "Last-Event-ID": lastEventId } : {};
      const response = await call("/tasks/events", { headers, signal });
      $("#live").className = "";
      for await (const message of serverSentEvents(response)) {
        lastEventId = message.id || lastEventId;
        if (message.event === "task.deleted") tasks.delete(message.data.id);
        else if (message.event === "task.resync") await reloadTasks();
        else tasks.set(message.data.id, message.data);
        drawTasks();
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    $("#live").className = "off";
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

// --- chatting -------------------------------------------------------------------------

// The conversation lives on the server; the page keeps only its id, so a reload reopens it.
function remember(id) {
  conversation = id;
  if (id) sessionStorage.setItem("conversation", id);
  else sessionStorage.removeItem("conversation");
}

async function reopenConversation() {
  $("#messages").replaceChildren();
  if (!conversation) return;
  try {
    const opened = await (await call(`/conversations/${conversation}`)).json();
    for (const message of opened.messages) say(message.role, message.content);
  } catch {
    remember(null); // deleted meanwhile: start a new one
  }
}

$("#new-chat").addEventListener("click", () => {
  remember(null);
  $("#messages").replaceChildren();
});

function say(kind, text) {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  $("#messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function describeCall(call) {
  const args = Object.entries(call.arguments)
    .filter(([, value]) => value !== null)
    .map(([name, value]) => `${name}: ${JSON.stringify(value)}`);
  return `${call.name}(${args.join(", ")})`;
}

$("#ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearProblem();
  const input = event.target.elements.message;
  const message = input.value.trim();
  if (!message) return;
  input.value = "";
  if (event.submitter.value === "run") return startRun(message);
  const buttons = event.target.querySelectorAll("button");
  buttons.forEach((button) => (button.disabled = true));
  say("user", message);
  try {
    const body = conversation ? { message, session_id: conversation } : { message };
    await showTurn(await call("/agent/chat/stream", { method: "POST", json: body }));
  } catch (error) {
    showProblem(error);
  } finally {
    buttons.forEach((button) => (button.disabled = false));
    input.focus();
  }
});

// A turn's events as they come: on /agent/chat/stream, and again after each decision.
async function showTurn(response) {
  let reply = null;
  let agent = null;
  const steps = new Map();
  for await (const { event: name, data } of serverSentEvents(response)) {
    if (name === "agent") {
      if (agent) say("step handoff", `${agent} hands over to ${data.name}`);
      agent = data.name;
    } else if (name === "tool_call") {
      steps.set(data.call_id, say("step tool", describeCall(data)));
    } else if (name === "tool_output") {
      steps.get(data.call_id)?.classList.add("done");
    } else if (name === "delta") {
      reply = reply || say("assistant", "");
      reply.textContent += data.text;
    } else if (name === "done") {
      remember(data.session_id);
      reply = reply || say("assistant", data.reply);
      reply.title = `${data.agent}, ${data.model}, ${data.duration_ms} ms`;
    } else if (name === "approval") {
      remember(data.session_id);
      for (const approval of data.approvals) {
        const item = say("approval", `${approval.agent} asks to ${describeCall({ name: approval.tool, arguments: approval.arguments })}`);
        askFor(approval, item, async (answer) => showTurn(answer));
      }
    } else if (name === "error") {
      say("assistant error", `${data.detail} (${data.status})`);
    }
  }
}

// Approve and Reject buttons for a proposed call; `then` gets the decision's response.
function askFor(approval, item, then) {
  const buttons = ["Approve", "Reject"].map((label) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.className = label.toLowerCase();
    return button;
  });
  item.append(...buttons);
  buttons.forEach((button, index) =>
    button.addEventListener("click", async () => {
      buttons.forEach((each) => (each.disabled = true));
      clearProblem();
      try {
        const decision = { approve: index === 0 };
        const response = await call(`/approvals/${approval.id}`, { method: "POST", json: decision });
        item.classList.add(decision.approve ? "approved" : "rejected");
        await then(response);
      } catch (error) {
        showProblem(error);
      }
    }),
  );
}

// --- background runs --------------------------------------------------------------------

async function startRun(message) {
  const item = document.createElement("li");
  const title = document.createElement("div");
  const bar = document.createElement("progress");
  const status = document.createElement("div");
  bar.max = 100;
  bar.value = 0;
  item.append(title, bar, status);
  $("#runs").prepend(item);
  try {
    const accepted = await (await call("/runs", { method: "POST", json: { message } })).json();
    item.dataset.id = accepted.id;
    title.textContent = `Run ${accepted.id}: ${message}`;
    status.textContent = accepted.status;
    const events = await call(`/runs/${accepted.id}/events`);
    for await (const { event: name, data } of serverSentEvents(events)) {
      if (name === "progress") {
        bar.value = data.percent;
        status.textContent = data.message;
      } else if (name === "done") {
        status.textContent = data.reply;
      } else if (name === "approval") {
        for (const approval of data.approvals) {
          const ask = document.createElement("div");
          ask.className = "approval";
          ask.textContent = `${approval.agent} asks to ${describeCall({ name: approval.tool, arguments: approval.arguments })}`;
          item.append(ask);
          askFor(approval, ask, async () => {}); // the run goes on: its events follow here
        }
      } else if (name === "status") {
        item.className = `status-${data.status}`;
        if (data.status === "succeeded") bar.value = 100;
        status.textContent = data.status === "succeeded" ? `${status.textContent} (succeeded)` : `${data.status}: ${data.detail || ""}`;
      }
    }
  } catch (error) {
    status.textContent = "failed to start";
    showProblem(error);
  }
}

if (token) start().catch(signOut);
