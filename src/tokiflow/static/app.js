// Tokiflow UI: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // -- theme toggle: auto (follow the OS) -> dark -> light -> auto ---------------------------
  var THEMES = ["auto", "dark", "light"];
  function currentTheme() {
    return document.documentElement.getAttribute("data-theme") || "auto";
  }
  function showTheme(btn) {
    var t = currentTheme();
    btn.textContent = t === "auto" ? "◐ Auto" : t === "dark" ? "☾ Dark" : "☀ Light";
    btn.setAttribute("aria-label", "Theme: " + t + " (change)");
  }
  function setupTheme() {
    var btn = $("#theme-toggle");
    if (!btn) return;
    btn.hidden = false;
    showTheme(btn);
    btn.addEventListener("click", function () {
      var next = THEMES[(THEMES.indexOf(currentTheme()) + 1) % THEMES.length];
      if (next === "auto") document.documentElement.removeAttribute("data-theme");
      else document.documentElement.setAttribute("data-theme", next);
      try {
        if (next === "auto") localStorage.removeItem("tokiflow-theme");
        else localStorage.setItem("tokiflow-theme", next);
      } catch (e) { /* ignore */ }
      showTheme(btn);
    });
  }

  // -- copy buttons ------------------------------------------------------------------------
  function setupCopy() {
    $all("[data-copy]").forEach(function (btn) {
      btn.hidden = false;
      btn.addEventListener("click", function () {
        var target = $(btn.getAttribute("data-copy"));
        if (!target) return;
        var text = target.value !== undefined && target.tagName === "INPUT" ? target.value : target.textContent;
        var done = function () {
          var old = btn.textContent;
          btn.textContent = "Copied";
          setTimeout(function () { btn.textContent = old; }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { selectText(target); });
        } else {
          selectText(target);
        }
      });
    });
  }
  function selectText(el) {
    if (el.select) { el.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // -- confirmations -------------------------------------------------------------------------
  function setupConfirm(root) {
    $all("form[data-confirm]", root).forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
      });
    });
  }

  // -- live updates over server-sent events ---------------------------------------------------
  function setupLive() {
    var region = $("[data-live-src]");
    if (!region || !window.EventSource) return;
    var pending = null;
    var inflight = false;
    function refresh() {
      pending = null;
      if (inflight) { pending = setTimeout(refresh, 300); return; }
      inflight = true;
      fetch(region.getAttribute("data-live-src"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          inflight = false;
          if (html === null) return;
          var doc = new DOMParser().parseFromString("<div>" + html + "</div>", "text/html");
          region.replaceChildren.apply(region, Array.prototype.slice.call(doc.body.firstChild.childNodes));
          region.setAttribute("data-live-version", String(Number(region.getAttribute("data-live-version") || "0") + 1));
          setupConfirm(region);
        })
        .catch(function () { inflight = false; });
    }
    function soon() {
      if (!pending) pending = setTimeout(refresh, 250);
    }
    var source = new EventSource("/ui/events");
    source.addEventListener("monitors", soon);
    source.addEventListener("incidents", soon);
    source.addEventListener("hello", function () {
      document.body.setAttribute("data-live-connected", "1");
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // -- the schedule field explains itself -------------------------------------------------------
  function setupSchedule() {
    var form = $("form[data-schedule-preview]");
    if (!form) return;
    var words = $("#schedule-words");
    var list = $("#schedule-next");
    var error = $("#schedule-error");
    var timer = null;
    var seq = 0;
    function kind() {
      var checked = $("input[name=kind]:checked", form);
      return checked ? checked.value : "period";
    }
    function toggle() {
      var k = kind();
      $all("[data-kind]", form).forEach(function (el) { el.hidden = el.getAttribute("data-kind") !== k; });
    }
    function update() {
      var k = kind();
      var params = new URLSearchParams({ kind: k });
      if (k === "cron") {
        params.set("cron", $("#cron").value);
        params.set("tz", $("#tz").value);
      } else {
        params.set("period", $("#period").value);
      }
      var mine = ++seq;
      fetch("/ui/schedule?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (mine !== seq) return;
          list.replaceChildren();
          var field = $(k === "cron" ? "#cron" : "#period");
          if (data.ok) {
            words.textContent = data.words;
            error.textContent = "";
            field.removeAttribute("aria-invalid");
            data.next.forEach(function (t) {
              var li = document.createElement("li");
              li.textContent = t;
              list.appendChild(li);
            });
          } else {
            words.textContent = "";
            error.textContent = data.error;
            field.setAttribute("aria-invalid", "true");
          }
        })
        .catch(function () { /* offline: the server checks on save */ });
    }
    function later() {
      clearTimeout(timer);
      timer = setTimeout(update, 200);
    }
    $all("input[name=kind]", form).forEach(function (r) {
      r.addEventListener("change", function () { toggle(); update(); });
    });
    ["#period", "#cron", "#tz"].forEach(function (sel) {
      var el = $(sel);
      if (el) el.addEventListener("input", later);
    });
    toggle();
    update();
  }

  // -- channel kind examples --------------------------------------------------------------------
  function setupChannelForm() {
    var kind = $("#channel-kind");
    var config = $("#channel-config");
    if (!kind || !config) return;
    kind.addEventListener("change", function () {
      var example = $("#example-" + kind.value);
      var untouched = config.getAttribute("data-untouched") !== "0";
      if (example && untouched) config.value = example.textContent;
    });
    config.addEventListener("input", function () { config.setAttribute("data-untouched", "0"); });
  }

  // -- keyboard shortcuts -------------------------------------------------------------------------
  function setupKeys() {
    var help = $("#help");
    var prefix = null;
    var prefixTimer = null;
    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      var t = ev.target;
      var typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
      if (typing) {
        if (ev.key === "Escape" && t.blur) t.blur();
        return;
      }
      if (prefix === "g") {
        prefix = null;
        clearTimeout(prefixTimer);
        var to = { m: "/monitors", i: "/incidents", d: "/", s: "/settings/channels", n: "/monitors/new" }[ev.key];
        if (to) { ev.preventDefault(); window.location.href = to; }
        return;
      }
      if (ev.key === "g") {
        prefix = "g";
        prefixTimer = setTimeout(function () { prefix = null; }, 1200);
      } else if (ev.key === "/") {
        var search = $("[data-search]");
        ev.preventDefault();
        if (search) { search.focus(); search.select(); } else { window.location.href = "/monitors#search"; }
      } else if (ev.key === "?" && help && help.showModal) {
        ev.preventDefault();
        if (help.open) help.close(); else help.showModal();
      }
    });
    $all("[data-close-dialog]").forEach(function (b) {
      b.addEventListener("click", function () { var d = b.closest("dialog"); if (d) d.close(); });
    });
    $all("[data-open-help]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () { if (help && help.showModal) help.showModal(); });
    });
    if (window.location.hash === "#search") {
      var s = $("[data-search]");
      if (s) s.focus();
    }
  }

  // -- auto-submit filter selects ------------------------------------------------------------------
  function setupFilters() {
    $all("form[data-autosubmit] select").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupTheme();
    setupCopy();
    setupConfirm();
    setupLive();
    setupSchedule();
    setupChannelForm();
    setupKeys();
    setupFilters();
  });
})();
