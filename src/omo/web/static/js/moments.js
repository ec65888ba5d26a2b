// Moments: compose (photos or a video uploaded first, each with its description; or a link,
// mini program or coupon card; an optional place), like, comment, reply, delete, labels on a
// friend, sponsored posts' opt-outs, and realtime: a like, comment, reply or mention pushed on
// the person's channel appears without reloading. Every visible string comes from the page or
// the API's problems.
import { call, problemText } from "./api.js";
import { announce, showError } from "./app.js";
import { ChatSocket } from "./chat_socket.js";

const API = "/api/v1/social";

async function upload(kind, file, alt) {
  const params = new URLSearchParams({ kind, alt });
  const media = await call("POST", `${API}/media?${params}`, file, {
    raw: true,
    headers: { "Content-Type": "application/octet-stream" },
  });
  return media.id;
}

function draft(form) {
  const field = (name) => form.elements.namedItem(name).value.trim();
  const [visibility, label] = form.elements.namedItem("visibility").value.split(":");
  const body = { text: form.elements.namedItem("text").value, visibility };
  if (label) body.labels = [label];
  const kind = field("card_kind");
  if (kind) {
    body.card = { kind, url: field("card_url"), title: field("card_title"), target: field("card_target") };
  }
  if (field("place")) body.place = { name: field("place") };
  return body;
}

function compose(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = form.querySelector("[data-form-error]");
    if (box) box.hidden = true;
    const button = form.querySelector("[type=submit]");
    button.disabled = true;
    try {
      const body = draft(form);
      const alt = form.elements.namedItem("alt").value;
      const photos = [];
      for (const file of form.elements.namedItem("photos").files) {
        photos.push(await upload("image", file, alt));
      }
      if (photos.length) body.photos = photos;
      const [video] = form.elements.namedItem("video").files;
      if (video) body.video = await upload("video", video, alt);
      await call("POST", `${API}/posts`, body);
      announce(form.dataset.done);
      window.location.reload();
    } catch (error) {
      showError(form, error);
    } finally {
      button.disabled = false;
    }
  });
}

// Clicks are delegated, so a post swapped in by a realtime update works like the others.
const actions = [];

function onClick(selector, handler) {
  actions.push([selector, handler]);
}

document.addEventListener("click", async (event) => {
  for (const [selector, handler] of actions) {
    const button = event.target.closest(selector);
    if (!button) continue;
    try {
      await handler(button);
    } catch (error) {
      announce(problemText(error));
    }
    return;
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("[data-comment-form]");
  if (!form) return;
  event.preventDefault();
  const text = form.elements.namedItem("text").value;
  const replyTo = form.elements.namedItem("reply_to").value;
  try {
    await call("POST", `${API}/posts/${form.dataset.commentForm}/comments`, {
      text,
      ...(replyTo ? { reply_to: replyTo } : {}),
    });
    window.location.reload();
  } catch (error) {
    showError(form, error);
  }
});

function newLabel(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("POST", `${API}/labels`, {
        name: form.elements.namedItem("name").value,
        members: [form.dataset.newLabel],
      });
      window.location.reload();
    } catch (error) {
      showError(form, error);
    }
  });
}

function focusTimeline() {
  const heading = document.getElementById("timeline-title");
  if (heading) heading.focus();
}

onClick("[data-like]", async (button) => {
  const liked = button.getAttribute("aria-pressed") === "true";
  await call(liked ? "DELETE" : "PUT", `${API}/posts/${button.dataset.like}/like`);
  await refresh(button.dataset.like);
});
onClick("[data-delete-post]", async (button) => {
  await call("DELETE", `${API}/posts/${button.dataset.deletePost}`);
  announce(button.dataset.done);
  button.closest("[data-post]").remove();
  focusTimeline();
});
onClick("[data-delete-comment]", async (button) => {
  await call("DELETE", `${API}/comments/${button.dataset.deleteComment}`);
  button.closest("li").remove();
});
onClick("[data-reply]", async (button) => {
  const form = button.closest("[data-post]").querySelector("[data-comment-form]");
  form.elements.namedItem("reply_to").value = button.dataset.reply;
  form.querySelector("[data-replying]").textContent = button.dataset.replyName;
  form.elements.namedItem("text").focus();
});
onClick("[data-label-toggle]", async (button) => {
  const members = new Set(button.dataset.members.split(" ").filter(Boolean));
  const who = button.dataset.omoId;
  if (members.has(who)) members.delete(who);
  else members.add(who);
  await call("PATCH", `${API}/labels/${button.dataset.labelToggle}`, { members: [...members] });
  window.location.reload();
});
onClick("[data-claim-coupon]", async (button) => {
  await call("POST", "/api/v1/coupons/claims", { campaign_id: button.dataset.claimCoupon });
  announce(button.dataset.done);
  button.disabled = true;
});
onClick("[data-hide-brand]", async (button) => {
  await call("PUT", `${API}/sponsored/hidden/${button.dataset.hideBrand}`);
  announce(button.dataset.done);
  button.closest("[data-sponsored]").remove();
  focusTimeline();
});
onClick("[data-no-sponsored]", async (button) => {
  await call("PUT", `${API}/sponsored/preferences`, { no_sponsored: true });
  announce(button.dataset.done);
  button.closest("[data-sponsored]").remove();
  focusTimeline();
});

// -- realtime --------------------------------------------------------------------------------

// Swap a post on this page for its fresh rendering (same visibility rules as the page).
async function refresh(postId) {
  const shown = document.querySelector(`[data-post="${CSS.escape(postId)}"]`);
  if (!shown) return;
  const full = shown.querySelector("[data-comment-form]") ? "full" : "card";
  const response = await fetch(`/moments/${encodeURIComponent(postId)}?fragment=${full}`, {
    credentials: "same-origin",
  });
  if (!response.ok) return;
  const holder = document.createElement("div");
  holder.innerHTML = await response.text();
  const fresh = holder.querySelector("[data-post]");
  if (!fresh) return;
  // Keep what the person is typing in the comment box.
  const typing = shown.querySelector("[data-comment-form] input[name=text]");
  const kept = typing ? typing.value : "";
  const hadFocus = typing && document.activeElement === typing;
  shown.replaceWith(fresh);
  const box = fresh.querySelector("[data-comment-form] input[name=text]");
  if (box && kept) box.value = kept;
  if (box && hadFocus) box.focus();
}

function live() {
  const section = document.querySelector("[data-live]");
  const log = section ? section.querySelector("[data-live-list]") : null;

  async function onFrame(frame) {
    if (frame.type !== "moments") return;
    await refresh(frame.post);
    if (!log) return;
    const notes = await call("GET", `${API}/notifications`);
    const note = notes.find(
      (n) => n.post_id === frame.post && n.kind === frame.event && n.actor.omo_id === frame.who,
    );
    if (!note) return;
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/moments/${note.post_id}`;
    link.textContent = section.dataset[note.kind].replace("{name}", note.actor.display_name);
    item.append(link);
    log.prepend(item);
  }

  const socket = new ChatSocket({
    onFrame: (frame) => onFrame(frame).catch(() => {}),
    onOpen: () => {},
    onClose: () => {},
  });
  socket.connect();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-compose]").forEach(compose);
  document.querySelectorAll("[data-new-label]").forEach(newLabel);
  if (document.querySelector("[data-post], [data-live]")) live();
});
