// The menu at table N (the scene of the code on the table: t=N). Everything goes through
// the bridge: login, the restaurant's backend (omo.request), the payment sheet of the host.
(async () => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const counts = new Map();
  let menu = [];
  let token = null;
  let scene = "";

  async function backend(path, data) {
    const answer = await wx.request({
      url: window.BACKEND + path,
      method: data === undefined ? "GET" : "POST",
      data,
    });
    if (answer.statusCode >= 400) {
      throw new Error((answer.data && answer.data.error) || "The restaurant did not answer");
    }
    return answer.data;
  }

  function total() {
    let cents = 0;
    for (const item of menu) cents += Math.round(Number(item.price) * 100) * (counts.get(item.id) || 0);
    return cents;
  }

  function render() {
    const list = $("menu");
    list.replaceChildren();
    for (const item of menu) {
      const row = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = `${item.name} — ${item.price} €`;
      const less = document.createElement("button");
      less.type = "button";
      less.textContent = "−";
      less.setAttribute("aria-label", `One less ${item.name}`);
      const qty = document.createElement("span");
      qty.className = "qty";
      qty.textContent = String(counts.get(item.id) || 0);
      const more = document.createElement("button");
      more.type = "button";
      more.textContent = "+";
      more.setAttribute("aria-label", `One more ${item.name}`);
      more.dataset.dish = item.id;
      less.onclick = () => { counts.set(item.id, Math.max(0, (counts.get(item.id) || 0) - 1)); render(); };
      more.onclick = () => { counts.set(item.id, (counts.get(item.id) || 0) + 1); render(); };
      const controls = document.createElement("span");
      controls.append(less, qty, more);
      row.append(name, controls);
      list.append(row);
    }
    const cents = total();
    $("total").textContent = cents ? `Total ${(cents / 100).toFixed(2)} €` : "";
    $("order").disabled = cents === 0;
  }

  async function order() {
    $("order").disabled = true;
    $("error").textContent = "";
    try {
      const items = [...counts].filter(([, n]) => n > 0).map(([id, quantity]) => ({ id, quantity }));
      const created = await backend("/api/orders", { token, scene, items });
      await omo.requestPayment({ prepayId: created.prepay_id });
      const checked = await backend(`/api/orders/${created.order_id}/check`, { token });
      await omo.redirectTo({
        url: `pages/paid?order=${encodeURIComponent(created.order_id)}&paid=${checked.paid}&discount=${checked.discount}`,
      });
    } catch (error) {
      $("error").textContent = error.code === "cancelled" ? "Payment cancelled." : error.message;
      $("order").disabled = total() === 0;
    }
  }

  try {
    const launch = await omo.getLaunchOptions();
    scene = launch.scene || "";
    const table = /^t=([0-9]{1,3})$/.exec(scene);
    $("table").textContent = table ? `Table ${table[1]}` : "Scan the code on your table to order.";
    const login = await wx.login();
    token = (await backend("/api/session", { code: login.code })).token;
    menu = (await backend("/api/menu")).items;
    render();
    $("order").onclick = order;
    if (!table) $("order").hidden = true;
  } catch (error) {
    $("error").textContent = error.message;
  }
})();
