// One conversation: history, live messages, sending with retries by client id, receipts,
// typing, and resume after the network drops (sync "everything after the last seq seen").
// Every visible string comes from the page's data-text-* attributes (translated on the server).
import { call, problemText } from "./api.js";
import { ChatSocket } from "./chat_socket.js";

const root = document.querySelector("[data-chat]");
if (root) start(root);

const RECALL_WINDOW_MS = 2 * 60 * 1000;

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => values[key] ?? "");
}

function start(root) {
  const conversation = root.dataset.conversation;
  const me = root.dataset.me;
  const text = (name) => root.dataset[`text${name[0].toUpperCase()}${name.slice(1)}`] || "";
  const list = root.querySelector("[data-messages]");
  const composer = root.querySelector("[data-composer]");
  const field = composer.querySelector("textarea");
  const connection = root.querySelector("[data-connection]");
  const typingLine = root.querySelector("[data-typing]");
  const storageKey = `omo-chat-outbox-${conversation}`;
  const pending = new Map(JSON.parse(sessionStorage.getItem(storageKey) || "[]"));
  const seen = new Set();
  let lastSeq = 0;
  let readSeq = Number(root.dataset.readSeq || 0);
  let typingTimer = null;
  let lastTypingSent = 0;

  const savePending = () => sessionStorage.setItem(storageKey, JSON.stringify([...pending]));

  function nameOf(message) {
    return message.sender === me ? text("you") : message.sender_name || message.sender;
  }

  function line(message) {
    if (message.kind === "system") {
      const people = (message.people || []).join(", ");
      return format(text(message.event) || "", { name: nameOf(message), people });
    }
    if (message.recalled) return text("recalled");
    return message.text || (message.card ? message.card.title || message.card.url : "");
  }

  function render(message) {
    if (message.conversation !== conversation || seen.has(message.seq)) return;
    seen.add(message.seq);
    lastSeq = Math.max(lastSeq, message.seq);
    if (message.kind === "recall") {
      const target = list.querySelector(`[data-seq="${message.target_seq}"]`);
      if (target) {
        target.querySelector("[data-body]").textContent = text("recalled");
        target.querySelector(".message-actions")?.remove();
      }
      return;
    }
    const item = document.createElement("li");
    item.dataset.seq = String(message.seq);
    item.className = message.kind === "system" ? "system" : message.sender === me ? "mine" : "theirs";
    if (message.kind !== "system") {
      const who = document.createElement("strong");
      who.textContent = `${nameOf(message)}: `;
      item.append(who);
    }
    const body = document.createElement("span");
    body.dataset.body = "";
    if (message.media && !message.recalled) {
      body.append(mediaElement(message.media));
    } else if (message.location && !message.recalled) {
      const place = message.location;
      const link = document.createElement("a");
      link.href = `https://www.openstreetmap.org/?mlat=${place.latitude}&mlon=${place.longitude}`;
      link.rel = "noopener noreferrer";
      link.textContent = `${place.name || text("place")} (${place.latitude}, ${place.longitude})`;
      body.append(link);
    } else if (message.card && !message.recalled) {
      const link = document.createElement("a");
      link.href = message.card.url;
      link.rel = "noopener noreferrer";
      link.textContent = message.card.title || message.card.url;
      body.append(link);
      if (message.text) body.append(` ${message.text}`);
    } else {
      body.textContent = line(message);
    }
    item.append(body);
    if (message.kind !== "system" && !message.recalled) item.append(actions(message));
    // Keep the log in sequence order even when frames arrive out of order.
    const after = [...list.children].find((child) => Number(child.dataset.seq) > message.seq);
    list.insertBefore(item, after || list.querySelector("[data-pending]"));
  }

  // Recall (one's own, for 2 minutes) and delete-for-me, as real buttons for keyboards and
  // screen readers; each names the message it acts on.
  function actions(message) {
    const box = document.createElement("span");
    box.className = "message-actions";
    const summary = (line(message) || message.media?.name || "").slice(0, 60);
    const button = (label, aria, onClick) => {
      const element = document.createElement("button");
      element.type = "button";
      element.className = "button small";
      element.textContent = label;
      element.setAttribute("aria-label", format(aria, { text: summary }));
      element.addEventListener("click", onClick);
      return element;
    };
    const base = `/api/v1/messaging/conversations/${conversation}/messages/${message.seq}`;
    const recallable = Date.now() - Date.parse(message.sent_at) < RECALL_WINDOW_MS;
    if (message.sender === me && recallable) {
      const recall = button(text("recall"), text("recallLabel"), async () => {
        try {
          await call("POST", `${base}/recall`);
          recall.remove();
        } catch (error) {
          showError(problemText(error));
        }
      });
      box.append(recall);
    }
    box.append(
      button(text("delete"), text("deleteLabel"), async () => {
        try {
          await call("DELETE", base);
          list.querySelector(`[data-seq="${message.seq}"]`)?.remove();
          connection.textContent = text("deleted");
          field.focus();
        } catch (error) {
          showError(problemText(error));
        }
      }),
    );
    return box;
  }

  function showError(message) {
    const box = composer.querySelector("[data-form-error]");
    box.textContent = message;
    box.hidden = false;
  }

  function mediaElement(media) {
    if (media.kind === "image") {
      const link = document.createElement("a");
      link.href = media.url;
      const image = document.createElement("img");
      image.src = media.thumbnail_url || media.url;
      image.alt = media.name || text("photo");
      link.append(image);
      return link;
    }
    if (media.kind === "voice" || media.kind === "video") {
      const player = document.createElement(media.kind === "voice" ? "audio" : "video");
      player.controls = true;
      player.preload = "metadata";
      player.src = media.url;
      return player;
    }
    const link = document.createElement("a");
    link.href = media.url;
    link.download = media.name || "";
    link.textContent = media.name || media.url;
    return link;
  }

  async function attach(file) {
    const kind = file.type.startsWith("image/")
      ? "image"
      : file.type.startsWith("audio/")
        ? "voice"
        : file.type.startsWith("video/")
          ? "video"
          : "file";
    const box = composer.querySelector("[data-form-error]");
    box.hidden = true;
    try {
      const query = new URLSearchParams({ kind, name: file.name });
      const media = await call("POST", `/api/v1/messaging/conversations/${conversation}/media?${query}`, file, {
        raw: true,
        headers: { "Content-Type": "application/octet-stream" },
      });
      const clientId = crypto.randomUUID();
      socket.send({ type: "send", id: clientId, conversation, media_id: media.id });
    } catch (error) {
      box.textContent = problemText(error);
      box.hidden = false;
    }
  }

  function renderPending(clientId, body) {
    const item = document.createElement("li");
    item.className = "mine";
    item.dataset.pending = clientId;
    const who = document.createElement("strong");
    who.textContent = `${text("you")}: `;
    const span = document.createElement("span");
    span.textContent = body;
    const state = document.createElement("span");
    state.className = "hint";
    state.textContent = ` ${text("sending")}`;
    item.append(who, span, state);
    list.append(item);
  }

  function markRead() {
    if (document.visibilityState !== "visible" || lastSeq <= readSeq) return;
    if (socket.send({ type: "read", conversation, seq: lastSeq })) readSeq = lastSeq;
  }

  function sendPending() {
    for (const [clientId, body] of pending) {
      socket.send({ type: "send", id: clientId, conversation, text: body });
    }
  }

  function onFrame(frame) {
    if (frame.type === "messages") {
      for (const message of frame.messages) render(message);
      lastSeq = Math.max(lastSeq, frame.until);
      if (frame.more) socket.send({ type: "sync", conversation, after: frame.until });
      markRead();
    } else if (frame.type === "message") {
      render(frame.message);
      if (frame.message.conversation === conversation) markRead();
    } else if (frame.type === "ack") {
      pending.delete(frame.id);
      savePending();
      list.querySelector(`[data-pending="${CSS.escape(frame.id)}"]`)?.remove();
      render(frame.message);
    } else if (frame.type === "typing" && frame.conversation === conversation) {
      typingLine.textContent = format(text("typing"), { name: frame.who });
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => (typingLine.textContent = ""), 4000);
    } else if (frame.type === "hidden" && frame.conversation === conversation) {
      list.querySelector(`[data-seq="${frame.seq}"]`)?.remove();
    } else if (frame.type === "error") {
      if (frame.ref && pending.has(frame.ref)) {
        pending.delete(frame.ref);
        savePending();
        list.querySelector(`[data-pending="${CSS.escape(frame.ref)}"]`)?.remove();
      }
      const box = composer.querySelector("[data-form-error]");
      box.textContent = [frame.title, frame.detail].filter(Boolean).join(" — ");
      box.hidden = false;
    }
  }

  const socket = new ChatSocket({
    onFrame,
    onOpen() {
      connection.textContent = text("online");
      root.dataset.online = "true";
      socket.send({ type: "sync", conversation, after: lastSeq, limit: 200 });
      sendPending();
    },
    onClose() {
      connection.textContent = text("offline");
      root.dataset.online = "false";
    },
  });

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = field.value.trim();
    if (!body) return;
    composer.querySelector("[data-form-error]").hidden = true;
    const clientId = crypto.randomUUID();
    pending.set(clientId, body);
    savePending();
    renderPending(clientId, body);
    field.value = "";
    field.focus();
    socket.send({ type: "send", id: clientId, conversation, text: body });
  });

  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });

  field.addEventListener("input", () => {
    const now = Date.now();
    if (now - lastTypingSent > 3000) {
      lastTypingSent = now;
      socket.send({ type: "typing", conversation });
    }
  });

  const attachInput = composer.querySelector("[data-attach]");
  attachInput.addEventListener("change", async () => {
    const file = attachInput.files[0];
    if (file) await attach(file);
    attachInput.value = "";
  });

  document.addEventListener("visibilitychange", markRead);
  for (const [clientId, body] of pending) renderPending(clientId, body);
  socket.connect();
}
