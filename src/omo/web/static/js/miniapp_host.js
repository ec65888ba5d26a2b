// The mini program host: hands the sandboxed frame one end of a MessageChannel at each load
// and answers bridge calls arriving on it. Protocol v1: the frame sends
// {v: 1, id, method, params}; the host answers {v: 1, id, ok: true, result} or
// {v: 1, id, ok: false, error: {code, message}}. Nothing else is ever read from the frame.

import { call, problemText } from "./api.js";
import { scan } from "./scanner.js";

const PROTOCOL = 1;

class BridgeError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

// Calls that need a permission declared in the manifest (req_permissions).
const NEEDS = {
  getUserProfile: "profile",
  getLocation: "location",
  scanCode: "camera",
  requestPayment: "payment",
  chooseCoupon: "coupons",
  requestSubscribeMessage: "subscribe_message",
  share: "share",
};

// Runs one mini program in `root` (the host page's [data-miniapp] section: top bar, dialogs,
// the frame and its options). Used by the host page itself and by the app's in-app launch
// (miniapp_launch.js), which mounts a freshly fetched section without leaving the app page.
// `onClose`: what the bar's Close does in the app (else it is a link home). Returns
// {unmount, navigations}: unmount closes the port, stops listening and removes the frame.
export function mount(root, { onClose = null } = {}) {
  const options = JSON.parse(root.querySelector("[data-miniapp-options]").textContent);
  const texts = JSON.parse(root.querySelector("[data-miniapp-texts]").textContent);
  const privacy = root.querySelector("[data-miniapp-privacy]");
  const prompt = root.querySelector("[data-miniapp-prompt]");
  const launchApi = `/api/v1/miniapps/launch/${options.appid}`;
  const trialQuery = options.trial ? "?trial=true" : "";
  let consent = options.consent;
  const frame = root.querySelector("[data-miniapp-frame]");
  const backButton = root.querySelector("[data-miniapp-back]");
  const stack = [options.page];
  const stopped = new AbortController();
  let port = null;
  let navigations = 0;

  // Ask the person once per permission (the answer is kept server-side, revocable in settings).
  function ask(permission) {
    const name = texts.names[permission] || permission;
    prompt.querySelector("[data-prompt-title]").textContent = texts.asks
      .replace("%(name)s", options.name)
      .replace("%(what)s", name);
    prompt.querySelector("[data-prompt-reason]").textContent = options.permissions[permission] || "";
    prompt.hidden = false;
    const allow = prompt.querySelector("[data-prompt-allow]");
    allow.focus();
    return new Promise((resolve) => {
      const answer = (granted) => () => {
        prompt.hidden = true;
        resolve(granted);
      };
      allow.onclick = answer(true);
      prompt.querySelector("[data-prompt-deny]").onclick = answer(false);
    });
  }

  async function ensureGrant(permission) {
    if (!Object.hasOwn(options.permissions, permission)) {
      throw new BridgeError("permission_not_declared", permission);
    }
    let granted = consent.grants[permission];
    if (granted === undefined) {
      granted = await ask(permission);
      consent = await call("PUT", `${launchApi}/grants/${permission}${trialQuery}`, { granted });
    }
    if (granted !== true) throw new BridgeError("permission_denied", permission);
  }

  const paySheet = root.querySelector("[data-miniapp-pay]");

  function formatMoney(money) {
    return new Intl.NumberFormat(document.documentElement.lang, {
      style: "currency",
      currency: money.currency,
    }).format(Number(money.amount));
  }

  // The payment sheet belongs to the host: the frame names an order (its server created it),
  // the person sees the merchant and amount from the server and confirms with their PIN here.
  async function requestPayment(params) {
    const prepay = String(params.prepayId || params.package || "").replace(/^prepay_id=/, "");
    if (!/^[0-9a-f-]{36}$/.test(prepay)) throw new BridgeError("invalid_order", prepay);
    const path = `${launchApi}/payments/${prepay}`;
    const order = await call("GET", path);
    paySheet.querySelector("[data-pay-merchant]").textContent = order.merchant_name;
    paySheet.querySelector("[data-pay-amount]").textContent = formatMoney(order.amount);
    paySheet.querySelector("[data-pay-description]").textContent = order.description;
    const error = paySheet.querySelector("[data-pay-error]");
    error.hidden = true;
    paySheet.hidden = false;
    paySheet.pin.value = "";
    paySheet.pin.focus();
    return new Promise((resolve, reject) => {
      paySheet.querySelector("[data-pay-cancel]").onclick = () => {
        paySheet.hidden = true;
        reject(new BridgeError("cancelled"));
      };
      paySheet.onsubmit = async (event) => {
        event.preventDefault();
        const body = { pin: paySheet.pin.value };
        if (params.amount !== undefined) body.amount = String(params.amount);
        if (params.couponId) body.coupon_id = String(params.couponId);
        try {
          const paid = await call("POST", path, body);
          paySheet.hidden = true;
          resolve({ status: paid.status, orderId: paid.order_id, paid: paid.paid });
        } catch (failure) {
          const type = failure.problem ? String(failure.problem.type || "") : "";
          if (["/problems/pin-wrong", "/problems/pin-required", "/problems/pin-invalid"].includes(type)) {
            error.textContent = problemText(failure);
            error.hidden = false;
            return;
          }
          paySheet.hidden = true;
          reject(failure);
        }
      };
    });
  }

  function storageKey(params) {
    const key = String(params.key || "");
    if (!key || key.length > 128) throw new BridgeError("invalid_key", key);
    return encodeURIComponent(key);
  }

  function pageOf(url) {
    const [path, query = ""] = String(url || "").replace(/^\/+/, "").split("?");
    if (!options.pages.includes(path)) throw new BridgeError("no_such_page", path);
    return { path, query };
  }

  function load({ path, query }) {
    navigations += 1;
    const extra = query ? `?${query}` : "";
    frame.src = `${options.base}${encodeURI(path)}.html${extra}`;
    backButton.hidden = stack.length < 2;
  }

  // `request` (wx.request): the frame has no network; the host asks the server to fetch from
  // the mini program's registered backend and hands back {statusCode, header, data}.
  async function backendRequest(params) {
    const body = {
      url: String(params.url || ""),
      method: String(params.method || "GET").toUpperCase(),
      header: params.header && typeof params.header === "object" ? params.header : {},
      dataType: params.dataType === "text" ? "text" : "json",
    };
    if (params.data !== undefined) body.data = params.data;
    return call("POST", `${launchApi}/request${trialQuery}`, body);
  }

  // `scanCode` (wx.scanCode): the camera opens in the host, never in the frame; the frame only
  // gets what the code says.
  async function scanCode(params) {
    await ensureGrant("camera");
    const box = root.querySelector("[data-scanner]");
    frame.setAttribute("aria-hidden", "true");
    try {
      const code = await scan(box, { onlyImage: false });
      return { result: code.result, scanType: code.scanType, charSet: "utf-8" };
    } finally {
      frame.removeAttribute("aria-hidden");
      frame.focus();
    }
  }

  const methods = {
    ping: async () => ({}),
    getLaunchOptions: async () => ({
      path: stack[stack.length - 1],
      scene: options.scene,
      query: options.link ? { link: options.link } : {},
    }),
    getSystemInfo: async () => ({
      platform: "omo",
      bridge: PROTOCOL,
      language: document.documentElement.lang,
    }),
    getUserProfile: async () => {
      await ensureGrant("profile");
      return call("GET", `${launchApi}/profile`);
    },
    getLocation: async () => {
      await ensureGrant("location");
      let precise = false;
      if (Object.hasOwn(options.permissions, "precise_location")) {
        try {
          await ensureGrant("precise_location");
          precise = true;
        } catch {
          precise = false;
        }
      }
      const position = await new Promise((resolve, reject) =>
        navigator.geolocation.getCurrentPosition(resolve, () =>
          reject(new BridgeError("location_unavailable")),
        ),
      );
      // Coarse unless precise was granted: about 1 km.
      const round = (value) => (precise ? value : Math.round(value * 100) / 100);
      return {
        latitude: round(position.coords.latitude),
        longitude: round(position.coords.longitude),
        accuracy: precise ? position.coords.accuracy : Math.max(position.coords.accuracy, 1000),
      };
    },
    setStorage: async (params) => {
      const usage = await call("PUT", `${launchApi}/storage/${storageKey(params)}`, {
        value: JSON.stringify(params.data === undefined ? null : params.data),
      });
      return usage;
    },
    getStorage: async (params) => {
      const found = await call("GET", `${launchApi}/storage/${storageKey(params)}`);
      return { data: JSON.parse(found.value) };
    },
    removeStorage: async (params) => {
      await call("DELETE", `${launchApi}/storage/${storageKey(params)}`);
      return {};
    },
    requestPayment: requestPayment,
    request: backendRequest,
    scanCode: scanCode,
    login: async () => {
      const trial = options.trial ? "?trial=true" : "";
      const issued = await call("POST", `/api/v1/miniapps/launch/${options.appid}/login${trial}`);
      return { code: issued.code };
    },
    navigateTo: async (params) => {
      const target = pageOf(params.url);
      stack.push(target.path);
      load(target);
      return {};
    },
    redirectTo: async (params) => {
      const target = pageOf(params.url);
      stack[stack.length - 1] = target.path;
      load(target);
      return {};
    },
    navigateBack: async () => {
      if (stack.length < 2) throw new BridgeError("no_page_to_go_back_to");
      stack.pop();
      load({ path: stack[stack.length - 1], query: "" });
      return {};
    },
  };

  async function answer(message) {
    const { id, method, params } = message;
    try {
      const needed = NEEDS[method];
      if (needed && !Object.hasOwn(options.permissions, needed)) {
        throw new BridgeError("permission_not_declared", needed);
      }
      const handler = Object.hasOwn(methods, method) ? methods[method] : null;
      if (!handler) throw new BridgeError(needed ? "not_available" : "unknown_method", method);
      const result = await handler(params && typeof params === "object" ? params : {});
      return { v: PROTOCOL, id, ok: true, result };
    } catch (error) {
      const type = error.problem ? String(error.problem.type || "") : "";
      const code = error.code || (type ? type.replace("/problems/", "") : "failed");
      const text = error.problem ? problemText(error) : error.message;
      return { v: PROTOCOL, id, ok: false, error: { code, message: text } };
    }
  }

  function connect() {
    if (port) port.close();
    const channel = new MessageChannel();
    port = channel.port1;
    port.onmessage = async (event) => {
      const message = event.data;
      if (!message || message.v !== PROTOCOL || typeof message.id !== "number") return;
      port.postMessage(await answer(message));
    };
    // The frame's origin is opaque (sandboxed without allow-same-origin), so no target origin
    // can name it: the port is handed to this frame's window only, when its omo.js says hello;
    // from then on every call travels over the port, never through window messages.
    frame.contentWindow.postMessage({ omo: "bridge", v: PROTOCOL }, "*", [channel.port2]);
  }

  // Each page of the frame says hello as soon as its omo.js runs — not at its `load`, which
  // waits for every image of the page (up to 1 MiB): the bridge answers before they arrive.
  // Only a hello from this frame's current window counts; nothing else is read from it.
  // A page repeats its hello (with its own id) until it has a port, so one sent before this
  // module ran is not lost; each page gets exactly one port.
  let greeted = null;
  window.addEventListener(
    "message",
    (event) => {
      if (event.source !== frame.contentWindow || !frame.contentWindow) return;
      const data = event.data;
      if (!data || data.omo !== "hello" || data.v !== PROTOCOL || typeof data.id !== "string") return;
      if (data.id === greeted || data.id.length > 64) return;
      greeted = data.id;
      connect();
    },
    { signal: stopped.signal },
  );
  // The frame may have said hello before this module ran (it loads alongside this page): ask
  // it to say it again. A page that had not started yet says hello itself when it does.
  if (frame.contentWindow) frame.contentWindow.postMessage({ omo: "ask", v: PROTOCOL }, "*");

  function start() {
    privacy.hidden = true;
    frame.hidden = false;
    // Rendered with its src when the notice was accepted before: it loads alongside this page.
    if (frame.getAttribute("src") !== frame.dataset.src) frame.src = frame.dataset.src;
  }

  function begin() {
    if (consent.privacy_accepted) {
      start();
      return;
    }
    frame.hidden = true;
    privacy.hidden = false;
    const accept = privacy.querySelector("[data-privacy-accept]");
    accept.focus();
    accept.addEventListener("click", async () => {
      consent = await call("POST", `${launchApi}/privacy${trialQuery}`);
      start();
    });
  }

  begin();
  backButton.addEventListener("click", () => methods.navigateBack().catch(() => {}));
  if (onClose) {
    // Opened inside the app: Close goes back to the app's page it was opened from.
    root.querySelector("[data-miniapp-close]").addEventListener("click", (event) => {
      event.preventDefault();
      onClose();
    });
  }

  // -- chooseCoupon, requestSubscribeMessage, share (and the bar's share button) --------------
  // Each is a self-contained dialog owned by the host; the frame only gets the result.

  function showDialog(dialog) {
    dialog.hidden = false;
    const first = dialog.querySelector("input, button");
    if (first) first.focus();
  }

  function choice(list, input, text, hint) {
    const item = document.createElement("li");
    const label = document.createElement("label");
    label.append(input, " ", text);
    if (hint) {
      const small = document.createElement("span");
      small.className = "hint";
      small.textContent = ` ${hint}`;
      label.append(small);
    }
    item.append(label);
    list.append(item);
  }

  // chooseCoupon({prepayId?}): the person's coupons usable at this mini program's merchant
  // (with what each takes off the order, if one is named); cancelling is an error the mini
  // program handles ("cancelled"). The result is the coupon to pass to requestPayment.
  async function chooseCoupon(params) {
    await ensureGrant("coupons");
    const prepay = String(params.prepayId || params.package || "").replace(/^prepay_id=/, "");
    const query = new URLSearchParams();
    if (/^[0-9a-f-]{36}$/.test(prepay)) query.set("prepay_id", prepay);
    if (options.trial) query.set("trial", "true");
    const coupons = await call("GET", `${launchApi}/coupons?${query}`);
    const dialog = root.querySelector("[data-miniapp-coupons]");
    const list = dialog.querySelector("[data-coupon-list]");
    list.replaceChildren();
    coupons.forEach((coupon, index) => {
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "coupon";
      input.value = coupon.coupon_id;
      input.checked = index === 0;
      const off = coupon.discount ? texts.off.replace("%(amount)s", formatMoney(coupon.discount)) : "";
      const until = texts.until.replace("%(date)s", new Date(coupon.ends_at).toLocaleDateString(document.documentElement.lang));
      choice(list, input, coupon.title, [off, until].filter(Boolean).join(" · "));
    });
    dialog.querySelector("[data-coupon-empty]").hidden = coupons.length > 0;
    dialog.querySelector("[data-coupon-use]").disabled = coupons.length === 0;
    showDialog(dialog);
    return new Promise((resolve, reject) => {
      dialog.querySelector("[data-coupon-cancel]").onclick = () => {
        dialog.hidden = true;
        reject(new BridgeError("cancelled"));
      };
      dialog.onsubmit = (event) => {
        event.preventDefault();
        const checked = list.querySelector("input:checked");
        const picked = checked && coupons.find((c) => c.coupon_id === checked.value);
        if (!picked) return;
        dialog.hidden = true;
        resolve({
          couponId: picked.coupon_id,
          title: picked.title,
          discount: picked.discount,
        });
      };
    });
  }

  // requestSubscribeMessage({tmplIds: [...]}): the person allows N messages of each template
  // (its official account's notification templates); answers WeChat's shape
  // {<template id>: "accept" | "reject"}.
  async function requestSubscribeMessage(params) {
    const ids = Array.isArray(params.tmplIds) ? params.tmplIds.map(String).slice(0, 3) : [];
    if (ids.length === 0) throw new BridgeError("invalid_templates");
    const query = new URLSearchParams(ids.map((id) => ["template_id", id]));
    if (options.trial) query.set("trial", "true");
    const templates = await call("GET", `${launchApi}/subscriptions?${query}`);
    const dialog = root.querySelector("[data-miniapp-subscribe]");
    const list = dialog.querySelector("[data-subscribe-list]");
    list.replaceChildren();
    for (const template of templates) {
      const input = document.createElement("input");
      input.type = "number";
      input.min = "0";
      input.max = "10";
      input.value = "1";
      input.name = template.template_id;
      input.dataset.template = template.template_id;
      choice(list, input, texts.howMany.replace("%(title)s", template.title));
    }
    showDialog(dialog);
    const answer = (counts) =>
      Object.fromEntries(ids.map((id) => [id, counts[id] > 0 ? "accept" : "reject"]));
    return new Promise((resolve, reject) => {
      dialog.querySelector("[data-subscribe-cancel]").onclick = () => {
        dialog.hidden = true;
        resolve(answer({}));
      };
      dialog.onsubmit = async (event) => {
        event.preventDefault();
        const counts = {};
        for (const input of list.querySelectorAll("input[data-template]")) {
          counts[input.dataset.template] = Math.max(0, Math.min(10, Number(input.value) || 0));
        }
        dialog.hidden = true;
        try {
          await call("PUT", `${launchApi}/subscriptions${trialQuery}`, { templates: counts });
          resolve(answer(counts));
        } catch (failure) {
          reject(failure);
        }
      };
    });
  }

  // share({title, path}): a mini-program card (messaging's card) into a chat the person picks.
  async function shareToChat(params) {
    const target = pageOf(params.path || stack[stack.length - 1]);
    const url = `${options.shareUrl}${encodeURI(target.path)}${target.query ? `?${target.query}` : ""}`;
    const title = String(params.title || options.name).slice(0, 200);
    const conversations = await call("GET", "/api/v1/messaging/conversations");
    const dialog = root.querySelector("[data-miniapp-sharing]");
    const list = dialog.querySelector("[data-share-list]");
    const error = dialog.querySelector("[data-share-error]");
    error.hidden = true;
    list.replaceChildren();
    dialog.querySelector("[data-share-empty]").hidden = conversations.length > 0;
    return new Promise((resolve, reject) => {
      for (const conversation of conversations) {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "button small";
        button.dataset.shareTo = conversation.id;
        button.textContent = conversation.title;
        button.onclick = async () => {
          try {
            await call("POST", `/api/v1/messaging/conversations/${conversation.id}/messages`, {
              client_id: `mp-share-${crypto.randomUUID()}`,
              card: { url, title, description: texts.shareCard.replace("%(name)s", options.name) },
            });
          } catch (failure) {
            error.textContent = problemText(failure);
            error.hidden = false;
            return;
          }
          dialog.hidden = true;
          resolve({ conversationId: conversation.id, chat: conversation.title });
        };
        item.append(button);
        list.append(item);
      }
      dialog.querySelector("[data-share-cancel]").onclick = () => {
        dialog.hidden = true;
        reject(new BridgeError("cancelled"));
      };
      showDialog(dialog);
    });
  }

  Object.assign(methods, {
    chooseCoupon,
    requestSubscribeMessage,
    // Declared in the manifest (checked above); picking the chat is the person's consent.
    share: shareToChat,
  });

  // The bar's share button is the person's own action: no permission asked.
  const shareButton = root.querySelector("[data-miniapp-share]");
  shareButton.hidden = false;
  shareButton.addEventListener("click", () => shareToChat({}).catch(() => {}));

  return {
    navigations: () => navigations,
    unmount() {
      stopped.abort();
      if (port) port.close();
      port = null;
      frame.remove();
    },
  };
}

// On the host page itself (/mp/{appid}/{page}, a navigation): run the one it holds.
const hosted = document.querySelector("[data-miniapp]");
if (hosted) mount(hosted);
