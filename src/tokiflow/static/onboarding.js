// Tokiflow onboarding (/welcome): the "send a test ping" button. The panel that turns green
// when the ping arrives is the page's live region, refreshed by app.js over the event stream.
(function () {
  "use strict";

  function setupTestPing() {
    var btn = document.querySelector("[data-test-ping]");
    var out = document.getElementById("test-ping-result");
    if (!btn || !window.fetch) return;
    btn.hidden = false;
    btn.addEventListener("click", function () {
      btn.disabled = true;
      if (out) out.textContent = "Sending…";
      fetch(btn.getAttribute("data-test-ping"), {
        method: "POST",
        credentials: "omit",
        headers: { "Content-Type": "text/plain" },
        body: "test ping from the Tokiflow welcome page"
      })
        .then(function (r) {
          if (out) out.textContent = r.ok ? "Sent: watch the panel above." : "The server answered " + r.status + ".";
        })
        .catch(function () {
          if (out) out.textContent = "Could not reach the server.";
        })
        .then(function () { btn.disabled = false; });
    });
  }

  document.addEventListener("DOMContentLoaded", setupTestPing);
})();
