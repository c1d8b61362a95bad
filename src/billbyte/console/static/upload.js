// Upload progress for the console's vendor-file form: the same form post, sent with
// XMLHttpRequest so the browser's upload progress events can feed the <progress> bar.
// Without JavaScript the form posts as usual; no inline script (the pages' CSP forbids it).
(function () {
  function wire(form) {
    var bar = document.getElementById(form.getAttribute("data-progress"));
    var label = document.getElementById(form.getAttribute("data-progress") + "-text");
    form.addEventListener("submit", function (event) {
      if (!window.FormData || !window.XMLHttpRequest) { return; }
      event.preventDefault();
      var request = new XMLHttpRequest();
      request.open("POST", form.action);
      bar.hidden = false;
      bar.value = 0;
      request.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          bar.max = e.total;
          bar.value = e.loaded;
          label.textContent = Math.round((e.loaded / e.total) * 100) + "% uploaded";
        }
      });
      request.upload.addEventListener("load", function () {
        label.textContent = "Uploaded; importing…";
      });
      request.addEventListener("load", function () {
        if (request.status >= 200 && request.status < 300 && request.responseURL) {
          window.location.assign(request.responseURL);  // the import's page (after the 303)
        } else {
          document.open();
          document.write(request.responseText);  // the refusal page, as a plain post shows it
          document.close();
        }
      });
      request.addEventListener("error", function () {
        label.textContent = "The upload failed (network error). Try again.";
      });
      request.send(new FormData(form));
      form.querySelector("button[type=submit]").disabled = true;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-progress]").forEach(wire);
  });
})();
