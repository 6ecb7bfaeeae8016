// batch.js: while a CSV batch is being imported, reload its page every two
// seconds so that the progress shows; loaded only by the batch page.
"use strict";
(function () {
  var state = document.getElementById("batch-state");
  if (!state || state.getAttribute("data-state") !== "importing") {
    return;
  }
  window.setTimeout(function () {
    window.location.reload();
  }, 2000);
})();
