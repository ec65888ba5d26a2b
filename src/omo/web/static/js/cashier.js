// The cashier's till: amount + the customer's payment code -> payment, with an order id.
import { call, problemText } from "./api.js";

const form = document.querySelector("[data-cashier-form]");

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

if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = form.querySelector("[data-form-error]");
    const result = document.querySelector("[data-cashier-result]");
    box.hidden = true;
    result.hidden = true;
    const values = Object.fromEntries(new FormData(form).entries());
    const orderId = `till-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
    const button = form.querySelector("[type=submit]");
    button.disabled = true;
    try {
      const paid = await call("POST", `/api/v1/pay/merchants/${values.merchant_id}/payments`, {
        code: values.code.replace(/\s+/g, ""),
        amount: values.amount,
        currency: values.currency,
        order_id: orderId,
      });
      result.textContent =
        paid.payment.status === "succeeded"
          ? fill(form.dataset.done, {
              paid: formatMoney(paid.payment.paid),
              discount: formatMoney(paid.payment.discount),
              balance: formatMoney(paid.balance),
            })
          : form.dataset.pending;
      result.hidden = false;
      form.elements.namedItem("code").value = "";
    } catch (error) {
      box.textContent = problemText(error);
      box.hidden = false;
      box.focus();
    } finally {
      button.disabled = false;
    }
  });
}
