// The chat list: friend requests, opening 1:1 chats, creating groups, live unread counts.
import { call, problemText } from "./api.js";
import { ChatSocket } from "./chat_socket.js";

function announce(text) {
  const region = document.getElementById("status");
  if (region) region.textContent = text;
}

for (const button of document.querySelectorAll("[data-contact-action]")) {
  button.addEventListener("click", async () => {
    const omoId = encodeURIComponent(button.dataset.omoId);
    try {
      await call("POST", `/api/v1/messaging/contacts/${omoId}/${button.dataset.contactAction}`);
      window.location.reload();
    } catch (error) {
      announce(problemText(error));
    }
  });
}

for (const button of document.querySelectorAll("[data-open-direct]")) {
  button.addEventListener("click", async () => {
    try {
      const opened = await call("POST", "/api/v1/messaging/conversations/direct", {
        omo_id: button.dataset.openDirect,
      });
      window.location.assign(`/chat/${opened.id}`);
    } catch (error) {
      announce(problemText(error));
    }
  });
}

const groupForm = document.querySelector("[data-new-group]");
if (groupForm) {
  groupForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(groupForm);
    const box = groupForm.querySelector("[data-form-error]");
    box.hidden = true;
    try {
      const created = await call("POST", "/api/v1/messaging/conversations/groups", {
        name: String(data.get("name") || ""),
        members: data.getAll("members").map(String),
      });
      window.location.assign(`/chat/${created.id}`);
    } catch (error) {
      box.textContent = problemText(error);
      box.hidden = false;
      box.focus();
    }
  });
}

// A new message anywhere: the list is re-rendered by the server, which knows the counts.
const chatList = document.querySelector("[data-chat-list]");
if (chatList) {
  let refreshing = null;
  const refresh = () => {
    clearTimeout(refreshing);
    refreshing = setTimeout(async () => {
      const response = await fetch(window.location.pathname, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.querySelector("[data-chat-list]");
      if (fresh) chatList.replaceChildren(...fresh.childNodes);
    }, 150);
  };
  const socket = new ChatSocket({
    onFrame(frame) {
      if (frame.type === "message" || frame.type === "read" || frame.type === "contact") refresh();
    },
    onOpen: refresh,
    onClose() {},
  });
  socket.connect();
}
