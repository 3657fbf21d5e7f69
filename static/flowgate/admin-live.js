/* Live updates of the admin console's run page and run list: polls the page's live URL (the
 * same page rendered again, same origin, so the site's CSP allows it) and replaces each part
 * marked `data-live-region` whose markup changed, by id. What the operator is doing survives an
 * update: the text typed into a replaced part is put back, ticked row checkboxes stay ticked
 * (the list refreshes its cells, never the rows), and runs that appeared since the page loaded
 * are announced with a link instead of moving the rows under the operator's pointer. Without
 * JavaScript the pages still work: a reload shows the same thing. */
(function () {
  "use strict";
  var root = document.querySelector("[data-live-url]");
  if (!root) { return; }
  var every = parseInt(root.getAttribute("data-live-ms") || "", 10) || 3000;
  var url = root.getAttribute("data-live-url") + (root.hasAttribute("data-live-query") ? window.location.search : "");

  // A region's markup without the per-render CSRF token, so an unchanged form compares equal.
  function signature(element) {
    var copy = element.cloneNode(true);
    copy.querySelectorAll("input[name='csrfmiddlewaretoken']").forEach(function (input) {
      input.removeAttribute("value");
    });
    return copy.outerHTML;
  }

  function replace(current, fresh) {
    var typed = {};
    current.querySelectorAll("input[type='text'][id], textarea[id]").forEach(function (field) {
      if (field.value) { typed[field.id] = field.value; }
    });
    var focused = document.activeElement && current.contains(document.activeElement) ? document.activeElement.id : "";
    var node = document.importNode(fresh, true);
    current.replaceWith(node);
    Object.keys(typed).forEach(function (id) {
      var field = document.getElementById(id);
      if (field && node.contains(field)) { field.value = typed[id]; }
    });
    if (focused && document.getElementById(focused)) { document.getElementById(focused).focus(); }
  }

  function apply(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    doc.querySelectorAll("[data-live-region][id]").forEach(function (fresh) {
      var current = document.getElementById(fresh.id);
      if (current && signature(current) !== signature(fresh)) { replace(current, fresh); }
    });
    var rows = doc.querySelector("[data-live-rows]");
    var shown = document.querySelector("[data-live-rows]");
    var notice = document.querySelector("[data-live-stale]");
    if (rows && shown && notice && rows.getAttribute("data-live-rows") !== shown.getAttribute("data-live-rows")) {
      notice.hidden = false;
    }
    root.setAttribute("data-live-updated", new Date().toISOString());
  }

  function poll() {
    if (document.hidden) { window.setTimeout(poll, every); return; }
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html) { apply(html); } })
      .catch(function () { /* offline for a moment: try again on the next tick */ })
      .then(function () { window.setTimeout(poll, every); });
  }

  window.setTimeout(poll, every);
})();
