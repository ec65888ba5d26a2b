// Scan-and-go: the camera is the host's (omo.scanCode); the basket is priced by the shop's
// backend, which also asks OMO's coupons engine what the basket unlocks.
(async () => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const basket = new Map(); // code -> {name, price, quantity}
  let token = null;

  async function backend(path, data) {
    const answer = await wx.request({
      url: window.BACKEND + path,
      method: data === undefined ? "GET" : "POST",
      data,
    });
    if (answer.statusCode >= 400) {
      throw new Error((answer.data && answer.data.error) || "The shop did not answer");
    }
    return answer.data;
  }

  const items = () => [...basket].map(([code, line]) => ({ code, quantity: line.quantity }));

  async function refresh() {
    const list = $("basket");
    list.replaceChildren();
    for (const [, line] of basket) {
      const row = document.createElement("li");
      row.textContent = `${line.quantity} × ${line.name} — ${line.price} €`;
      list.append(row);
    }
    $("pay").disabled = basket.size === 0;
    if (!basket.size) return;
    const priced = await backend("/api/basket", { token, items: items() });
    $("total").textContent = `Total ${priced.total} €`;
    $("best").textContent = priced.best
      ? `Your coupon “${priced.best.title}” takes ${priced.best.discount} € off at payment.`
      : "";
    const nudge = $("nudge");
    nudge.hidden = !priced.nearest;
    if (priced.nearest) {
      nudge.textContent = `Spend ${priced.nearest.spend_more} € more to save ${priced.nearest.discount} € (${priced.nearest.title}).`;
    }
  }

  async function scan() {
    $("error").textContent = "";
    try {
      const code = await wx.scanCode({ scanType: ["barCode"] });
      const product = await backend(`/api/products/${encodeURIComponent(code.result)}`);
      const line = basket.get(product.code) || { name: product.name, price: product.price, quantity: 0 };
      line.quantity += 1;
      basket.set(product.code, line);
      await refresh();
    } catch (error) {
      if (error.code !== "cancelled") $("error").textContent = error.message;
    }
  }

  async function pay() {
    $("pay").disabled = true;
    $("error").textContent = "";
    try {
      const created = await backend("/api/orders", { token, items: items() });
      await omo.requestPayment({ prepayId: created.prepay_id });
      await omo.setStorage({ key: "purchase", data: created.order_id });
      await omo.redirectTo({ url: "pages/exit" });
    } catch (error) {
      $("error").textContent = error.code === "cancelled" ? "Payment cancelled." : error.message;
      $("pay").disabled = basket.size === 0;
    }
  }

  try {
    const login = await wx.login();
    token = (await backend("/api/session", { code: login.code })).token;
    await omo.setStorage({ key: "token", data: token });
    $("scan").onclick = scan;
    $("scan").disabled = false;
    $("pay").onclick = pay;
  } catch (error) {
    $("error").textContent = error.message;
  }
})();
