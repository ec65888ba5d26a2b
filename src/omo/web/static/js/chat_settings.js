// A conversation's settings: mute, and for groups the members, invitations, removal and
// leaving. Errors show in the panel's alert box; successes reload the page's server state.
import { call, problemText } from "./api.js";

const panel = document.querySelector("[data-chat-settings]");
if (panel) enhance(panel);

function enhance(panel) {
  const base = `/api/v1/messaging/conversations/${panel.dataset.conversation}`;
  const box = panel.querySelector("[data-form-error]");

  async function act(method, path, body, after) {
    box.hidden = true;
    try {
      await call(method, path, body);
      after();
    } catch (error) {
      box.textContent = problemText(error);
      box.hidden = false;
      box.focus();
    }
  }

  const mute = panel.querySelector("[data-mute]");
  mute.addEventListener("change", () =>
    act("PUT", `${base}/mute`, { muted: mute.checked }, () => {}),
  );

  for (const button of panel.querySelectorAll("[data-remove-member]")) {
    button.addEventListener("click", () =>
      act("DELETE", `${base}/members/${encodeURIComponent(button.dataset.removeMember)}`, undefined, () =>
        window.location.reload(),
      ),
    );
  }

  const invite = panel.querySelector("[data-invite]");
  invite?.addEventListener("submit", (event) => {
    event.preventDefault();
    const members = invite.members.value
      .split(/[\s,，、]+/)
      .map((id) => id.trim())
      .filter(Boolean);
    if (members.length) act("POST", `${base}/members`, { members }, () => window.location.reload());
  });

  panel.querySelector("[data-leave]")?.addEventListener("click", () =>
    act("POST", `${base}/leave`, undefined, () => window.location.assign("/chat")),
  );
}
