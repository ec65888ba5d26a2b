// The consumer app's scanner page: read a code, then open what OMO knows it to be. A mini
// program opens inside the app (miniapp_launch.js), without a new navigation of the page.
import { openInApp } from "./miniapp_launch.js";
import { destinationOf, scan } from "./scanner.js";

const box = document.querySelector("[data-scanner]");
const unknown = document.querySelector("[data-scan-unknown]");
const start = document.querySelector("[data-scan-start]");

// What the scanner does with a code it read: true when OMO opened something.
export async function openScanned(text) {
  const target = await destinationOf(text);
  if (!target) return false;
  await openInApp(target);
  return true;
}

async function run(onlyImage) {
  unknown.hidden = true;
  start.hidden = true;
  try {
    const code = await scan(box, { onlyImage });
    if (!(await openScanned(code.result))) {
      unknown.textContent = `${unknown.dataset.msgUnknown} ${code.result}`;
      unknown.hidden = false;
    }
  } catch {
    // Cancelled: back to the two buttons.
  }
  start.hidden = false;
}

document.querySelector("[data-scan-camera]").addEventListener("click", () => run(false));
document.querySelector("[data-scan-image]").addEventListener("click", () => run(true));
if (new URLSearchParams(window.location.search).get("camera") === "1") run(false);
