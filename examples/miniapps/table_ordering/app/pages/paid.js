(() => {
  "use strict";
  const query = new URLSearchParams(window.location.search);
  const discount = query.get("discount");
  let text = `Order ${query.get("order")} paid: ${query.get("paid")} €.`;
  if (discount && Number(discount) > 0) text += ` Your coupon saved ${discount} €.`;
  document.getElementById("summary").textContent = text;
})();
