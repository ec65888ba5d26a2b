// Nearby: People Nearby (turn on, list in bands, greet, clear), Shake (a button, and the
// phone's motion where the browser offers it), Places nearby with their offers.
import { call, problemText } from "./api.js";

const root = document.querySelector("[data-nearby]");
const text = root.dataset;
const errorBox = root.querySelector("[data-form-error]");

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
}

function showError(error) {
  errorBox.textContent = typeof error === "string" ? error : problemText(error);
  errorBox.hidden = false;
  errorBox.focus();
}

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

function position() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(text.noLocation);
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (found) => resolve({ latitude: found.coords.latitude, longitude: found.coords.longitude }),
      () => reject(text.noLocation),
      { timeout: 10000, maximumAge: 30000 },
    );
  });
}

async function guarded(work) {
  clearError();
  try {
    await work();
  } catch (error) {
    showError(error);
  }
}

// -- People Nearby -------------------------------------------------------------------------

const state = root.querySelector("[data-people-state]");
const list = root.querySelector("[data-people-list]");
const onButton = root.querySelector("[data-people-on]");
const refreshButton = root.querySelector("[data-people-refresh]");
const clearButton = root.querySelector("[data-people-clear]");

function showVisible(until) {
  const visible = Boolean(until);
  state.textContent = visible
    ? fill(text.visibleUntil, {
        time: new Date(until).toLocaleTimeString(document.documentElement.lang, {
          hour: "2-digit",
          minute: "2-digit",
        }),
      })
    : text.hiddenText;
  onButton.hidden = visible;
  refreshButton.hidden = !visible;
  clearButton.hidden = !visible;
  if (!visible) list.replaceChildren();
}

function personItem(person) {
  const item = document.createElement("li");
  item.className = "nearby-person";
  const name = document.createElement("strong");
  name.textContent = person.display_name;
  const band = document.createElement("span");
  band.className = "hint";
  band.textContent = ` · ${text[`band-${person.band}`] || person.band}`;
  const hello = document.createElement("button");
  hello.type = "button";
  hello.className = "button small";
  hello.textContent = fill(text.greet, { name: person.display_name });
  hello.addEventListener("click", () =>
    guarded(async () => {
      const answer = await call("POST", "/api/v1/nearby/people/greetings", {
        handle: person.handle,
      });
      const done = document.createElement("span");
      done.setAttribute("role", "status");
      done.textContent = fill(answer.status === "friend" ? text.friends : text.greeted, {
        name: person.display_name,
      });
      hello.replaceWith(done);
    }),
  );
  item.append(name, band, " ", hello);
  return item;
}

async function search() {
  const answer = await call("POST", "/api/v1/nearby/people/search", await position());
  showVisible(answer.visible_until);
  if (answer.people.length === 0) {
    const item = document.createElement("li");
    item.textContent = text.nobody;
    list.replaceChildren(item);
  } else {
    list.replaceChildren(...answer.people.map(personItem));
  }
}

onButton.addEventListener("click", () =>
  guarded(async () => {
    const seen = await call("PUT", "/api/v1/nearby/people/visibility", await position());
    showVisible(seen.visible_until);
    await search();
  }),
);
refreshButton.addEventListener("click", () => guarded(search));
clearButton.addEventListener("click", () =>
  guarded(async () => {
    await call("DELETE", "/api/v1/nearby/people/visibility");
    showVisible(null);
    onButton.focus();
  }),
);

// -- Shake ---------------------------------------------------------------------------------

const shakeButton = root.querySelector("[data-shake]");
const shakeResult = root.querySelector("[data-shake-result]");
let shaking = false;

function shopPage(page) {
  const box = document.createElement("p");
  if (page.kind === "miniprogram") {
    const link = document.createElement("a");
    link.href = page.target;
    link.textContent = fill(text.openPage, { page: page.title });
    box.append(link);
  } else {
    box.append(claimButton(page.target, page.title));
  }
  return box;
}

function claimButton(campaignId, title) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button small";
  button.textContent = fill(text.claim, { offer: title });
  button.addEventListener("click", () =>
    guarded(async () => {
      await call("POST", "/api/v1/coupons/claims", { campaign_id: campaignId });
      const done = document.createElement("span");
      done.setAttribute("role", "status");
      done.textContent = text.claimed;
      button.replaceWith(done);
    }),
  );
  return button;
}

// A matched pair may greet: a friend request through a short-lived token, never a number.
function greetShaken(answer) {
  const name = answer.partner.display_name;
  const hello = document.createElement("button");
  hello.type = "button";
  hello.className = "button small";
  hello.textContent = fill(text.greetShaken, { name });
  hello.addEventListener("click", () =>
    guarded(async () => {
      const greeted = await call("POST", "/api/v1/nearby/shakes/greetings", {
        token: answer.greet_token,
      });
      const done = document.createElement("span");
      done.textContent = fill(greeted.status === "friend" ? text.friends : text.greeted, { name });
      hello.replaceWith(done);
    }),
  );
  return hello;
}

async function shake() {
  if (shaking) return;
  shaking = true;
  shakeButton.disabled = true;
  shakeResult.textContent = text.shaking;
  try {
    const beacon = new URLSearchParams(location.search).get("beacon");
    const body = { ...(await position()), ...(beacon ? { beacon } : {}) };
    const answer = await call("POST", "/api/v1/nearby/shakes", body);
    if (answer.outcome === "paired") {
      shakeResult.textContent = fill(text.paired, { name: answer.partner.display_name });
      if (answer.greet_token) shakeResult.append(" ", greetShaken(answer));
    } else if (answer.outcome === "shop") {
      shakeResult.replaceChildren(shopPage(answer.page));
    } else {
      shakeResult.textContent = answer.outcome === "again" ? text.again : text.alone;
    }
  } catch (error) {
    shakeResult.textContent = "";
    showError(error);
  } finally {
    shaking = false;
    shakeButton.disabled = false;
  }
}

shakeButton.addEventListener("click", () => {
  clearError();
  shake();
});

// A real shake: a few strong jolts within a second (where the browser gives motion events).
if ("DeviceMotionEvent" in window) {
  let jolts = [];
  window.addEventListener("devicemotion", (event) => {
    const a = event.accelerationIncludingGravity;
    if (!a || a.x === null) return;
    const strength = Math.hypot(a.x, a.y, a.z);
    const now = Date.now();
    if (strength > 25) jolts.push(now);
    jolts = jolts.filter((at) => now - at < 1000);
    if (jolts.length >= 3) {
      jolts = [];
      shake();
    }
  });
}

// -- Places nearby -------------------------------------------------------------------------

const placesList = root.querySelector("[data-places-list]");

function placeItem(place) {
  const item = document.createElement("li");
  const name = document.createElement("strong");
  const brand = place.account_name || place.merchant_name;
  name.textContent = brand && brand !== place.name ? `${brand} · ${place.name}` : place.name;
  const distance = document.createElement("span");
  distance.className = "hint";
  distance.textContent = ` · ${fill(text.metres, { metres: place.distance_m })}`;
  item.append(name, distance);
  if (place.busy) {
    const busy = document.createElement("span");
    busy.className = "hint";
    busy.title = text.busyHint;
    busy.textContent = ` · ${text[`busy-${place.busy}`]}`;
    item.append(busy);
  }
  if (place.account_id) {
    const link = document.createElement("a");
    link.href = `/accounts/${place.account_id}`;
    link.textContent = fill(text.openAccount, { name: place.account_name });
    item.append(" ", link);
  }
  for (const offer of place.offers) {
    item.append(" ", claimButton(offer.campaign_id, offer.title));
  }
  return item;
}

root.querySelector("[data-places-find]").addEventListener("click", () =>
  guarded(async () => {
    const places = await call("POST", "/api/v1/nearby/places/search", await position());
    if (places.length === 0) {
      const item = document.createElement("li");
      item.textContent = text.noPlaces;
      placesList.replaceChildren(item);
    } else {
      placesList.replaceChildren(...places.map(placeItem));
    }
  }),
);

// -- on load -------------------------------------------------------------------------------

call("GET", "/api/v1/nearby/people/visibility")
  .then((seen) => {
    showVisible(seen.visible ? seen.visible_until : null);
    if (seen.visible) return search();
    return null;
  })
  .catch(showError);
