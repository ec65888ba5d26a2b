// The mini program host: hands the sandboxed frame one end of a MessageChannel at each load
// and answers bridge calls arriving on it. Protocol v1: the frame sends
// {v: 1, id, method, params}; the host answers {v: 1, id, ok: true, result} or
// {v: 1, id, ok: false, error: {code, message}}. Nothing else is ever read from the frame.

import { call, problemText } from "./api.js";

const PROTOCOL = 1;
const options = JSON.parse(document.getElementById("miniapp-options").textContent);
const frame = document.querySelector("[data-miniapp-frame]");
const backButton = document.querySelector("[data-miniapp-back]");
const stack = [options.page];
let port = null;

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

function pageOf(url) {
  const [path, query = ""] = String(url || "").replace(/^\/+/, "").split("?");
  if (!options.pages.includes(path)) throw new BridgeError("no_such_page", path);
  return { path, query };
}

function load({ path, query }) {
  const extra = query ? `?${query}` : "";
  frame.src = `${options.base}${encodeURI(path)}.html${extra}`;
  backButton.hidden = stack.length < 2;
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
    if (needed && !options.permissions.includes(needed)) {
      throw new BridgeError("permission_not_declared", needed);
    }
    const handler = Object.hasOwn(methods, method) ? methods[method] : null;
    if (!handler) throw new BridgeError(needed ? "not_available" : "unknown_method", method);
    const result = await handler(params && typeof params === "object" ? params : {});
    return { v: PROTOCOL, id, ok: true, result };
  } catch (error) {
    const code = error.code || (error.problem ? error.problem.type : "failed");
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
  // can name it: the port is handed to this frame's window only, at its load; from then on
  // every call travels over the port, never through window messages.
  frame.contentWindow.postMessage({ omo: "bridge", v: PROTOCOL }, "*", [channel.port2]);
}

// Listen first, then load: a load that happened before this module ran would leave the
// frame without its port.
frame.addEventListener("load", connect);
frame.src = frame.dataset.src;
backButton.addEventListener("click", () => methods.navigateBack().catch(() => {}));
