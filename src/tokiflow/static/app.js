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
  function nextTheme() {
    var next = THEMES[(THEMES.indexOf(currentTheme()) + 1) % THEMES.length];
    if (next === "auto") document.documentElement.removeAttribute("data-theme");
    else document.documentElement.setAttribute("data-theme", next);
    try {
      if (next === "auto") localStorage.removeItem("tokiflow-theme");
      else localStorage.setItem("tokiflow-theme", next);
    } catch (e) { /* ignore */ }
    var btn = $("#theme-toggle");
    if (btn) showTheme(btn);
  }
  function setupTheme() {
    var btn = $("#theme-toggle");
    if (!btn) return;
    btn.hidden = false;
    showTheme(btn);
    btn.addEventListener("click", nextTheme);
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
          region.dispatchEvent(new CustomEvent("live:swapped", { bubbles: true }));
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
        var to = { m: "/monitors", i: "/incidents", a: "/analytics", d: "/", s: "/settings/channels", n: "/monitors/new" }[ev.key];
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

  // -- bulk actions on the monitors list ------------------------------------------------------------
  // The form works without this: it only counts the selection, enables the bar when something is
  // selected, ticks a whole page at once, and keeps the selection when live updates redraw rows.
  function setupBulk() {
    var form = $("form[data-bulk]");
    if (!form) return;
    var chosen = {};
    var count = $("[data-bulk-count]", form);
    var tag = $("input[name=tag]", form);
    function boxes() { return $all("input[data-bulk-item]", form); }
    function remember() {
      chosen = {};
      boxes().forEach(function (b) { if (b.checked) chosen[b.value] = true; });
    }
    function refresh() {
      var list = boxes();
      var n = list.filter(function (b) { return b.checked; }).length;
      var all = $("input[data-bulk-all]", form);
      if (all) {
        all.checked = list.length > 0 && n === list.length;
        all.indeterminate = n > 0 && n < list.length;
      }
      if (count) {
        count.textContent = n === 0 ? "Select monitors to act on them" :
          n + (n === 1 ? " monitor selected:" : " monitors selected:");
      }
      form.setAttribute("data-selected", String(n));
      $all("[data-bulk-action]", form).forEach(function (b) { b.disabled = n === 0; });
      if (tag) tag.disabled = n === 0;
      list.forEach(function (b) {
        var row = b.closest("tr");
        if (row) row.classList.toggle("selected", b.checked);
      });
    }
    form.addEventListener("change", function (ev) {
      var t = ev.target;
      if (t.matches("input[data-bulk-all]")) {
        boxes().forEach(function (b) { b.checked = t.checked; });
      }
      if (t.matches("input[data-bulk-all], input[data-bulk-item]")) {
        remember();
        refresh();
      }
    });
    form.addEventListener("live:swapped", function () {
      boxes().forEach(function (b) { b.checked = !!chosen[b.value]; });
      refresh();
    });
    form.addEventListener("submit", function (ev) {
      var by = ev.submitter;
      var action = by ? by.value : "";
      if ((action === "tag_add" || action === "tag_remove") && tag && !tag.value.trim()) {
        ev.preventDefault();
        tag.setAttribute("aria-invalid", "true");
        tag.focus();
      }
    });
    if (tag) {
      tag.addEventListener("input", function () { tag.removeAttribute("aria-invalid"); });
      tag.addEventListener("keydown", function (ev) {
        if (ev.key !== "Enter") return;
        ev.preventDefault();
        var add = $("button[value=tag_add]", form);
        if (add && !add.disabled) add.click();
      });
    }
    remember();
    refresh();
  }

  // -- command palette (Ctrl/Cmd+K) -------------------------------------------------------------------
  function setupPalette() {
    var dialog = $("#palette");
    var input = $("#palette-input");
    var list = $("#palette-list");
    if (!dialog || !dialog.showModal || !input || !list) return;
    var status = $("#palette-status");
    var items = [];
    var active = 0;
    var seq = 0;
    var loaded = 0;
    var timer = null;
    var enterWaiting = false;
    var opener = null;
    var KINDS = { page: "Page", action: "Action", monitor: "Monitor" };

    function open() {
      var help = $("#help");
      if (help && help.open) help.close();
      opener = document.activeElement;
      input.value = "";
      items = [];
      draw();
      dialog.showModal();
      input.focus();
      load();
    }
    function close() { if (dialog.open) dialog.close(); }
    function load() {
      clearTimeout(timer);
      timer = null;
      var mine = ++seq;
      fetch("/ui/palette?q=" + encodeURIComponent(input.value), {
        credentials: "same-origin", headers: { "Accept": "application/json" }
      })
        .then(function (r) {
          var json = (r.headers.get("Content-Type") || "").indexOf("json") >= 0;
          return r.ok && json ? r.json() : { items: [] };
        })
        .then(function (data) {
          if (mine !== seq) return;
          loaded = mine;
          items = data.items || [];
          active = 0;
          draw();
          if (enterWaiting) { enterWaiting = false; choose(active); }
        })
        .catch(function () { if (mine === seq) { loaded = mine; enterWaiting = false; } });
    }
    function draw() {
      list.replaceChildren();
      items.forEach(function (item, i) {
        var li = document.createElement("li");
        li.id = "palette-option-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("data-kind", item.kind);
        var kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = KINDS[item.kind] || item.kind;
        var title = document.createElement("span");
        title.className = "title";
        title.textContent = item.title;
        li.appendChild(kind);
        li.appendChild(title);
        if (item.detail) {
          var detail = document.createElement("span");
          detail.className = "detail";
          detail.textContent = item.detail;
          li.appendChild(detail);
        }
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); });
        li.addEventListener("click", function () { choose(i); });
        li.addEventListener("mousemove", function () { if (active !== i) { active = i; mark(); } });
        list.appendChild(li);
      });
      if (!items.length && loaded === seq && seq > 0) {
        var none = document.createElement("li");
        none.className = "empty";
        none.setAttribute("role", "option");
        none.setAttribute("aria-disabled", "true");
        none.textContent = "Nothing matches “" + input.value + "”";
        list.appendChild(none);
      }
      if (status) status.textContent = items.length + (items.length === 1 ? " result" : " results");
      mark();
    }
    function mark() {
      $all("li[id^=palette-option-]", list).forEach(function (li, i) {
        li.setAttribute("aria-selected", i === active ? "true" : "false");
      });
      var current = $("#palette-option-" + active);
      if (current) {
        input.setAttribute("aria-activedescendant", current.id);
        if (current.scrollIntoView) current.scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }
    function choose(i) {
      var item = items[i];
      if (!item) return;
      if (item.kind === "action") {
        close();
        if (item.action === "theme") nextTheme();
        return;
      }
      close();
      window.location.href = item.href;
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(load, 120);
    });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        if (!items.length) return;
        active = (active + (ev.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
        mark();
      } else if (ev.key === "Home" && items.length) {
        ev.preventDefault(); active = 0; mark();
      } else if (ev.key === "End" && items.length) {
        ev.preventDefault(); active = items.length - 1; mark();
      } else if (ev.key === "Enter") {
        ev.preventDefault();
        // Typed faster than the list followed: act once the list matches the text.
        if (timer || loaded !== seq) { enterWaiting = true; if (timer) load(); }
        else choose(active);
      }
    });
    // Keep focus inside the dialog (the input holds it; options are chosen with the arrows).
    dialog.addEventListener("keydown", function (ev) {
      if (ev.key === "Tab") { ev.preventDefault(); input.focus(); }
    });
    dialog.addEventListener("click", function (ev) { if (ev.target === dialog) close(); });
    dialog.addEventListener("close", function () {
      enterWaiting = false;
      if (opener && opener.focus && document.contains(opener)) opener.focus();
    });
    document.addEventListener("keydown", function (ev) {
      if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && !ev.shiftKey && (ev.key === "k" || ev.key === "K")) {
        ev.preventDefault();
        if (dialog.open) close(); else open();
      }
    });
    $all("[data-open-palette]").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", open);
    });
  }

  // -- run output: the last page opens at its end, where a failing job says why ---------------------
  function setupOutput() {
    $all("pre[data-scroll-end]").forEach(function (pre) { pre.scrollTop = pre.scrollHeight; });
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
    setupBulk();
    setupPalette();
    setupOutput();
  });
})();
