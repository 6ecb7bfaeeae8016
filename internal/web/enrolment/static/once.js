// Send each form once. The links behind these forms work once: a double
// click would send a second request that finds its link spent, and the
// browser would show that answer ("this link does not work") instead of
// the first one, which may hold the only copy of a new key. After the
// first submit, further submits are ignored and the button says so.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[method=post]");
  Array.prototype.forEach.call(forms, function (form) {
    var sent = false;
    form.addEventListener("submit", function (event) {
      if (sent) {
        event.preventDefault();
        return;
      }
      sent = true;
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.setAttribute("aria-disabled", "true");
        button.textContent = "Please wait…";
      }
    });
    // Coming back to the page from the browser's cache allows a new send.
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        sent = false;
      }
    });
  });
})();
