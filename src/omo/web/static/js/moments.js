// Moments: compose (photos uploaded first, each with its description), like, comment, reply,
// delete, labels on a friend. Every visible string comes from the page or the API's problems.
import { call, problemText } from "./api.js";
import { announce, showError } from "./app.js";

const API = "/api/v1/social";

function compose(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = form.querySelector("[data-form-error]");
    if (box) box.hidden = true;
    const button = form.querySelector("[type=submit]");
    button.disabled = true;
    try {
      const alt = form.elements.namedItem("alt").value;
      const photos = [];
      for (const file of form.elements.namedItem("photos").files) {
        const params = new URLSearchParams({ kind: "image", alt });
        const media = await call("POST", `${API}/media?${params}`, file, {
          raw: true,
          headers: { "Content-Type": "application/octet-stream" },
        });
        photos.push(media.id);
      }
      const [visibility, label] = form.elements.namedItem("visibility").value.split(":");
      const body = { text: form.elements.namedItem("text").value, photos, visibility };
      if (label) body.labels = [label];
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

function onClick(selector, handler) {
  for (const button of document.querySelectorAll(selector)) {
    button.addEventListener("click", async () => {
      try {
        await handler(button);
      } catch (error) {
        announce(problemText(error));
      }
    });
  }
}

function commentForm(form) {
  form.addEventListener("submit", async (event) => {
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
}

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

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-compose]").forEach(compose);
  document.querySelectorAll("[data-comment-form]").forEach(commentForm);
  document.querySelectorAll("[data-new-label]").forEach(newLabel);
  onClick("[data-like]", async (button) => {
    const liked = button.getAttribute("aria-pressed") === "true";
    await call(liked ? "DELETE" : "PUT", `${API}/posts/${button.dataset.like}/like`);
    window.location.reload();
  });
  onClick("[data-delete-post]", async (button) => {
    await call("DELETE", `${API}/posts/${button.dataset.deletePost}`);
    announce(button.dataset.done);
    button.closest("[data-post]").remove();
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
});
