// Progressive enhancement of the server-rendered pages. Every visible string comes from the
// page (translated on the server) or from the API's translated problem details.
import { call, problemText } from "./api.js";
import { startQrLogin, startQrConfirm } from "./qr.js";

const statusRegion = () => document.getElementById("status");

export function announce(text) {
  const region = statusRegion();
  if (region) region.textContent = text;
}

export function showError(form, error) {
  const box = form.querySelector("[data-form-error]");
  const text = problemText(error);
  if (!box) return announce(text);
  box.textContent = text;
  box.hidden = false;
  box.focus();
}

function formValues(form) {
  const values = {};
  for (const [name, value] of new FormData(form).entries()) {
    if (typeof value !== "string") continue;
    if (value === "" && form.dataset.method === "PATCH") continue;
    values[name] = value;
  }
  return values;
}

// A changed language or time zone needs the page rendered again by the server.
function changedField(form, names) {
  return (names || "").split(/\s+/).filter(Boolean).some((name) => {
    const field = form.elements.namedItem(name);
    if (!field) return false;
    if (field instanceof HTMLSelectElement) {
      return [...field.options].some((option) => option.selected !== option.defaultSelected);
    }
    return field.value !== field.defaultValue;
  });
}

function fillTemplate(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(values[key] || ""));
}

// Forms that post to the API, handled by one listener on the document, so that forms a page
// swaps in later (a live thread fetched again) work the same as those of the first render.
function enhanceApiForms() {
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form instanceof HTMLFormElement && form.matches("form[data-api]")) submitApiForm(form, event);
  });
}

// preventDefault runs before the first await, so the browser never submits the form itself.
async function submitApiForm(form, event) {
  event.preventDefault();
  const copyFrom = form.dataset.copyFrom && document.getElementById(form.dataset.copyFrom);
  const copyTarget = form.querySelector("[data-copy-target]");
  if (copyFrom && copyTarget) copyTarget.value = copyFrom.value;
  const box = form.querySelector("[data-form-error]");
  if (box) box.hidden = true;
  const values = formValues(form);
  const button = form.querySelector("[type=submit]");
  if (button) button.disabled = true;
  try {
    await call(form.dataset.method || "POST", form.dataset.api, values);
    if (form.dataset.done) announce(form.dataset.done);
    if (changedField(form, form.dataset.reloadOn)) window.location.reload();
    if (form.dataset.next) window.location.assign(fillTemplate(form.dataset.next, values));
  } catch (error) {
    showError(form, error);
  } finally {
    if (button) button.disabled = false;
  }
}

function enhanceAvatarForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.querySelector("input[type=file]").files[0];
    if (!file) return;
    try {
      await call("PUT", "/api/v1/identity/me/avatar", file, {
        raw: true,
        headers: { "Content-Type": file.type || "application/octet-stream" },
      });
      announce(form.dataset.done);
      window.location.reload();
    } catch (error) {
      showError(form, error);
    }
  });
}

function enhanceRevokeButtons() {
  for (const button of document.querySelectorAll("[data-revoke]")) {
    button.addEventListener("click", async () => {
      try {
        await call("DELETE", `/api/v1/identity/devices/${button.dataset.revoke}`);
        announce(button.dataset.done);
        button.closest("li").remove();
      } catch (error) {
        announce(problemText(error));
      }
    });
  }
}

function enhanceLogout() {
  for (const button of document.querySelectorAll("[data-logout]")) {
    button.addEventListener("click", async () => {
      try {
        await call("POST", "/api/v1/identity/logout");
      } finally {
        window.location.assign("/");
      }
    });
  }
}

// Choosing in the list changes nothing until the button is pressed (WCAG 3.2.2 On Input):
// arrow keys move through the languages without reloading the page at each step. Without
// scripts the form still works: it asks for the page again with ?lang=.
function enhanceLanguageSwitcher() {
  const form = document.querySelector("[data-language-switcher]");
  if (!form) return;
  const select = form.querySelector("select");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    document.cookie = `omo_lang=${encodeURIComponent(select.value)}; path=/; max-age=31536000; SameSite=Lax`;
    window.location.reload();
  });
}

function fillFromQuery() {
  const params = new URLSearchParams(window.location.search);
  for (const input of document.querySelectorAll("[data-from-query]")) {
    const value = params.get(input.dataset.fromQuery);
    if (value && !input.value) input.value = value;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  fillFromQuery();
  enhanceApiForms();
  document.querySelectorAll("form[data-avatar-form]").forEach(enhanceAvatarForm);
  enhanceRevokeButtons();
  enhanceLogout();
  enhanceLanguageSwitcher();
  const qrLogin = document.querySelector("[data-qr-login]");
  if (qrLogin) startQrLogin(qrLogin);
  const qrConfirm = document.querySelector("[data-qr-confirm]");
  if (qrConfirm) startQrConfirm(qrConfirm);
});
