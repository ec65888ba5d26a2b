// In-app launch of mini programs: from the app's scanner, its mini programs list (recently
// used, search) — a mini program opens inside the app page the person is on, without a new
// navigation of the page. The host page (/mp/{appid}/{page}) is fetched as the person (the
// same launch checks, consent and recently-used record as a navigation), its mini program
// section is mounted in place of the page's content, and the address becomes the mini
// program's (history.pushState), so a reload, a bookmark or a shared link still opens it.
//
// Keeping the runtime warm: when the app is idle it creates one hidden sandboxed frame on the
// mini program origin (a blank page served with the same sandbox header). Chromium keeps
// sandboxed frames of one site in one renderer process per page, so a mini program's frame
// created later reuses that process instead of starting one (and a spare after it). The warm
// frame itself never runs a mini program: each launch gets a new frame (a new browsing
// context: no window.name, history or document shared with the previous mini program) and a
// new MessageChannel, exactly as on the host page.

import { mount } from "./miniapp_host.js";

const warmUrl = document.querySelector("[data-miniapp-warm]")?.dataset.miniappWarm || "";
let warmFrame = null;
let current = null;
let opening = false;

function prewarm() {
  if (!warmUrl || warmFrame) return;
  warmFrame = document.createElement("iframe");
  warmFrame.setAttribute("sandbox", "allow-scripts");
  warmFrame.setAttribute("referrerpolicy", "no-referrer");
  warmFrame.setAttribute("allow", "");
  warmFrame.setAttribute("aria-hidden", "true");
  warmFrame.tabIndex = -1;
  warmFrame.hidden = true;
  warmFrame.dataset.miniappWarmFrame = "";
  warmFrame.src = warmUrl;
  document.body.append(warmFrame);
}

if (warmUrl) {
  if ("requestIdleCallback" in window) window.requestIdleCallback(prewarm, { timeout: 1000 });
  else window.setTimeout(prewarm, 200);
}

function inApp(url) {
  const target = new URL(url, window.location.href);
  return target.origin === window.location.origin && target.pathname.startsWith("/mp/")
    ? target
    : null;
}

function restore() {
  if (!current) return;
  const { host, main, saved, title, focus } = current;
  current = null;
  host.unmount();
  main.replaceChildren(saved);
  document.title = title;
  // Back to what launched it (a list's link), else the page's content (the scanner that
  // read the code has closed).
  const visible = focus && focus.isConnected && focus !== document.body && focus.offsetParent;
  (visible ? focus : main).focus();
}

function close() {
  if (!current) return;
  // Nothing but the launch added to the history (the frame neither was navigated by the host
  // nor navigated itself: the history did not grow): going back is closing (popstate
  // restores). The browser caps history.length at 50, where growth cannot be seen.
  const grew = window.history.length !== current.length || current.length >= 50;
  if (!grew && current.host.navigations() === 0 && window.history.state?.omoMiniapp === current.key) {
    window.history.back();
    return;
  }
  // The mini program changed pages (each a history entry of its frame, which going back
  // would only step through): close now and put the app page's address back on this entry.
  const { url, state } = current;
  restore();
  window.history.replaceState(state, "", url);
}

window.addEventListener("popstate", (event) => {
  if (current && event.state?.omoMiniapp !== current.key) restore();
  else if (!current && event.state?.omoMiniapp) window.location.reload();
});

// Open what a code, a card or a list holds. A mini program of this app opens in place; any
// other destination (and a mini program the server refuses, or a signed-out person) is an
// ordinary navigation, so the person sees the same pages as before.
export async function openInApp(url) {
  const target = inApp(url);
  const main = document.getElementById("main");
  if (!target || !main || current || opening) {
    window.location.assign(url);
    return;
  }
  opening = true;
  try {
    const response = await fetch(target, { headers: { Accept: "text/html" } });
    const parsed =
      response.ok && !response.redirected
        ? new DOMParser().parseFromString(await response.text(), "text/html")
        : null;
    const section = parsed ? parsed.querySelector("[data-miniapp]") : null;
    if (!section) {
      window.location.assign(url);
      return;
    }
    const key = `${Date.now()}-${Math.random()}`;
    current = {
      key,
      main,
      saved: document.createDocumentFragment(),
      title: document.title,
      url: window.location.pathname + window.location.search + window.location.hash,
      state: window.history.state,
      focus: document.activeElement,
      length: 0,
      host: null,
    };
    current.saved.append(...main.childNodes);
    document.title = parsed.title || document.title;
    main.append(document.adoptNode(section));
    window.history.pushState({ omoMiniapp: key }, "", target.pathname + target.search);
    current.length = window.history.length;
    current.host = mount(section, { onClose: close });
    section.querySelector("#miniapp-name")?.focus();
  } catch {
    if (current && !current.host) {
      main.replaceChildren(current.saved);
      document.title = current.title;
      current = null;
    }
    if (!current) window.location.assign(url);
  } finally {
    opening = false;
  }
}

// Links to mini programs in the page (the recently used list, search results, cards) open
// in the app; a modified click (new tab, new window) keeps the browser's behaviour.
export function openLinksInApp(container) {
  container.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
    if (!link || link.target || !inApp(link.href) || current) return;
    event.preventDefault();
    openInApp(link.href);
  });
}
