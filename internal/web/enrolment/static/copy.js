// Copy buttons, a progressive enhancement: <button data-copy="ID" hidden>
// copies the text of the element with that id. The buttons stay hidden
// where the Clipboard API is missing (it needs HTTPS or localhost); the
// text can still be selected by hand. The status element that follows a
// button, if any, announces the result to screen readers.
(function () {
  "use strict";
  if (!navigator.clipboard || !navigator.clipboard.writeText) {
    return;
  }
  var buttons = document.querySelectorAll("button[data-copy]");
  Array.prototype.forEach.call(buttons, function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) {
      return;
    }
    var status = button.nextElementSibling;
    if (status && !status.classList.contains("copy-status")) {
      status = null;
    }
    var say = function (text) {
      if (status) {
        status.textContent = text;
      }
    };
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () { say("Copied."); },
        function () { say("Could not copy: select the text and copy it by hand."); }
      );
    });
  });
})();
