// A follower's conversation with an official account, live: the brand's messages (an agent's
// reply from the care console, the bot's answer, a broadcast) arrive as `account-message`
// frames on the realtime gateway (/ws), and the thread is fetched again and swapped in place
// — rendered by the server, so cards, coupons and times look as on a reload. The visible
// announcement comes from the page (translated on the server).
import { ChatSocket } from "./chat_socket.js";

const thread = document.querySelector("[data-account-thread]");

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
      const list = fresh.querySelector("[data-account-thread]");
      if (list) thread.replaceChildren(...list.childNodes);
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

if (thread) {
  const socket = new ChatSocket({
    onFrame: async (frame) => {
      if (frame.type !== "account-message" || frame.account_id !== thread.dataset.account) return;
      await refresh();
      const region = document.getElementById("status");
      if (region) region.textContent = thread.dataset.newMessage || "";
    },
    onOpen: () => {
      thread.dataset.online = "true";
      refresh();
    },
    onClose: () => {
      thread.dataset.online = "false";
    },
  });
  socket.connect();
}
