// The scanner: the camera (getUserMedia) runs in this page only — a mini program's frame never
// gets it. Stills of the video, or a picture the person chooses ("scan from an image"), are
// sent to the server's decoder (zxing-cpp): QR codes and product barcodes.
//
// Markup (see _scanner.html): [data-scanner] holding a <video data-scanner-video>, a status
// line [data-scanner-status], a file input [data-scanner-file] and a [data-scanner-cancel]
// button; its data-msg-* attributes hold the translated texts.

import { call } from "./api.js";

const DECODE = "/api/v1/miniapps/scanner/decode";
const FRAME_EVERY_MS = 350;
const MAX_WIDTH = 960;

export class ScanCancelled extends Error {
  constructor() {
    super("cancelled");
    this.code = "cancelled";
  }
}

async function decode(blob) {
  const found = await call("POST", DECODE, blob, {
    raw: true,
    headers: { "Content-Type": blob.type || "application/octet-stream" },
  });
  return found.codes;
}

function still(video, canvas) {
  const scale = Math.min(1, MAX_WIDTH / video.videoWidth);
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
}

// Open the scanner; resolves with the first code read ({result, scanType}), rejects with
// ScanCancelled when the person closes it. `onlyImage` skips the camera (scan from an image).
export function scan(box, { onlyImage = false } = {}) {
  const video = box.querySelector("[data-scanner-video]");
  const status = box.querySelector("[data-scanner-status]");
  const file = box.querySelector("[data-scanner-file]");
  const cancel = box.querySelector("[data-scanner-cancel]");
  const canvas = document.createElement("canvas");
  let stream = null;
  let timer = null;
  let busy = false;
  let finished = false;
  box.hidden = false;
  file.value = "";
  status.textContent = box.dataset.msgLooking;

  return new Promise((resolve, reject) => {
    function stop() {
      finished = true;
      if (timer) clearInterval(timer);
      if (stream) for (const track of stream.getTracks()) track.stop();
      video.srcObject = null;
      box.hidden = true;
      file.onchange = null;
      cancel.onclick = null;
      box.onkeydown = null;
    }
    function found(codes) {
      if (finished || !codes.length) return false;
      stop();
      resolve(codes[0]);
      return true;
    }
    async function look() {
      if (busy || finished || video.readyState < 2 || !video.videoWidth) return;
      busy = true;
      try {
        const blob = await still(video, canvas);
        if (blob) found(await decode(blob));
      } catch (error) {
        status.textContent = error.message;
      } finally {
        busy = false;
      }
    }
    cancel.onclick = () => {
      stop();
      reject(new ScanCancelled());
    };
    box.onkeydown = (event) => {
      if (event.key === "Escape") cancel.onclick();
    };
    file.onchange = async () => {
      const chosen = file.files && file.files[0];
      if (!chosen) return;
      status.textContent = box.dataset.msgReading;
      try {
        if (!found(await decode(chosen))) status.textContent = box.dataset.msgNothing;
      } catch (error) {
        status.textContent = error.message;
      }
    };
    if (onlyImage || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      video.hidden = true;
      status.textContent = box.dataset.msgNoCamera;
      file.focus();
      return;
    }
    cancel.focus();
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then((media) => {
        if (finished) {
          for (const track of media.getTracks()) track.stop();
          return;
        }
        stream = media;
        video.hidden = false;
        video.srcObject = media;
        video.play().catch(() => {});
        timer = setInterval(look, FRAME_EVERY_MS);
      })
      .catch(() => {
        video.hidden = true;
        status.textContent = box.dataset.msgNoCamera;
      });
  });
}

// What a scanned text opens in the app: OMO's own links (mini program codes, add-friend and
// login codes, brand codes…) on this origin, or a link under a merchant's registered prefix
// (its old printed codes). Null when OMO knows nothing about it.
export async function destinationOf(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.origin === window.location.origin) return url.pathname + url.search + url.hash;
  if (url.protocol !== "https:" && url.protocol !== "http:") return null;
  try {
    const found = await call("GET", `/api/v1/miniapps/links?url=${encodeURIComponent(text)}`);
    return found.url;
  } catch {
    return null;
  }
}
