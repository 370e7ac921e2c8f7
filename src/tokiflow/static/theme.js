// Applies the saved theme before the page paints (loaded in <head>, no inline script under CSP).
(function () {
  try {
    var saved = localStorage.getItem("tokiflow-theme");
    if (saved === "light" || saved === "dark") {
      document.documentElement.setAttribute("data-theme", saved);
    }
  } catch (e) {
    /* storage blocked: follow the OS */
  }
})();
