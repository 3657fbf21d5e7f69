/* Live status of the gate page: polls the gate's status JSON (same origin, so the site's CSP
 * allows it) and, when the gate is no longer in the state the page was rendered in (another
 * reviewer decided, a new round superseded it, it expired), says so at the top and disables the
 * decision buttons, keeping whatever the reader typed. Without JavaScript the page still works:
 * a stale decision is refused by the server and the page shows the winner. */
(function () {
  "use strict";
  var root = document.querySelector("[data-status-url]");
  if (!root) { return; }
  var url = root.getAttribute("data-status-url");
  var shown = root.getAttribute("data-state");
  var every = parseInt(root.getAttribute("data-poll-ms") || "", 10) || 4000;
  var timer = null;

  function changed(status) {
    var notice = document.querySelector("[data-testid='live-update']");
    notice.querySelector("[data-live-message]").textContent = status.message || "This gate changed.";
    notice.hidden = false;
    root.setAttribute("data-state", status.state);
    document.querySelectorAll("button[name='decision']").forEach(function (button) {
      button.disabled = true;
    });
    var bar = document.querySelector("[data-testid='decide-bar']");
    if (bar) { bar.hidden = true; }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (status && status.state !== shown) {
          shown = status.state;
          changed(status);
        }
      })
      .catch(function () { /* offline for a moment: try again on the next tick */ })
      .then(function () { timer = window.setTimeout(poll, every); });
  }

  if (shown === "open") { timer = window.setTimeout(poll, every); }
})();
