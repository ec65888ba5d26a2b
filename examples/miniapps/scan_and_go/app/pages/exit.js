// The exit code: signed by the shop's backend, single use, valid a few minutes.
(async () => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  try {
    const token = (await omo.getStorage({ key: "token" })).data;
    const order = (await omo.getStorage({ key: "purchase" })).data;
    const answer = await wx.request({
      url: `${window.BACKEND}/api/orders/${encodeURIComponent(order)}/check`,
      method: "POST",
      data: { token },
    });
    if (answer.statusCode >= 400) throw new Error(answer.data.error || "The shop did not answer");
    const exit = answer.data;
    let text = `Paid ${exit.paid} €.`;
    if (Number(exit.discount) > 0) text += ` Your coupon saved ${exit.discount} €.`;
    $("summary").textContent = `${text} Show this code at the exit.`;
    $("qr").src = exit.exit_qr;
    $("qr").hidden = false;
    $("code").textContent = exit.exit_code;
    $("valid").textContent = `Valid ${exit.valid_minutes} minutes, once.`;
  } catch (error) {
    $("error").textContent = error.message;
  }
})();
