// The OMO realtime connection (protocol v1, see docs/MESSAGING.md): authenticates with the
// session cookie, answers heartbeats, and reconnects with backoff when the network drops.

export class ChatSocket {
  constructor({ onFrame, onOpen, onClose }) {
    this.onFrame = onFrame;
    this.onOpen = onOpen;
    this.onClose = onClose;
    this.socket = null;
    this.backoff = 250;
    this.timer = null;
    window.addEventListener("offline", () => this.drop());
    window.addEventListener("online", () => this.connectSoon(0));
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN && this.ready;
  }

  connect() {
    clearTimeout(this.timer);
    if (this.socket) return;
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}/ws`);
    this.socket = socket;
    this.ready = false;
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "ping") {
        this.send({ type: "pong" });
        return;
      }
      if (frame.type === "ready") {
        this.ready = true;
        this.backoff = 250;
        this.onOpen();
        return;
      }
      this.onFrame(frame);
    });
    socket.addEventListener("close", () => {
      if (this.socket === socket) this.lost();
    });
  }

  lost() {
    this.socket = null;
    this.ready = false;
    this.onClose();
    if (navigator.onLine !== false) this.connectSoon(this.backoff);
    this.backoff = Math.min(this.backoff * 2, 5000);
  }

  drop() {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.close();
    this.ready = false;
    this.onClose();
  }

  connectSoon(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  send(frame) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }
}
