// Draws every chart a page embeds (billbyte.web.charts): no inline script, so the pages'
// Content-Security-Policy can forbid inline scripts altogether.
(function () {
  function draw() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      var source = document.getElementById(element.getAttribute("data-chart"));
      if (!source) { return; }
      var spec = JSON.parse(source.textContent);
      Plotly.newPlot(element, spec.data, spec.layout, {displaylogo: false, responsive: true});
    });
  }
  // Confirmation steps and auto-submitting filters, without inline handlers.
  function wire() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var target = document.getElementById(button.getAttribute("data-copy"));
        if (target && navigator.clipboard) { navigator.clipboard.writeText(target.textContent.trim()); }
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(); wire(); });
})();
