// QR web login: the computer shows a one-time code and waits; the phone confirms it.
import { call, problemText } from "./api.js";

function showError(section, error) {
  const box = section.querySelector("[data-form-error]");
  box.textContent = problemText(error);
  box.hidden = false;
}

export async function startQrLogin(section) {
  const state = section.querySelector("[data-qr-state]");
  const image = section.querySelector("[data-qr-image]");
  const link = section.querySelector("[data-qr-link]");
  for (;;) {
    let ticket;
    try {
      ticket = await call("POST", "/api/v1/identity/qr-tickets");
    } catch (error) {
      showError(section, error);
      return;
    }
    image.innerHTML = ticket.qr_svg;
    const svg = image.querySelector("svg");
    if (svg) svg.setAttribute("aria-hidden", "true");
    link.href = ticket.scan_url;
    link.textContent = ticket.scan_url;
    state.textContent = section.dataset.msgWaiting;
    let status = "pending";
    while (status === "pending" || status === "scanned" || status === "confirmed") {
      try {
        const claim = await call("POST", `/api/v1/identity/qr-tickets/${ticket.ticket_id}/claim`, {
          poll_token: ticket.poll_token,
          wait_seconds: 20,
        });
        if (claim.status === "scanned" && status !== "scanned") state.textContent = section.dataset.msgScanned;
        status = claim.status;
      } catch (error) {
        showError(section, error);
        return;
      }
    }
    if (status === "consumed") {
      state.textContent = section.dataset.msgDone;
      window.location.assign("/");
      return;
    }
    state.textContent = section.dataset.msgExpired;
  }
}

export async function startQrConfirm(section) {
  const scanCode = section.dataset.scanCode;
  const browser = section.querySelector("[data-browser]");
  const confirm = section.querySelector("[data-confirm]");
  try {
    const view = await call("POST", "/api/v1/identity/qr-tickets/scan", { scan_code: scanCode });
    browser.textContent = view.browser_user_agent;
  } catch (error) {
    showError(section, error);
    confirm.disabled = true;
    return;
  }
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    try {
      await call("POST", "/api/v1/identity/qr-tickets/confirm", { scan_code: scanCode });
      const status = document.getElementById("status");
      status.textContent = section.dataset.msgDone;
      section.querySelector(".actions").hidden = true;
    } catch (error) {
      showError(section, error);
    }
  });
}
