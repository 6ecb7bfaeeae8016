// upload.js: show how much of a large CSV file has been sent. Without it
// the form posts as usual; with it the same POST goes through
// XMLHttpRequest, whose upload events drive the progress bar, and the
// browser then opens the page the server answered with: the batch's
// progress page, or the form again with the reason the file was refused.
"use strict";
(function () {
  var form = document.getElementById("upload-form");
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  if (!form || !bar || !status || !window.FormData || !window.XMLHttpRequest) {
    return;
  }
  form.addEventListener("submit", function (event) {
    var file = document.getElementById("file");
    if (!file || !file.files || file.files.length === 0) {
      return; // nothing to show: let the server say what is missing
    }
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) {
      button.disabled = true;
    }
    bar.hidden = false;
    status.textContent = "Sending the file…";
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round((100 * e.loaded) / e.total);
        status.textContent = "Sent " + bar.value + "% of the file";
      }
    });
    xhr.addEventListener("load", function () {
      if (xhr.responseURL && xhr.responseURL.indexOf("/console/batches/") !== -1) {
        window.location.assign(xhr.responseURL);
        return;
      }
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.addEventListener("error", function () {
      status.textContent = "The file could not be sent; check the connection and try again.";
      if (button) {
        button.disabled = false;
      }
    });
    xhr.send(new FormData(form));
  });
})();
