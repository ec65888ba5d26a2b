// omo.js — the client script mini programs include: <script src="/omo.js"></script>.
// It says hello to the parent and waits for the host to hand it a MessageChannel port (only
// from the parent window), then
// sends bridge calls over it: {v: 1, id, method, params}. Every call returns a Promise; the
// wx.* aliases also take WeChat-style {success, fail, complete} callbacks.
(() => {
  "use strict";
  const PROTOCOL = 1;
  const pending = new Map();
  const queue = [];
  let port = null;
  let nextId = 1;

  window.addEventListener("message", (event) => {
    const data = event.data;
    if (port || event.source !== window.parent) return;
    if (!data || data.omo !== "bridge" || data.v !== PROTOCOL || !event.ports[0]) return;
    port = event.ports[0];
    port.onmessage = (reply) => {
      const message = reply.data || {};
      const waiting = pending.get(message.id);
      if (!waiting) return;
      pending.delete(message.id);
      if (message.ok) waiting.resolve(message.result);
      else {
        const error = new Error((message.error && message.error.message) || "bridge error");
        error.code = message.error && message.error.code;
        waiting.reject(error);
      }
    };
    for (const message of queue.splice(0)) port.postMessage(message);
  });
  // Ask the host for the port now (it hands one per hello, to this window only); nothing
  // secret is in the hello, so no target origin is needed.
  // Said again when the host asks (its script may start after this page), and as a fallback
  // every 250 ms for 10 s; the id lets the host hand this page one port only.
  if (window.parent !== window) {
    const hello = { omo: "hello", v: PROTOCOL, id: Math.random().toString(36).slice(2) };
    const greet = () => { if (!port) window.parent.postMessage(hello, "*"); };
    window.addEventListener("message", (event) => {
      const data = event.data;
      if (event.source === window.parent && data && data.omo === "ask" && data.v === PROTOCOL) greet();
    });
    greet();
    const timer = setInterval(() => { if (port) clearInterval(timer); else greet(); }, 250);
    setTimeout(() => clearInterval(timer), 10000);
  }

  function call(method, params) {
    return new Promise((resolve, reject) => {
      const message = { v: PROTOCOL, id: nextId++, method, params: params || {} };
      pending.set(message.id, { resolve, reject });
      if (port) port.postMessage(message);
      else queue.push(message);
    });
  }

  const omo = {
    version: PROTOCOL,
    call,
    ping: () => call("ping"),
    login: () => call("login"),
    getLaunchOptions: () => call("getLaunchOptions"),
    getSystemInfo: () => call("getSystemInfo"),
    getUserProfile: (o) => call("getUserProfile", o),
    getLocation: (o) => call("getLocation", o),
    scanCode: (o) => call("scanCode", o),
    request: (o) => call("request", o),
    requestPayment: (o) => call("requestPayment", o),
    chooseCoupon: (o) => call("chooseCoupon", o),
    requestSubscribeMessage: (o) => call("requestSubscribeMessage", o),
    share: (o) => call("share", o),
    setStorage: (o) => call("setStorage", o),
    getStorage: (o) => call("getStorage", o),
    removeStorage: (o) => call("removeStorage", o),
    navigateTo: (o) => call("navigateTo", o),
    redirectTo: (o) => call("redirectTo", o),
    navigateBack: (o) => call("navigateBack", o),
  };

  function wechat(name) {
    return (o = {}) => {
      const { success, fail, complete, ...params } = o;
      const done = omo[name](params);
      done.then(
        (result) => { if (success) success(result); if (complete) complete(result); },
        (error) => { if (fail) fail({ errMsg: `${name}:fail ${error.code || ""}`, error }); if (complete) complete(error); },
      );
      return done;
    };
  }

  const wx = {};
  for (const name of Object.keys(omo)) {
    if (typeof omo[name] === "function" && name !== "call") wx[name] = wechat(name);
  }
  // WeChat names for the same calls where they differ.
  wx.shareAppMessage = wechat("share");
  window.omo = Object.freeze(omo);
  window.wx = Object.freeze(wx);
})();
