// mailca RA console: small enhancements. Every page works without it.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // Buttons with data-confirm ask before their form is sent.
  document.querySelectorAll("[data-confirm]").forEach(function (el) {
    var form = el.form || el.closest("form");
    if (!form) return;
    form.addEventListener("submit", function (ev) {
      if (ev.submitter === el && !window.confirm(el.getAttribute("data-confirm"))) {
        ev.preventDefault();
      }
    });
  });

  // Buttons with data-copy="<element id>" copy that element's text.
  document.querySelectorAll("[data-copy]").forEach(function (el) {
    var target = document.getElementById(el.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    el.hidden = false;
    el.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        el.textContent = "Copied";
      });
    });
  });

  // Forms are sent once: a second click while the first is on its way is
  // ignored.
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (ev.defaultPrevented) return;
      if (form.dataset.sent) {
        ev.preventDefault();
        return;
      }
      form.dataset.sent = "1";
    });
  });
});

// A page shown again from the back/forward cache may send its forms again.
window.addEventListener("pageshow", function (ev) {
  if (!ev.persisted) return;
  document.querySelectorAll("form[data-sent]").forEach(function (form) {
    delete form.dataset.sent;
  });
});
