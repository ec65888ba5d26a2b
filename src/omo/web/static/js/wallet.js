// The wallet: a payment code refreshed every minute, PIN confirmation, receipt and balance.
import { call, problemText } from "./api.js";

const root = document.querySelector("[data-pay-code]");
let seenPayment = null;
let refreshTimer = null;

function spaced(code) {
  return code.replace(/(\d{4})(?=\d)/g, "$1 ");
}

async function showCode() {
  const issued = await call("POST", "/api/v1/pay/codes");
  root.querySelector("[data-pay-code-image]").innerHTML = issued.qr_svg;
  root.querySelector("[data-pay-code-digits]").textContent = spaced(issued.code);
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(showCode, issued.refresh_seconds * 1000);
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
}

function formatMoney(money) {
  try {
    return new Intl.NumberFormat(document.documentElement.lang, {
      style: "currency",
      currency: money.currency,
    }).format(Number(money.amount));
  } catch {
    return `${money.amount} ${money.currency}`;
  }
}

async function renderBalances() {
  const wallet = await call("GET", "/api/v1/pay/wallet");
  const list = document.querySelector("[data-balances]");
  list.replaceChildren(
    ...wallet.balances.map((money) => {
      const item = document.createElement("li");
      item.dataset.currency = money.currency;
      item.textContent = formatMoney(money);
      return item;
    }),
  );
  return wallet.balances;
}

async function showReceipt(payment) {
  const balances = await renderBalances();
  const balance = balances.find((money) => money.currency === payment.paid.currency);
  const box = document.querySelector("[data-receipt]");
  const text = box.querySelector("[data-receipt-text]");
  text.textContent = fill(text.dataset.template, {
    paid: formatMoney(payment.paid),
    merchant: payment.merchant_name,
    discount: formatMoney(payment.discount),
    balance: balance ? formatMoney(balance) : "",
  });
  box.hidden = false;
  showCode();
}

let pendingId = null;

async function poll() {
  try {
    const pending = await call("GET", "/api/v1/pay/payments/pending");
    const section = document.querySelector("[data-pending]");
    if (pending.length && pending[0].id !== pendingId) {
      pendingId = pending[0].id;
      section.querySelector("[data-pending-text]").textContent =
        `${pending[0].merchant_name}: ${formatMoney(pending[0].amount)}`;
      section.hidden = false;
    }
    const history = await call("GET", "/api/v1/pay/payments");
    const latest = history.find((payment) => payment.status === "succeeded");
    if (seenPayment === null) {
      seenPayment = latest ? latest.id : "";
    } else if (latest && latest.id !== seenPayment) {
      seenPayment = latest.id;
      section.hidden = true;
      await showReceipt(latest);
    }
  } catch {
    // The next poll tries again.
  }
}

function enhancePendingForm() {
  const form = document.querySelector("[data-pending-form]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = form.querySelector("[data-form-error]");
    box.hidden = true;
    try {
      await call("POST", `/api/v1/pay/payments/${pendingId}/confirm`, {
        pin: form.elements.namedItem("pin").value,
      });
      form.reset();
      await poll();
    } catch (error) {
      box.textContent = problemText(error);
      box.hidden = false;
      box.focus();
    }
  });
}

if (root) {
  root.querySelector("[data-pay-code-refresh]").addEventListener("click", showCode);
  enhancePendingForm();
  showCode();
  poll();
  setInterval(poll, 2000);
}
