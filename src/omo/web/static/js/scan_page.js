// The consumer app's scanner page: read a code, then open what OMO knows it to be.
import { destinationOf, scan } from "./scanner.js";

const box = document.querySelector("[data-scanner]");
const unknown = document.querySelector("[data-scan-unknown]");
const start = document.querySelector("[data-scan-start]");

async function run(onlyImage) {
  unknown.hidden = true;
  start.hidden = true;
  try {
    const code = await scan(box, { onlyImage });
    const target = await destinationOf(code.result);
    if (target) {
      window.location.assign(target);
      return;
    }
    unknown.textContent = `${unknown.dataset.msgUnknown} ${code.result}`;
    unknown.hidden = false;
  } catch {
    // Cancelled: back to the two buttons.
  }
  start.hidden = false;
}

document.querySelector("[data-scan-camera]").addEventListener("click", () => run(false));
document.querySelector("[data-scan-image]").addEventListener("click", () => run(true));
if (new URLSearchParams(window.location.search).get("camera") === "1") run(false);
