// The brand console: forms go through the JSON API, and care frames from the realtime
// gateway refresh the live regions (inbox, thread, notes, status) without a reload. Every
// visible string comes from the page (translated on the server) or from the API's problems.
import { call, problemText } from "./api.js";
import { ChatSocket } from "./chat_socket.js";

const root = document.querySelector("[data-console]");

function announce(text) {
  const region = document.getElementById("status");
  if (region && text) region.textContent = text;
}

function formValues(form) {
  const values = {};
  for (const [name, value] of new FormData(form).entries()) {
    if (typeof value !== "string") continue;
    if (form.dataset.list === name) {
      values[name] = value.split(/[,،、，]/).map((part) => part.trim()).filter(Boolean);
    } else if (form.dataset.nullable === name && value === "") {
      values[name] = null;
    } else {
      values[name] = value;
    }
  }
  return values;
}

let refreshing = null;
let again = false;

// One fetch at a time; a change announced while one is on its way fetches once more after
// it (its answer may predate the change), so the last update is never lost.
async function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      const response = await fetch(window.location.href, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const region of document.querySelectorAll("[data-live]")) {
        const next = fresh.querySelector(`[data-live="${region.dataset.live}"]`);
        if (!next) continue;
        if (region.innerHTML !== next.innerHTML) region.innerHTML = next.innerHTML;
        for (const attribute of next.getAttributeNames()) {
          region.setAttribute(attribute, next.getAttribute(attribute));
        }
      }
    } finally {
      refreshing = null;
      if (again) {
        again = false;
        refresh();
      }
    }
  })();
  return refreshing;
}

async function submit(form) {
  const box = form.querySelector("[data-form-error]");
  if (box) box.hidden = true;
  const button = form.querySelector("[type=submit]");
  if (button) button.disabled = true;
  try {
    await call(form.dataset.method || "POST", form.dataset.consoleApi, formValues(form));
    announce(form.dataset.done);
    if (form.hasAttribute("data-reset")) {
      form.reset();
      await refresh();
    } else {
      window.location.reload();
    }
  } catch (error) {
    const text = problemText(error);
    if (box) {
      box.textContent = text;
      box.hidden = false;
      box.focus();
    } else {
      announce(text);
    }
  } finally {
    if (button) button.disabled = false;
  }
}

if (root) {
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-console-form]");
    if (!form) return;
    event.preventDefault();
    submit(form);
  });
  // Ctrl/Cmd+Enter sends the reply or the note from its text box.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    const form = event.target.closest && event.target.closest("form[data-console-form]");
    if (form) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  const socket = new ChatSocket({
    onFrame: async (frame) => {
      if (frame.type !== "care" || frame.organisation_id !== root.dataset.organisation) return;
      if (root.dataset.conversation && frame.conversation_id !== root.dataset.conversation) return;
      await refresh();
      announce(root.dataset.newActivity);
    },
    onOpen: () => {
      root.dataset.online = "true";
      refresh();
    },
    onClose: () => {
      root.dataset.online = "false";
    },
  });
  socket.connect();
}
