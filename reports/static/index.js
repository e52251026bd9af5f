/* Client-side filters of the observatory index: gateway, build, scenario, verdict, date. */
(function () {
  "use strict";

  function currentFilters(form) {
    var filters = {};
    Array.prototype.forEach.call(form.querySelectorAll("[data-filter]"), function (input) {
      filters[input.getAttribute("data-filter")] = input.value;
    });
    return filters;
  }

  function matches(row, f) {
    var keys = ["gateway", "build", "scenario", "verdict"];
    for (var i = 0; i < keys.length; i++) {
      if (f[keys[i]] && row.getAttribute("data-" + keys[i]) !== f[keys[i]]) return false;
    }
    var date = row.getAttribute("data-date");
    // ISO dates compare correctly as strings; runs that never started have no date.
    if (f.from && (!date || date < f.from)) return false;
    if (f.to && (!date || date > f.to)) return false;
    return true;
  }

  function apply(form, rows, counter) {
    var f = currentFilters(form);
    var shown = 0;
    rows.forEach(function (row) {
      var visible = matches(row, f);
      row.hidden = !visible;
      if (visible) shown++;
    });
    counter.textContent = shown + " of " + rows.length + " runs";
    document.documentElement.setAttribute("data-shown", String(shown));
  }

  function main() {
    var form = document.getElementById("filters");
    var counter = document.getElementById("shown-count");
    if (!form || !counter) return;
    var rows = Array.prototype.slice.call(document.querySelectorAll("#runs tbody tr.run"));
    var update = function () { apply(form, rows, counter); };
    form.addEventListener("change", update);
    form.addEventListener("input", update);
    form.addEventListener("reset", function () { setTimeout(update, 0); });
    update();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", main);
  } else {
    main();
  }
})();
